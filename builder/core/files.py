"""Files replaced atomically, by any number of writers at once. Standard library only: the training package that
``export --format train`` writes carries a copy of this module (as ``files.py``)."""
from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from pathlib import Path

STALE_TEMP_SECONDS = 3600  # a temporary file this old is an interrupted save's, not another writer's


class CannotCreate(OSError):
    """The temporary file could not be made: the folder is missing or not writable."""


@contextlib.contextmanager
def atomic_file(path):
    """A temporary file of its own beside ``path`` (unique per writer: two processes or windows writing one path
    never share one), yielded for the caller to write; renamed over ``path`` when the block ends, removed if it
    raises: a failure at any point leaves the previous file as it was."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise CannotCreate(e.errno, e.strerror) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode(path))  # mkstemp's 0600 would stick to the saved file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    remove_leftovers(path)


def write_bytes(path, data: bytes) -> None:
    """``data`` to ``path`` through :func:`atomic_file`, flushed to disk before the rename."""
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def file_mode(path: Path) -> int:
    """The mode a saved file gets: the old file's when there is one, else what the umask gives (0644 by
    default), as any editor does."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def remove_leftovers(path: Path) -> None:
    """Temporary files of earlier saves of ``path`` that were interrupted (a kill between write and rename): those
    of a process that is gone, and any over an hour old; one of a live process is another writer's save in
    progress, and is left alone."""
    now = time.time()
    prefix = f".{path.name}."
    for stale in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = stale.name[len(prefix):].split(".", 1)[0]
        try:
            if not _alive(pid) or now - stale.stat().st_mtime > STALE_TEMP_SECONDS:
                stale.unlink()
        except OSError:
            pass


def _alive(pid: str) -> bool:
    """Whether the process that named a temporary file may still be writing it (unknown: assume so)."""
    if not pid.isdigit():
        return False  # not one of ours: an older version's name, left by an interrupted save
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return True
    return True
