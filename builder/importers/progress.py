"""What an import is doing now (``Capturing layer1.0.bn1 (BatchNormAct2d)``), for the window's busy dialog and
the command line: the importers call :func:`step`; an import in a child process writes each step to a file the
parent follows (:func:`to_file`, :func:`follow`)."""
from __future__ import annotations

import threading
from pathlib import Path

_state: dict = {"text": "", "file": None}
_changed = threading.Condition()


def _set(text: str) -> None:
    with _changed:
        _state["text"] = text
        _changed.notify_all()


def step(text: str) -> None:
    """Say what the import does now."""
    _set(text)
    f = _state["file"]
    if f is not None:
        try:
            f.write_text(text, encoding="utf-8")
        except OSError:
            pass


def current() -> str:
    """What the import running now does ("" before it starts)."""
    return _state["text"]


def reset() -> None:
    _set("")


def wait_for(text: str, timeout: float) -> bool:
    """Wait until the import says ``text`` (from this process or the child it follows); False after
    ``timeout`` seconds."""
    with _changed:
        return _changed.wait_for(lambda: _state["text"] == text, timeout)


def to_file(path) -> None:
    """Also write each step to ``path`` (the child of a contained import)."""
    _state["file"] = Path(path)


def follow(path) -> None:
    """Take the step a child wrote to ``path`` as this process's own."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return
    if text and text[:300] != _state["text"]:
        _set(text[:300])
