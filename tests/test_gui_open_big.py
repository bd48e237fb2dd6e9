"""Opening big and strange files without stopping the window (issue 23, Done-when 4): the file is read, laid out
and analysed beside the event loop, the canvas gets its items in slices behind a progress dialog; what was made
aside is used (no second analysis, no second Advisor check); Cancel while reading keeps the document shown."""
import json

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from builder.core import layout
from builder.ui import opening
from builder.ui.opening import ProgressBox
from helpers import when_modal

pytestmark = pytest.mark.timeout(240)


def _chain(path, n, placed=True):
    blocks = [{"id": "input", "type": "input"}] + [{"id": f"r{i}", "type": "relu"} for i in range(n - 2)] + \
        [{"id": "output", "type": "output"}]
    if placed:
        for i, b in enumerate(blocks):
            b["pos"] = [0.0, 120.0 * i]
    ids = [b["id"] for b in blocks]
    path.write_text(json.dumps({"format": "block-builder-project", "version": 2, "name": "chain", "blocks": blocks,
                                "edges": [{"src": a, "dst": b, "port": "x"} for a, b in zip(ids, ids[1:])]}))
    assert path.stat().st_size > opening.BIG_FILE
    return path


def _ticks(win):
    """A 10 ms timer counting its turns: how often the event loop ran."""
    ticks = []
    clock = QElapsedTimer()
    clock.start()
    timer = QTimer(win)
    timer.timeout.connect(lambda: ticks.append(clock.elapsed()))
    timer.start(10)
    return ticks, timer


def test_a_big_file_opens_beside_the_event_loop_and_uses_what_was_made_aside(qtbot, make_window, tmp_path,
                                                                              monkeypatch):
    win = make_window(size=(1200, 800))
    win.open_template("lenet5")
    before = win.doc.graph
    path = _chain(tmp_path / "chain.json", 3_000)
    checks = []
    from builder.insight import advisor
    real_check = advisor.check
    monkeypatch.setattr(advisor, "check", lambda g, *a, **k: checks.append(g) or real_check(g, *a, **k))
    ticks, timer = _ticks(win)
    read_ticks, slices = [], []  # the ticks seen when the file was read, and at each slice of the drawing
    win.doc.graph_replaced.connect(lambda _g: read_ticks.append(len(ticks)))
    win.scene.attach_progress.connect(lambda n, total: slices.append((len(ticks), n, total)))
    with qtbot.waitSignal(win.opened, timeout=120_000):
        assert win.open_path(str(path), ask=False) is False  # not open yet: it is read beside the event loop
        assert win.doc.graph is before
    timer.stop()
    assert len(win.doc.graph) == 3_000 and win.doc.path == path
    assert len(win.scene.blocks) == 3_000 and len(win.scene.wires) == 2_999
    assert win.scene.attaching is None
    # the event loop kept turning while it opened (the window painted and answered): while the worker read and
    # analysed the file, and between the slices that drew it (LeNet-5's items left, then 3,000 blocks and 2,999
    # wires came, each slice saying how far it was)
    assert read_ticks[0] >= 1, ticks
    assert len(slices) >= 3 and [n for _, n, _ in slices] == sorted(n for _, n, _ in slices), slices
    assert slices[-1][2] == 3_000 + 2_999 + len(before) + 2 * len(list(before.edges())), slices
    assert all(b[0] > a[0] for a, b in zip(slices, slices[1:])), slices  # a tick between every two slices
    # every block item has the figures of the analysis made aside, and the Advisor's check of it was used
    assert win.scene.blocks["r100"].report is win.doc.analysis.blocks["r100"]
    assert win.doc.made_beside("findings") is not None
    qtbot.waitUntil(lambda: win.advisor.findings is win.doc.made_beside("findings"), timeout=10_000)
    assert sum(g is win.doc.graph for g in checks) == 1  # once, in the worker: not again when the panel refreshed
    # framed: the top of the chain is in view
    shown = win.view.mapToScene(win.view.viewport().rect()).boundingRect()
    assert shown.contains(win.scene.blocks["input"].sceneBoundingRect())
    # the next edit analyses the graph again and the panels no longer use the prepared figures
    win.scene.blocks["r5"].setSelected(True)
    win.delete_selected()
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10_000)
    assert "r5" not in win.doc.analysis.blocks and win.doc.made_beside("findings") is None


def test_a_file_without_positions_is_laid_out_as_it_opens(qtbot, make_window, tmp_path):
    win = make_window(size=(1200, 800))
    path = _chain(tmp_path / "stacked.json", 2_500, placed=False)
    with qtbot.waitSignal(win.opened, timeout=120_000):
        win.open_path(str(path), ask=False)
    g = win.doc.graph
    assert not layout.unplaced(g)
    positions = [b.pos for b in g.blocks()]
    assert len(set(positions)) == len(positions)  # every block at a spot of its own
    assert g.block("r0").pos[1] < g.block("r1").pos[1] < g.block("output").pos[1]  # top to bottom, in order


def test_a_small_file_without_positions_is_laid_out_too(qtbot, make_window, tmp_path):
    win = make_window(size=(1200, 800))
    path = tmp_path / "small.json"
    blocks = [{"id": "input", "type": "input"}, {"id": "r", "type": "relu"}, {"id": "output", "type": "output"}]
    path.write_text(json.dumps({"format": "block-builder-project", "version": 2, "name": "s", "blocks": blocks,
                                "edges": [{"src": "input", "dst": "r", "port": "x"},
                                          {"src": "r", "dst": "output", "port": "x"}]}))
    assert win.open_path(str(path), ask=False) is True
    ys = [win.doc.graph.block(b).pos[1] for b in ("input", "r", "output")]
    assert ys == sorted(ys) and len(set(ys)) == 3


def test_cancel_while_reading_keeps_the_document_shown(qtbot, make_window, tmp_path, monkeypatch):
    win = make_window(size=(1200, 800))
    win.open_template("lenet5")
    before = win.doc.graph
    path = _chain(tmp_path / "chain.json", 3_000)
    gate = __import__("threading").Event()
    real_read = opening.read
    monkeypatch.setattr(opening, "read", lambda p, progress=None: (gate.wait(60), real_read(p, progress))[1])
    opened = []
    win.opened.connect(lambda: opened.append(1))
    win.open_path(str(path), ask=False)
    qtbot.waitUntil(lambda: any(b.isVisible() for b in win.findChildren(ProgressBox)), timeout=30_000)
    box = win.findChildren(ProgressBox)[0]
    assert "chain.json" in box.label.text()
    qtbot.mouseClick(box.cancel, Qt.LeftButton)
    gate.set()
    # the reading ends (its result dropped) and the dialog is gone
    qtbot.waitUntil(lambda: not win.findChildren(ProgressBox), timeout=60_000)
    assert win.cursor().shape() != Qt.BusyCursor
    assert win.doc.graph is before and not opened
    assert len(win.scene.blocks) == len(before)


def test_a_big_file_that_is_not_a_project_is_one_message(qtbot, make_window, tmp_path):
    win = make_window(size=(1200, 800))
    win.open_template("lenet5")
    before = win.doc.graph
    path = tmp_path / "broken.json"
    path.write_text('{"format": "block-builder-project", "version": 2, "blocks": [' + "1," * 60_000 + "1]}")
    seen = []
    answer = when_modal(QMessageBox, lambda box: (seen.append(box.text()), box.accept()), timeout_s=60)
    win.open_path(str(path), ask=False)
    qtbot.waitUntil(lambda: answer.answered, timeout=60_000)
    answer.check()
    assert len(seen) == 1 and "broken.json" in seen[0] and "Traceback" not in seen[0], seen
    assert win.doc.graph is before
