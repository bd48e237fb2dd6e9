"""Autosave and crash recovery: SIGKILL the app in the middle of editing, start it again, recover the edit."""
import os
import signal
import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from builder.ui.main_window import MainWindow
from helpers import when_modal

ROOT = Path(__file__).resolve().parents[1]

EDITOR = """
import sys
from PySide6.QtWidgets import QApplication
from builder.ui.main_window import MainWindow
app = QApplication([])
win = MainWindow()
win.show()
win.open_template("lenet5")
win.doc.push("Set out_channels of c1", lambda g: g.set_params("c1", {"out_channels": 11}))
win.doc.push("Name c3", lambda g: g.set_label("c3", "edited before the crash"))
print("edited", flush=True)
app.exec()
"""


def test_sigkill_during_editing_then_recover(qtbot, tmp_path, monkeypatch):
    cfg = tmp_path / "config"
    env = dict(os.environ, BLOCK_BUILDER_CONFIG_DIR=str(cfg), BLOCK_BUILDER_AUTOSAVE_SECONDS="0.3",
               QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", EDITOR], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "edited"
        def autosaved():  # both edits are in an autosave file (written atomically: complete once it exists)
            return any("edited before the crash" in f.read_text() for f in (cfg / "recovery").glob("session-*.json"))
        qtbot.waitUntil(autosaved, timeout=60000)
        proc.send_signal(signal.SIGKILL)  # a crash: no clean-up runs
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(cfg))
    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.undo_stack.setClean())
    win.show()
    asked = []
    answered = when_modal(QMessageBox, lambda box: (asked.append(box.text()), box.button(QMessageBox.Yes).click()))
    assert win.offer_recovery()
    answered.check()
    assert asked and "did not close cleanly" in asked[0]
    g = win.doc.graph
    assert g.block("c1").params["out_channels"] == 11
    assert g.block("c3").label == "edited before the crash"
    assert win.doc.dirty and "*" in win.windowTitle()
    win.doc.refresh()
    assert win.doc.analysis.blocks["c1"].out_shape == (11, 28, 28)
    # a clean exit leaves nothing to recover
    win.doc.undo_stack.setClean()
    win.close()
    assert not list((cfg / "recovery").glob("session-*.json"))


def test_no_recovery_offered_after_a_clean_exit(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path))
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.doc.undo_stack.setClean())
    w.open_template("lenet5")
    w.doc.push("edit", lambda g: g.set_params("c1", {"out_channels": 9}))
    w.autosave()
    assert w.recovery.path.exists()
    w.doc.undo_stack.setClean()
    w.close()
    assert not w.recovery.path.exists()
    w2 = MainWindow()
    qtbot.addWidget(w2)
    assert not w2.offer_recovery()
