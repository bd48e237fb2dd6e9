"""Autosave and crash recovery: unsaved work is written to a recovery file every few minutes; after a crash
the next start offers it back. A clean exit removes the file."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QStandardPaths

from builder import project
from builder.errors import ProjectError

DEFAULT_SECONDS = 120


def config_dir() -> Path:
    base = os.environ.get("BLOCK_BUILDER_CONFIG_DIR")
    if base:
        return Path(base)
    return Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation) or Path.home() / ".block-builder")


def recovery_dir() -> Path:
    return config_dir() / "recovery"


def autosave_seconds() -> float:
    try:
        return max(float(os.environ.get("BLOCK_BUILDER_AUTOSAVE_SECONDS", DEFAULT_SECONDS)), 0.2)
    except ValueError:
        return DEFAULT_SECONDS


class Recovery:
    """One per window: its own recovery file, named by process id and start time."""

    def __init__(self):
        self.path = recovery_dir() / f"session-{os.getpid()}-{int(time.time() * 1000)}.json"

    def write(self, graph, original_path) -> Path:
        doc = project.to_dict(graph)
        doc["recovery"] = {"original_path": str(original_path) if original_path else None, "saved_at": time.time(),
                           "pid": os.getpid()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        project.atomic_write(self.path, json.dumps(doc, indent=1, ensure_ascii=False))
        return self.path

    def discard(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def pending(exclude: Path | None = None) -> list[tuple[Path, dict]]:
    """Recovery files left by sessions that did not end cleanly, newest first."""
    out = []
    d = recovery_dir()
    if not d.is_dir():
        return out
    for p in d.glob("session-*.json"):
        if exclude is not None and p == exclude:
            continue
        try:
            pid = int(p.name.split("-")[1])
            if pid != os.getpid() and _alive(pid):
                continue  # another window is still running and owns it
            info = json.loads(p.read_text()).get("recovery", {})
        except (ValueError, OSError, IndexError):
            info = {}
        out.append((p, info))
    out.sort(key=lambda x: x[1].get("saved_at", 0), reverse=True)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped) is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def load(path: Path):
    graph = project.load(path)
    info = json.loads(path.read_text()).get("recovery", {})
    return graph, info.get("original_path")


__all__ = ["Recovery", "pending", "load", "ProjectError", "autosave_seconds"]
