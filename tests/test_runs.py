"""Run history (issue 15): every training run records run.json; two LeNet-5 runs with different learning rates
appear in the Runs view with their curves overlaid, and opening a run restores its graph."""
import json
import re

import pytest
from PySide6.QtCore import Qt

from builder.cli import main
from builder.runs import find_runs
from builder.ui.main_window import MainWindow

pytestmark = pytest.mark.timeout(240)


def _train(out, lr, capsys):
    assert main(["train", "lenet5", "--dataset", "synthetic", "--synthetic-size", "64", "--batch-size", "16",
                 "--epochs", "2", "--workers", "0", "--lr", str(lr), "--out", str(out), "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_two_runs_are_recorded_listed_overlaid_and_reopened(qtbot, tmp_path, monkeypatch, capsys):
    done = {lr: _train(tmp_path / "runs" / f"lr{lr}", lr, capsys) for lr in (0.01, 0.2)}
    runs = find_runs(tmp_path / "runs")
    assert sorted(r.doc["settings"]["lr"] for r in runs) == [0.01, 0.2]
    for r in runs:
        assert r.doc["status"] == "done" and len(r.doc["epochs"]) == 2 and r.doc["steps"]
        assert r.val_accuracy == done[r.doc["settings"]["lr"]]["val_accuracy"]
        assert r.doc["totals"]["inference"]["params"] == 61_706
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.count("LeNet-5, lenet_sgd") == 2
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.undo_stack.setClean())
    win.show()
    win.runs.set_folder(tmp_path / "runs")
    assert win.runs.list.count() == 2
    for i in range(2):
        win.runs.list.item(i).setCheckState(Qt.Checked)  # both ticked: both curves drawn
    assert len(win.runs.curves) == 2
    for curve in win.runs.curves.values():
        xs, ys = curve.getData()
        assert list(xs) == [1, 2] and len(ys) == 2
    # compared side by side: a row each (network, params, MACs, settings, best accuracy, time), and accuracy
    # against MACs
    table = win.runs.table
    assert table.rowCount() == 2
    heads = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert heads == ["run", "network", "params", "MACs", "settings", "best accuracy", "time"]
    by_run = {table.item(r, 0).text(): [table.item(r, c).text() for c in range(table.columnCount())]
              for r in range(2)}
    for r in runs:
        row = by_run[r.name]
        assert row[1] == "LeNet-5" and row[2] == "61.7K" and f"lr {r.doc['settings']['lr']}" in row[4]
        assert row[5] == f"{r.doc['final']['best_val_accuracy'] * 100:.2f}%"
    xs, ys = win.runs.cost_points.getData()
    assert sorted(ys) == sorted(r.doc["final"]["best_val_accuracy"] for r in runs)
    assert set(xs) == {r.doc["totals"]["inference"]["macs"] for r in runs}
    win.runs.list.setCurrentRow(0)
    with qtbot.waitSignal(win.runs.open_graph, timeout=5000):
        win.runs.open_button.click()
    import templates
    assert win.doc.graph.signature() == templates.build("lenet5").signature()


def test_a_failed_run_is_recorded_as_failed(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "lenet5", "--dataset", str(tmp_path / "nowhere"), "--out", str(out)]) == 3
    capsys.readouterr()
    [run] = find_runs(out)
    assert run.doc["status"] == "error" and "neither a known name" in run.doc["error"]


def test_every_run_gets_a_folder_of_its_own_and_resume_continues_the_newest(tmp_path, monkeypatch, capsys):
    """Issue 22: without --out a run writes runs/<date-time>-<network>, never over an earlier one; --resume
    without --out continues the network's newest run in its own folder."""
    monkeypatch.chdir(tmp_path)
    argv = ["train", "lenet5", "--dataset", "synthetic", "--synthetic-size", "32", "--batch-size", "16",
            "--epochs", "1", "--workers", "0", "--json"]
    for _ in range(2):
        assert main(argv) == 0
    capsys.readouterr()
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(re.fullmatch(r"\d{8}-\d{6}-LeNet-5(-2)?", f) for f in folders), folders
    newest = find_runs(tmp_path / "runs")[0]
    assert (newest.folder / "last.safetensors").is_file() and len(newest.doc["epochs"]) == 1
    resume = ["train", "lenet5", "--dataset", "synthetic", "--synthetic-size", "32", "--batch-size", "16",
              "--epochs", "2", "--workers", "0", "--resume", "--json"]
    assert main(resume) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == folders  # no third folder
    again = find_runs(tmp_path / "runs")[0]
    assert again.folder == newest.folder and [e["epoch"] for e in again.doc["epochs"]] == [1, 2]
    (tmp_path / "runs").rename(tmp_path / "elsewhere")
    assert main(resume[:-1]) == 2  # nothing to resume: one message, exit 2
    assert "no earlier run of 'LeNet-5'" in capsys.readouterr().err


def test_the_runs_dock_follows_a_run_from_the_train_panel_live(qtbot, tmp_path, monkeypatch):
    """The Runs dock lists a run started in the Train panel as it starts and shows it done when it ends, with no
    Refresh pressed; the panel's checkpoint field is empty (a new folder per run)."""
    from PySide6.QtTest import QTest
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path / "config"))
    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: (w.doc.undo_stack.setClean(), w.trainer.shutdown()))
    win.show()
    win.open_template("lenet5")
    panel = win.trainer
    assert panel.out.text() == ""
    panel.dataset.setCurrentText("synthetic")
    panel.epochs.setValue(2)
    panel.batch.setValue(32)
    assert win.runs.list.count() == 0
    with qtbot.waitSignal(panel.finished, timeout=120000):
        QTest.mouseClick(panel.start_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: win.runs.list.count() == 1, timeout=60000)  # listed while it runs
    qtbot.waitUntil(lambda: win.runs.runs and win.runs.runs[0].doc["status"] == "done", timeout=10000)
    assert len(win.runs.runs[0].doc["epochs"]) == 2
    assert win.runs.runs[0].folder.parent.resolve() == (tmp_path / "runs").resolve()
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication
    rows = win.runs.list
    pos = rows.visualItemRect(rows.item(0)).center()
    QApplication.sendEvent(rows.viewport(), QContextMenuEvent(QContextMenuEvent.Mouse, pos, rows.mapToGlobal(pos)))
    texts = [a.text() for a in win.menus.last.actions()]
    assert texts[:2] == ["Open the graph it trained", "Overlay its curves"] and "Refresh" in texts
    overlay = win.menus.last.actions()[1]
    qtbot.waitUntil(win.menus.last.isVisible, timeout=5000)
    QTest.mouseClick(win.menus.last, Qt.LeftButton, pos=win.menus.last.actionGeometry(overlay).center())
    assert rows.item(0).checkState() == Qt.Checked and len(win.runs.curves) == 1
