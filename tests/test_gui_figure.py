"""The Figure panel, driven as a user would: File > Export figure (its shortcut) shows the figure beside the canvas;
it redraws after an edit; a style picked in the panel is one undo step kept in the project; Export writes the file."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from builder.core import project
from exports.figure import Style, build_figure, render
from helpers import answer_paths

SVG = "{http://www.w3.org/2000/svg}"


def drawn(panel) -> list:
    root = ET.fromstring(panel.svg)
    return [g.get("data-id") for g in root.iter(f"{SVG}g") if g.get("class") == "block"]


def open_figure(qtbot, win):
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    QTest.keySequence(win, "Ctrl+Alt+F")  # File > Export figure...
    qtbot.waitUntil(lambda: win.figure_dock.isVisible() and not win.figure.stale, timeout=10000)
    return win.figure


def test_the_shortcut_shows_the_figure_of_the_open_network(qtbot, make_window):
    win = make_window(template="googlenet", size=(1500, 950))
    assert not win.figure_dock.isVisible()
    panel = open_figure(qtbot, win)
    assert drawn(panel) == list(win.doc.analysis.blocks)
    assert panel.svg == render(build_figure(win.doc.graph), ".svg")
    assert "26 blocks drawn" in panel.info.text()
    assert panel.preview.width() > 200 and panel.preview.height() > 50


def test_an_edit_on_the_canvas_redraws_the_figure(qtbot, make_window):
    win = make_window(template="lenet5", size=(1500, 950))
    panel = open_figure(qtbot, win)
    assert "c3_act" in drawn(panel)
    win.select_block("c3_act")
    win.view.setFocus()
    QTest.keyClick(win.view, Qt.Key_Delete)
    qtbot.waitUntil(lambda: "c3_act" not in drawn(panel), timeout=10000)
    assert panel.svg == render(build_figure(win.doc.graph), ".svg")


def test_a_style_picked_in_the_panel_is_one_undo_step_kept_in_the_project(qtbot, make_window, tmp_path):
    win = make_window(template="lenet5", size=(1500, 950))
    panel = open_figure(qtbot, win)
    before = panel.svg
    box = panel.pickers["direction"]
    box.setFocus()
    QTest.keyClick(box, Qt.Key_Down)  # left to right -> top down
    qtbot.waitUntil(lambda: win.doc.graph.meta.get("figure") == {"direction": "TB"}, timeout=5000)
    qtbot.waitUntil(lambda: panel.svg == render(build_figure(win.doc.graph, Style(direction="TB")), ".svg"),
                    timeout=10000)
    QTest.mouseClick(panel.stages, Qt.LeftButton)
    qtbot.waitUntil(lambda: win.doc.graph.meta.get("figure") == {"direction": "TB", "stages": True}, timeout=5000)
    project.save(win.doc.graph, tmp_path / "lenet.json")
    assert project.load(tmp_path / "lenet.json").meta["figure"] == {"direction": "TB", "stages": True}
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    QTest.keySequence(win, "Ctrl+Z")
    QTest.keySequence(win, "Ctrl+Z")
    qtbot.waitUntil(lambda: "figure" not in win.doc.graph.meta, timeout=5000)
    qtbot.waitUntil(lambda: panel.svg == before, timeout=10000)
    assert panel.pickers["direction"].currentData() == "LR" and not panel.stages.isChecked()


def test_export_writes_the_figure_as_the_file_names_it(qtbot, make_window, monkeypatch, tmp_path):
    win = make_window(template="resnet18", size=(1500, 950))
    panel = open_figure(qtbot, win)
    asked = answer_paths(monkeypatch, win, tmp_path / "fig.pdf")
    QTest.mouseClick(panel.export_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: (tmp_path / "fig.pdf").exists(), timeout=10000)
    assert asked == [("Export figure", True)]
    assert (tmp_path / "fig.pdf").read_bytes() == render(build_figure(win.doc.graph), ".pdf")


def test_a_large_network_redraws_on_request(qtbot, make_window):
    from builder.core.graph import Graph
    from builder.ui.figure_panel import LIVE_BLOCKS
    win = make_window(size=(1500, 950))
    g = Graph("long")
    prev = g.add_block("input", {"channels": 4, "height": 8, "width": 8}, "input")
    for i in range(LIVE_BLOCKS + 10):
        b = g.add_block("relu", {}, f"r{i}")
        g.connect(prev, b)
        prev = b
    g.connect(prev, g.add_block("output", {}, "output"))
    win.load_graph(g)
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=20000)
    panel = open_figure(qtbot, win)
    assert len(drawn(panel)) == len(g)
    win.select_block("r5")
    win.view.setFocus()
    QTest.keyClick(win.view, Qt.Key_Delete)
    qtbot.waitUntil(lambda: "r5" not in win.doc.graph and not win.doc.analysis_pending, timeout=20000)
    qtbot.waitUntil(lambda: panel.redraw_button.isVisible(), timeout=5000)
    assert "r5" in drawn(panel) and "press Redraw" in panel.info.text()  # not redrawn by itself
    QTest.mouseClick(panel.redraw_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "r5" not in drawn(panel), timeout=20000)
