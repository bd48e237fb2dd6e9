"""Autosave and crash recovery: unsaved work is written to a recovery file every few minutes; after a crash
the next start offers it back. A clean exit removes the file.

Every window has its own file (``session-<pid>-<ms>.json``) and holds an exclusive lock on a lock file beside
it (``.lock``) for as long as it is open. The operating system drops the lock when the process ends, however it
ends, so a file whose lock can be taken belongs to no running window: that is what makes it an orphan, not
whether its process id is in use (ids are reused). A file without a lock (older versions; no file locks on
Windows) is an orphan when its process is gone or started after the file was last written."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QStandardPaths

from builder.core import project
from builder.core.errors import ProjectError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

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


def _lock_path(path: Path) -> Path:
    return path.with_suffix(".lock")


class Recovery:
    """One per window: its own recovery file, named by process id and start time, and the lock that says the
    window is alive (taken at the first write)."""

    def __init__(self):
        self.path = recovery_dir() / f"session-{os.getpid()}-{time.time_ns() // 1000}.json"
        self._lock_fd = None

    def _lock(self) -> None:
        if self._lock_fd is not None or fcntl is None:
            return
        fd = os.open(_lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        self._lock_fd = fd

    def write(self, graph, original_path) -> Path:
        """Write the recovery file; a :class:`ProjectError` when the folder cannot be written."""
        doc = project.to_dict(graph)
        doc["recovery"] = {"original_path": str(original_path) if original_path else None, "saved_at": time.time(),
                           "pid": os.getpid()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock()  # before the file exists, so no other window ever takes it for an orphan
        except OSError as e:
            raise ProjectError(self.path.parent, f"cannot write autosave files here: {e.strerror or e}") from None
        project.atomic_write(self.path, json.dumps(doc, indent=1, ensure_ascii=False))
        return self.path

    def discard(self) -> str | None:
        """Remove the recovery file and release the lock; the reason when the file could not be removed."""
        problem = remove(self.path)
        if self._lock_fd is not None:
            try:
                os.close(self._lock_fd)  # releases the lock
            except OSError:
                pass
            self._lock_fd = None
        return problem


def remove(path: Path) -> str | None:
    """Remove a recovery file and its lock file; the reason when it could not be removed, else None."""
    problem = None
    for p in (path, _lock_path(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            problem = problem or f"cannot remove {p}: {e.strerror or e}"
    return problem


@dataclass
class Orphan:
    """A recovery file no running window owns: ``graph`` when it reads, ``problem`` when it does not."""
    path: Path
    saved_at: float = 0.0
    original_path: str | None = None
    graph: object = None
    problem: str | None = None


def _owned(path: Path) -> bool:
    """True while a running window holds the file's lock (or, without locks, while its process id is alive)."""
    lock = _lock_path(path)
    if fcntl is not None and lock.exists():
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            pass
        finally:
            os.close(fd)  # closing releases a lock taken here
        return False
    try:  # a file without a lock (older versions, or no file locks here): its process id, and when that started
        pid = int(path.name.split("-")[1])
        written = path.stat().st_mtime
    except (IndexError, ValueError, OSError):
        return False
    if pid == os.getpid() or not _alive(pid):
        return False
    started = _process_start(pid)
    return started is None or started <= written + 1.0  # a process that started later reuses the id


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), where /proc tells; else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks after boot
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _read(path: Path) -> Orphan:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        return Orphan(path, problem=f"it cannot be read ({type(e).__name__}: {str(e)[:200]})")
    info = doc.get("recovery") if isinstance(doc, dict) else None
    if not isinstance(info, dict):
        return Orphan(path, problem="it is not an autosave file (it has no recovery record)")
    saved_at = info.get("saved_at")
    saved_at = float(saved_at) if isinstance(saved_at, (int, float)) and not isinstance(saved_at, bool) else 0.0
    original = info.get("original_path")
    original = original if isinstance(original, str) else None
    try:
        graph = project.from_dict({k: v for k, v in doc.items() if k != "recovery"}, str(path))
    except ProjectError as e:
        return Orphan(path, saved_at, original, problem=f"its network cannot be loaded ({e})")
    return Orphan(path, saved_at, original, graph)


def pending(exclude: Path | None = None) -> list[Orphan]:
    """Recovery files left by windows that did not close cleanly, newest first, each read (or why not)."""
    d = recovery_dir()
    if not d.is_dir():
        return []
    out = []
    for p in d.glob("session-*.json"):
        if (exclude is not None and p == exclude) or _owned(p):
            continue
        out.append(_read(p))
    for lock in d.glob("session-*.lock"):  # a lock whose window ended before its first autosave
        if not lock.with_suffix(".json").exists() and not _owned(lock.with_suffix(".json")):
            remove(lock.with_suffix(".json"))
    out.sort(key=lambda o: o.saved_at, reverse=True)
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


__all__ = ["Recovery", "Orphan", "pending", "remove", "ProjectError", "autosave_seconds"]
