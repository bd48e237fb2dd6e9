"""What an import is doing now (``Capturing layer1.0.bn1 (BatchNormAct2d)``), for the window's busy dialog and
the command line: the importers call :func:`step`; an import in a child process writes each step to a file the
parent follows (:func:`to_file`, :func:`follow`)."""
from __future__ import annotations

from pathlib import Path

_state: dict = {"text": "", "file": None}


def step(text: str) -> None:
    """Say what the import does now."""
    _state["text"] = text
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
    _state["text"] = ""


def to_file(path) -> None:
    """Also write each step to ``path`` (the child of a contained import)."""
    _state["file"] = Path(path)


def follow(path) -> None:
    """Take the step a child wrote to ``path`` as this process's own."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return
    if text:
        _state["text"] = text[:300]
