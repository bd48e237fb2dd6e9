"""Writers that race: two processes saving or exporting to one path, and two windows with one file open."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from PySide6.QtWidgets import QMessageBox

import templates
from builder.core import files, project
from helpers import when_modal

WRITER = """
import sys, templates
from builder.core import files, project
from builder.train.weights import save_tensors
import torch
what, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
g = templates.build("lenet5")
for i in range(n):
    if what == "project":
        g.name = f"writer-{sys.argv[4]}-{i}"
        project.save(g, path)
    else:
        save_tensors({"w": torch.full((64, 64), float(i))}, path)
print("ok")
"""


def race(tmp_path, what, target, n=60):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, what, str(target), str(n), str(k)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, results)]


def test_two_processes_saving_one_project_never_fail_and_leave_a_whole_file(tmp_path):
    target = tmp_path / "net.json"
    for code, out, err in race(tmp_path, "project", target):
        assert (code, out.strip()) == (0, "ok"), err
    doc = json.loads(target.read_text())
    assert doc["name"].startswith("writer-") and project.load(target).block("c1")
    assert not list(tmp_path.glob(".net.json.*.tmp"))  # every writer's temporary file renamed or removed


def test_two_processes_writing_one_weights_file_never_fail(tmp_path):
    from builder.train.weights import load_tensors
    target = tmp_path / "w.safetensors"
    for code, out, err in race(tmp_path, "weights", target, n=40):
        assert (code, out.strip()) == (0, "ok"), err
    assert load_tensors(target)["w"].shape == (64, 64)
    assert not list(tmp_path.glob(".w.safetensors.*.tmp"))


def test_only_an_interrupted_saves_temporary_file_is_cleared(tmp_path):
    """A save clears the temporary files of saves that were killed (their process is gone, or they are over an
    hour old); one of a live process is another writer's save in progress."""
    target = tmp_path / "net.json"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = tmp_path / f".net.json.{gone.stdout.strip()}.x1.tmp"
    writing = tmp_path / f".net.json.{os.getppid()}.x2.tmp"
    old = tmp_path / f".net.json.{os.getppid()}.x3.tmp"
    for f in (killed, writing, old):
        f.write_text("{")
    past = time.time() - files.STALE_TEMP_SECONDS - 60
    os.utime(old, (past, past))
    project.save(templates.build("lenet5"), target)
    assert not killed.exists() and not old.exists() and writing.exists()


def test_a_window_asks_before_overwriting_what_another_window_saved(qtbot, make_window, tmp_path):
    path = tmp_path / "shared.json"
    project.save(templates.build("lenet5"), path)
    a, b = make_window(), make_window()
    assert a.open_path(path, ask=False) and b.open_path(path, ask=False)
    a.doc.push("A's edit", lambda g: g.set_params("c1", {"out_channels": 8}))
    assert a.save()
    b.doc.push("B's edit", lambda g: g.set_params("c1", {"out_channels": 12}))
    seen = []
    cancelled = when_modal(QMessageBox, lambda box: (seen.append(box.text()), box.button(QMessageBox.Cancel).click()))
    assert not b.save()
    cancelled.check()
    assert "changed on disk since this window opened or saved it" in seen[0]
    assert project.load(path).block("c1").params["out_channels"] == 8  # A's save is kept
    assert b.doc.dirty
    overwrite = when_modal(QMessageBox, lambda box: next(x for x in box.buttons() if x.text() == "Overwrite it").click())
    assert b.save()
    overwrite.check()
    assert project.load(path).block("c1").params["out_channels"] == 12
    # once B saved, A is the one whose copy is stale; B saving again asks nothing
    b.doc.push("B again", lambda g: g.set_params("c1", {"out_channels": 14}))
    assert b.save() and project.load(path).block("c1").params["out_channels"] == 14
    assert a.doc.changed_on_disk() and not b.doc.changed_on_disk()
