"""Autosave and crash recovery: SIGKILL the app in the middle of editing, start it again, recover the edit."""
import os
import signal
import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from builder.ui.main_window import MainWindow
from builder.ui import recovery
from helpers import when_modal

ROOT = Path(__file__).resolve().parents[1]


def _click(box, text):
    button = next(b for b in box.buttons() if b.text() == text)
    button.click()


def answer_in_turn(*texts):
    """Answer the next message boxes, one after another, by clicking the buttons named ``texts``; returns the
    answers (each with a deadline) and the texts of the boxes seen."""
    answers, seen = [], []

    def arm(i):
        def act(box):
            seen.append(box.text())
            if i + 1 < len(texts):
                arm(i + 1)
            _click(box, texts[i])
        answers.append(when_modal(QMessageBox, act))
    arm(0)
    return answers, seen

EDITOR = """
import sys
from PySide6.QtWidgets import QApplication
from builder.ui.main_window import MainWindow
app = QApplication([])
win = MainWindow()
win.show()
win.open_template("lenet5")
win.doc.push("Set out_channels of c1", lambda g: g.set_params("c1", {"out_channels": int(sys.argv[1])}))
win.doc.push("Name c3", lambda g: g.set_label("c3", sys.argv[2]))
print("edited", flush=True)
app.exec()
"""


def _crash_editors(qtbot, cfg, edits):
    """Start one app process per (channels, label) edit, wait until each has autosaved its edits, SIGKILL them."""
    env = dict(os.environ, BLOCK_BUILDER_CONFIG_DIR=str(cfg), BLOCK_BUILDER_AUTOSAVE_SECONDS="0.3",
               QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", EDITOR, str(ch), label], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for ch, label in edits]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "edited"

        def autosaved():  # every edit is in an autosave file (written atomically: complete once it exists)
            texts = [f.read_text() for f in (cfg / "recovery").glob("session-*.json")]
            return all(any(label in t for t in texts) for _, label in edits)
        qtbot.waitUntil(autosaved, timeout=60000)
        for proc in procs:
            proc.send_signal(signal.SIGKILL)  # a crash: no clean-up runs
        for proc in procs:
            proc.wait(10)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [p.returncode for p in procs] == [-signal.SIGKILL] * len(procs)


def test_sigkill_during_editing_then_recover(qtbot, tmp_path, monkeypatch):
    cfg = tmp_path / "config"
    _crash_editors(qtbot, cfg, [(11, "edited before the crash")])

    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(cfg))
    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.undo_stack.setClean())
    win.show()
    asked = []
    answered = when_modal(QMessageBox, lambda box: (asked.append(box.text()), _click(box, "Recover")))
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


def _window(qtbot):
    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.undo_stack.setClean())
    win.show()
    return win


def _close_all(win):
    for w in [win, *win.other_windows]:
        w.doc.undo_stack.setClean()
    for w in list(win.other_windows):
        w.close()


def test_two_windows_crash_and_both_documents_come_back(qtbot, tmp_path, monkeypatch):
    cfg = tmp_path / "config"
    _crash_editors(qtbot, cfg, [(11, "first window"), (13, "second window")])
    assert len(list((cfg / "recovery").glob("session-*.json"))) == 2
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(cfg))
    win = _window(qtbot)
    answers, seen = answer_in_turn("Recover", "Recover")
    assert win.offer_recovery() == 2
    for a in answers:
        a.check()
    assert len(seen) == 2 and "(1 of 2)" in seen[0] and "(2 of 2)" in seen[1]
    docs = [win.doc.graph, win.other_windows[0].doc.graph]
    assert sorted((g.block("c1").params["out_channels"], g.block("c3").label) for g in docs) == \
        [(11, "first window"), (13, "second window")]
    assert all(w.doc.dirty for w in (win, win.other_windows[0]))
    # the old files are gone; each window's own autosave holds its document now
    left = sorted((cfg / "recovery").glob("session-*.json"))
    assert left == sorted([win.recovery.path, win.other_windows[0].recovery.path])
    _close_all(win)


def _orphan(cfg, name, label, saved_at, pid=999_999):
    """A recovery file as a window that crashed leaves it (its lock file is free)."""
    import json

    import templates
    from builder.core import project
    g = templates.build("lenet5")
    g.set_label("c3", label)
    doc = project.to_dict(g)
    doc["recovery"] = {"original_path": None, "saved_at": saved_at, "pid": pid}
    path = cfg / "recovery" / f"session-{pid}-{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    path.with_suffix(".lock").write_text("")
    return path


def test_only_the_answered_file_is_removed(qtbot, tmp_path, monkeypatch):
    cfg = tmp_path / "config"
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(cfg))
    newer, older = _orphan(cfg, "2", "newer", 2000.0), _orphan(cfg, "1", "older", 1000.0)
    win = _window(qtbot)
    answers, seen = answer_in_turn("Discard", "Keep for later")
    assert win.offer_recovery() == 0
    [a.check() for a in answers]
    assert not newer.exists() and older.exists()          # newest first: discarded; the other kept
    answers, seen = answer_in_turn("Recover")
    assert win.offer_recovery() == 1                        # offered again next time
    [a.check() for a in answers]
    assert win.doc.graph.block("c3").label == "older" and not older.exists()
    _close_all(win)


def test_a_crashed_file_is_offered_though_its_process_id_is_in_use(qtbot, tmp_path, monkeypatch):
    cfg = tmp_path / "config"
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(cfg))
    reused = _orphan(cfg, "1", "pid reused", 1000.0, pid=os.getppid())  # a live process has that id now
    other = MainWindow()  # a window that is open (in this process): its file is never offered
    qtbot.addWidget(other, before_close_func=lambda w: w.doc.undo_stack.setClean())
    other.open_template("lenet5")
    other.doc.push("edit", lambda g: g.set_params("c1", {"out_channels": 7}))
    other.autosave()
    win = _window(qtbot)
    answers, seen = answer_in_turn("Recover")
    assert win.offer_recovery() == 1
    [a.check() for a in answers]
    assert len(seen) == 1 and win.doc.graph.block("c3").label == "pid reused" and not reused.exists()
    assert other.recovery.path.exists()
    _close_all(win)


def test_a_file_without_a_lock_is_judged_by_when_its_process_started(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path))
    mine = _orphan(tmp_path, "1", "written by a live process", 1000.0, pid=os.getppid())
    mine.with_suffix(".lock").unlink()  # as older versions wrote them
    assert recovery.pending() == []  # the parent process started before the file was written: it may own it
    os.utime(mine, (1000.0, 1000.0))  # written long before that process started: the id was reused
    assert [o.path for o in recovery.pending()] == [mine]


def test_malformed_autosave_files_are_said_and_removed(qtbot, tmp_path, monkeypatch):
    cfg = tmp_path / "config"
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(cfg))
    good = _orphan(cfg, "9", "good", 3000.0)
    bad = {}
    for name, text in (("list", "[]"), ("string", '{"recovery": "x"}'), ("truncated", good.read_text()[:300]),
                       ("network", '{"recovery": {"saved_at": 1}, "format": "block-builder-project", "version": 2, '
                                   '"blocks": 7, "edges": []}'), ("binary", "\udcff")):
        p = cfg / "recovery" / f"session-1-{name}.json"
        p.write_bytes(text.encode("utf-8", "surrogateescape"))
        p.with_suffix(".lock").write_text("")  # as a crashed window leaves it
        bad[name] = p
    win = _window(qtbot)
    warned, offered = [], []

    def removed(box):
        warned.append(box.text())
        answers.append(when_modal(QMessageBox, lambda b: (offered.append(b.text()), _click(b, "Recover"))))
        box.accept()
    answers = [when_modal(QMessageBox, removed)]
    assert win.offer_recovery() == 1  # it does not raise; the readable one is still offered
    for a in answers:
        a.check()
    assert "could not be recovered and were removed" in warned[0]
    assert all(p.name in warned[0] for p in bad.values()) and "no recovery record" in warned[0]
    assert not any(p.exists() or p.with_suffix(".lock").exists() for p in bad.values())
    assert len(offered) == 1 and win.doc.graph.block("c3").label == "good"
    _close_all(win)


def test_an_unwritable_config_folder_is_a_message_not_an_error(qtbot, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the config folder should be")
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(blocker))
    win = _window(qtbot)
    win.open_template("lenet5")
    win.doc.push("edit", lambda g: g.set_params("c1", {"out_channels": 9}))
    messages = win.messages.history
    win.autosave()  # no exception: the message strip says why
    assert any("Autosave failed" in m and "cannot write autosave files" in m for m in messages), messages
    assert win.offer_recovery() == 0
    win.doc.undo_stack.setClean()
    assert win.close() and blocker.read_text().startswith("a file")


def test_a_recovery_file_that_cannot_be_removed_is_a_message(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path))
    win = _window(qtbot)
    win.open_template("lenet5")
    win.doc.push("edit", lambda g: g.set_params("c1", {"out_channels": 9}))
    win.autosave()
    win.doc.undo_stack.setClean()
    real = Path.unlink

    def refuse(self, *a, **k):
        if self == win.recovery.path:
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "unlink", refuse)
    messages = win.messages.history
    win.autosave()  # clean now: it tries to remove the file
    assert any("cannot remove" in m and "Permission denied" in m for m in messages), messages
    assert win.close()  # closing does not raise either
    monkeypatch.setattr(Path, "unlink", real)
    assert recovery.pending() and recovery.pending()[0].graph is not None  # it is offered next time
