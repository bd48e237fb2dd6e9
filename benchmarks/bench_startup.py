"""Launch to a painted window, memory with GoogLeNet open, and quit time: ``block-builder gui --template googlenet``
started 5 times as a user would (a new interpreter each time), median of the 5. The app's startup probe
(BLOCK_BUILDER_STARTUP_PROBE) prints when the canvas first painted, whether torch was imported by then and the
resident memory, then quits; the quit time is from the start of the close to the process's exit.
Reference in the same run: a bare interpreter that imports PySide6 and shows an empty window (the floor).
Also: closing the window while the Train panel trains (the run is stopped first).
Targets (issue 14): launch <= 1.5 s, torch not imported, RSS <= 300 MB, quit < 1 s.
Run: .venv/bin/python -m benchmarks startup
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = ("import time, sys; from PySide6.QtWidgets import QApplication, QMainWindow; app = QApplication([]);"
         "w = QMainWindow(); w.resize(800, 600); w.show(); app.processEvents(); print(time.time(), flush=True)")


def _env(config):
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               BLOCK_BUILDER_STARTUP_PROBE="1", BLOCK_BUILDER_CONFIG_DIR=config)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def launch_once(config: str) -> dict:
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "builder", "gui", "--template", "googlenet"], cwd=ROOT,
                            env=_env(config), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        quitting = json.loads(proc.stdout.readline())["quitting"]
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    ended = time.time()
    return {"launch_s": first["painted"] - t0, "torch_imported": first["torch"], "rss_mb": first["rss_mb"],
            "quit_s": ended - quitting, "blocks": first["blocks"], "exit_code": proc.returncode}


def floor_once() -> float:
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", FLOOR], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen")))
    return float(out.stdout.strip().splitlines()[-1]) - t0


QUIT_WHILE_TRAINING = """
import json, sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from builder.ui.main_window import MainWindow
w = MainWindow(); w.show(); w.open_template("lenet5"); app.processEvents()
t = w.trainer
t.dataset.setCurrentText("synthetic"); t.editors["synthetic_size"].setValue(200000); t.out.setText(sys.argv[1])
t.start()
deadline = time.time() + 120
while len(t.steps) < 3 and time.time() < deadline:
    app.processEvents(); time.sleep(0.01)
running = t.running
w.doc.undo_stack.setClean()
start = time.perf_counter(); w.close(); app.quit()
print(json.dumps({"running": running, "close_s": time.perf_counter() - start, "still_running": t.running}))
"""


def quit_while_training(config: str) -> dict:
    """Close the window while the Train panel trains: the run is stopped, then the window goes."""
    out = subprocess.run([sys.executable, "-c", QUIT_WHILE_TRAINING, str(Path(config) / "run")], cwd=ROOT,
                         env=_env(config), capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(repeat: int = 5):
    from .common import report
    with tempfile.TemporaryDirectory() as config:
        launch_once(config)  # warm the file cache once (not counted)
        runs = [launch_once(config) for _ in range(repeat)]
        training = quit_while_training(config)
    floor = statistics.median(floor_once() for _ in range(repeat))
    launch = statistics.median(r["launch_s"] for r in runs)
    return report("startup", {
        "launch_to_painted_s_median": launch,
        "launch_to_painted_s_runs": [round(r["launch_s"], 3) for r in runs],
        "torch_imported_before_paint": any(r["torch_imported"] for r in runs),
        "rss_mb_googlenet_open_median": statistics.median(r["rss_mb"] for r in runs),
        "quit_s_median": statistics.median(r["quit_s"] for r in runs),
        "quit_s_max": max(r["quit_s"] for r in runs),
        "blocks_open": runs[0]["blocks"],
        "close_while_training_s": training["close_s"],
        "training_was_running": training["running"],
        "training_left_running": training["still_running"],
        "reference_bare_pyside6_window_s": floor,
        "launch_over_bare_window": launch / floor,
    })


if __name__ == "__main__":
    run()
