"""Child processes that run this checkout's command line (``python -m builder train|evaluate ...``): the window
never waits on them and never imports torch for them."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment

ROOT = Path(__file__).resolve().parents[2]


def builder_process(parent) -> QProcess:
    """A QProcess (a child of ``parent``) that finds this checkout's packages, runs in its folder and writes its
    output unbuffered (events arrive as they happen); the caller connects its signals and starts it."""
    proc = QProcess(parent)
    env = QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONPATH", str(ROOT) + os.pathsep + env.value("PYTHONPATH", ""))
    env.insert("PYTHONUNBUFFERED", "1")
    proc.setProcessEnvironment(env)
    proc.setWorkingDirectory(str(ROOT))
    return proc
