"""Weights I/O: safetensors files read and written, and checked against a network before anything is loaded."""
from __future__ import annotations

from pathlib import Path

from .settings import TrainingError

try:
    from ..core.files import atomic_file
except ImportError:  # the training package export writes: its own copy of core/files.py beside it
    from .files import atomic_file

MAX_NAME_BYTES = 255  # a file name's limit on every common file system

def save_tensors(tensors: dict, path: Path):
    """A safetensors file, replaced atomically, with the mode the umask gives (as any editor's files)."""
    from safetensors.torch import save_file

    with atomic_file(path) as tmp:  # a temporary file of its own: concurrent writers never share one
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))


def load_tensors(path) -> dict:
    """The tensors of a safetensors file; a :class:`TrainingError` that names the file and what is wrong with it
    (missing, unreadable, not safetensors: an empty, truncated or oversized header) otherwise."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: {'a folder, not a weights file' if path.is_dir() else 'no such file'}")
    try:
        return load_file(str(path))
    except OSError as e:
        raise TrainingError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (SafetensorError, ValueError, RuntimeError, TypeError) as e:
        raise TrainingError(f"{path}: not a valid safetensors file ({_first_line(e)})") from None


def _first_line(e) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def _listed(names, most=4) -> str:
    names = list(names)
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def weights_problems(expected: dict, tensors: dict) -> list[str]:
    """What keeps ``tensors`` from loading into a module whose state_dict is ``expected``: missing and unknown
    tensors, shapes (both given), dtypes that cannot convert (integer for float, ...)."""
    problems = []
    missing = [k for k in expected if k not in tensors]
    unknown = [k for k in tensors if k not in expected]
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing ({_listed(missing)})")
    if unknown:
        problems.append(f"{len(unknown)} tensor(s) this network does not have ({_listed(unknown)})")
    for k, v in tensors.items():
        want = expected.get(k)
        if want is None:
            continue
        if tuple(v.shape) != tuple(want.shape):
            problems.append(f"{k} has shape {tuple(v.shape)}, the network's is {tuple(want.shape)}")
        elif v.dtype != want.dtype and not (v.is_floating_point() and want.is_floating_point()):
            problems.append(f"{k} is {str(v.dtype).replace('torch.', '')}, the network's is "
                            f"{str(want.dtype).replace('torch.', '')}")
    import torch
    bad = [k for k, v in tensors.items() if k in expected and v.is_floating_point() and v.numel()
           and not bool(torch.isfinite(v).all())]
    if bad:  # NaN or infinite weights train to NaN and predict nothing
        problems.append(f"{len(bad)} tensor(s) hold NaN or infinite values ({_listed(bad)})")
    return problems


def load_weights(model, path) -> None:
    """Load a weights file into ``model``, all or nothing: every problem is found before any tensor is copied."""
    tensors = load_tensors(path)
    problems = weights_problems(model.state_dict(), tensors)
    if problems:
        raise TrainingError(f"{path}: the weights do not fit this network: {_listed(problems, 3)}")
    model.load_state_dict(tensors, strict=True)


def own_weights(graph, project_file) -> Path | None:
    """The weights file a project names in ``meta.weights`` (written beside it by import): None when it names
    none; a :class:`TrainingError` when the name is not a plain file name (a path elsewhere, ``..``, too long for
    a file system, not text) or the file is not there."""
    own = graph.meta.get("weights")
    if own is None or own == "":
        return None
    if not isinstance(own, str) or "/" in own or "\\" in own or own in (".", "..") or "\0" in own:
        raise TrainingError(f"the project's meta.weights must be the name of a file beside it, not {str(own)[:80]!r}")
    if len(own.encode("utf-8", errors="replace")) > MAX_NAME_BYTES:
        raise TrainingError(f"the project's meta.weights is {len(own):,} characters long: no file system holds a "
                            f"name over {MAX_NAME_BYTES} bytes")
    path = Path(project_file).parent / own
    if not path.is_file():
        raise TrainingError(f"the project names weights {own}, but {path} is not there (or pass --from-scratch)")
    return path
