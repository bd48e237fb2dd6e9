"""Search on the diagram, driven as a user would: candidates typed into the inspector (one undo step, a badge on
the block, the cost range in the status bar); the Search panel runs the study in a child process, fills its table
and scatter as trials finish, and Apply puts a trial's design on the canvas as one undo step."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from builder.core.analysis import analyze
from builder.search.space import with_choices

pytestmark = pytest.mark.timeout(600)


def click_block(qtbot, win, bid):
    item = win.scene.blocks[bid]
    win.view.centerOn(item)
    QTest.mouseClick(win.view.viewport(), Qt.LeftButton, pos=win.view.mapFromScene(item.sceneBoundingRect().center()))
    qtbot.waitUntil(lambda: win.scene.selected_block_ids() == [bid], timeout=5000)


def mark(qtbot, win, bid, param, text):
    click_block(qtbot, win, bid)
    ed = win.inspector.candidates
    qtbot.waitUntil(ed.isVisible, timeout=5000)
    ed.param.setCurrentText(param)
    ed.values.setFocus()
    ed.values.selectAll()
    QTest.keyClicks(ed.values, text)
    QTest.keyClick(ed.values, Qt.Key_Return)


def test_candidates_typed_in_the_inspector_are_one_undo_step_with_a_badge_and_the_cost_range(qtbot, make_window):
    win = make_window(template="lenet5", size=(1500, 950))
    mark(qtbot, win, "c1", "out_channels", "4, 6, 8")
    qtbot.waitUntil(lambda: win.doc.graph.meta.get("search") == {"choices": {"c1.out_channels": [4, 6, 8]}},
                    timeout=5000)
    qtbot.waitUntil(lambda: win.scene.blocks["c1"].candidates == 3, timeout=5000)
    qtbot.waitUntil(lambda: "3 designs" in win.space_label.text(), timeout=5000)
    macs = [analyze(with_choices(win.doc.graph, {"c1.out_channels": w})[0]).inference.macs for w in (4, 6, 8)]
    from builder.insight.report import human
    assert f"MACs {human(min(macs))}..{human(max(macs))}" in win.space_label.text()
    mark(qtbot, win, "c1", "out_channels", "4, 0")  # refused: one message, nothing changed
    assert "candidate 0" in win.inspector.candidates.message.text()
    assert win.doc.graph.meta["search"]["choices"]["c1.out_channels"] == [4, 6, 8]
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    win.view.setFocus()
    QTest.keySequence(win, "Ctrl+Z")
    qtbot.waitUntil(lambda: "search" not in win.doc.graph.meta, timeout=5000)
    qtbot.waitUntil(lambda: win.scene.blocks["c1"].candidates == 0 and win.space_label.text() == "", timeout=5000)


def test_the_search_panel_runs_a_study_and_applies_a_trial(qtbot, make_window, tmp_path):
    win = make_window(template="lenet5", size=(1500, 950))
    mark(qtbot, win, "c1", "out_channels", "4, 8")
    qtbot.waitUntil(lambda: win.scene.blocks["c1"].candidates == 2, timeout=5000)
    win.search_dock.show()
    win.search_dock.raise_()
    panel = win.search
    qtbot.waitUntil(panel.start_button.isVisible, timeout=5000)
    panel.trials.setValue(3)
    panel.steps.setValue(2)
    panel.dataset.setCurrentText("synthetic")
    QTest.keyClicks(panel.folder, str(tmp_path / "study"))
    QTest.mouseClick(panel.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.running or (tmp_path / "study" / "trials.json").exists(), timeout=10000)
    qtbot.waitUntil(lambda: not panel.running, timeout=300000)
    rows = json.loads((tmp_path / "study" / "trials.json").read_text())["trials"]
    assert panel.table.rowCount() == len(rows) == 3
    done = [r for r in rows if r["state"] == "complete"]
    assert done and "trained" in panel.status.text()
    assert len(panel.scatter.data) == len(done)
    target = next(i for i, r in enumerate(rows) if r["choices"]["c1.out_channels"] != 6)
    rect = panel.table.visualItemRect(panel.table.item(target, 0))
    QTest.mouseClick(panel.table.viewport(), Qt.LeftButton, pos=rect.center())
    qtbot.waitUntil(panel.apply_button.isEnabled, timeout=5000)
    QTest.mouseDClick(panel.table.viewport(), Qt.LeftButton, pos=rect.center())  # its design against the current
    qtbot.waitUntil(lambda: bool(win.comparing.windows), timeout=10000)
    cv = win.comparing.windows[-1]
    picked = rows[target]["choices"]["c1.out_channels"]
    assert not cv.result.added and not cv.result.removed
    params = {c.b: c.params for c in cv.result.changed if c.params}
    assert params == {"c1": {"out_channels": (6, picked)}}  # the rest changed shape only
    before = win.doc.undo_stack.count()
    QTest.mouseClick(panel.apply_button, Qt.LeftButton, pos=QPoint(5, 5))
    qtbot.waitUntil(lambda: win.doc.graph.block("c1").params["out_channels"] == picked, timeout=5000)
    assert win.doc.undo_stack.count() == before + 1


def test_training_settings_are_searched_the_same_way_from_the_train_panel(qtbot, make_window):
    win = make_window(template="lenet5", size=(1500, 950))
    win.train_dock.show()
    win.train_dock.raise_()
    ed = win.trainer.search_settings
    qtbot.waitUntil(ed.isVisible, timeout=5000)
    ed.param.setCurrentText("lr")
    QTest.keyClicks(ed.values, "0.01, 0.1")
    QTest.keyClick(ed.values, Qt.Key_Return)
    qtbot.waitUntil(lambda: (win.doc.graph.meta.get("search") or {}).get("choices") == {"train.lr": [0.01, 0.1]},
                    timeout=5000)
    from builder.search.space import choices
    assert [(c.name, c.trains, c.values) for c in choices(win.doc.graph)] == [("train.lr", True, (0.01, 0.1))]
    assert "lr: 0.01, 0.1" in ed.title.text()
    qtbot.waitUntil(lambda: "lr: 0.01, 0.1" in win.search.settings.title.text(), timeout=5000)  # the same choice
