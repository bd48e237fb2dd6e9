"""Checkpoints of a run: weights and optimizer tensors in safetensors, the run's state as JSON, each file
replaced atomically; a checkpoint is checked whole before a resumed run loads any of it."""
from __future__ import annotations

import json
from pathlib import Path

import torch

try:
    from ..core.files import write_bytes
except ImportError:  # the training package export writes: its own copy of core/files.py beside it
    from .files import write_bytes
from .settings import TrainingError
from .weights import _first_line, _listed, load_tensors, save_tensors, weights_problems

def save_checkpoint(out: Path, tag: str, model, optimizer, state: dict):
    """Weights in safetensors, optimizer tensors beside them, the rest as JSON; each file replaced atomically. A
    file that cannot be written (a full disk, a folder made read-only) is a :class:`TrainingError` naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        _save_checkpoint(out, tag, model, optimizer, state)
    except OSError as e:
        raise TrainingError(f"{out}: cannot write the {tag!r} checkpoint: {e.strerror or e}") from None


def _save_checkpoint(out: Path, tag: str, model, optimizer, state: dict):
    save_tensors(model.state_dict(), out / f"{tag}.safetensors")
    opt_state = optimizer.state_dict()
    tensors, plain = {}, {}
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v
            else:
                plain[f"{pid}.{k}"] = v
    tensors["__rng_cpu__"] = torch.get_rng_state()
    save_tensors(tensors, out / f"{tag}.optim.safetensors")
    doc = dict(state, optimizer_groups=opt_state["param_groups"], optimizer_plain=plain)
    write_json(out / f"{tag}.json", doc)


RUN_STATE = ("epoch", "batch", "step", "best_val_accuracy", "history")


def _no_constant(name):
    raise ValueError(f"{name} is not a value a checkpoint holds")


def _record_problem(doc) -> str | None:
    """What is wrong with a checkpoint's JSON record, or None."""
    if not isinstance(doc, dict):
        return f"the record is a JSON {type(doc).__name__}, not an object"
    for key in ("epoch", "batch", "step"):
        v = doc.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2 ** 62:
            return f"{key!r} must be a whole number 0 or more, not {v!r}"
    best = doc.get("best_val_accuracy", -1.0)
    if not isinstance(best, (int, float)) or isinstance(best, bool) or not -1.0 <= best <= 1.0:
        return f"'best_val_accuracy' must be -1 (none yet) or an accuracy from 0 to 1, not {best!r}"
    if not isinstance(doc.get("history", []), list):
        return "'history' must be a list"
    if not isinstance(doc.get("optimizer_groups"), list):
        return "'optimizer_groups' (the optimizer's settings) is missing or not a list"
    plain = doc.get("optimizer_plain")
    if not isinstance(plain, dict) or not all(isinstance(v, (int, float, bool)) or v is None for v in plain.values()):
        return "'optimizer_plain' is missing or holds something other than numbers"
    return None


def load_checkpoint(out: Path, tag: str, model, optimizer) -> dict:
    """The run state of checkpoint ``tag`` in ``out``, its weights, optimizer and random state loaded into
    ``model`` and ``optimizer``: all or nothing (every file is checked before anything is applied), and every
    failure is one message that names the file and the problem."""
    out = Path(out)
    files = [out / f"{tag}.json", out / f"{tag}.safetensors", out / f"{tag}.optim.safetensors"]
    for f in files:
        if not f.exists():
            raise TrainingError(f"no checkpoint to resume from in {out} ({f} is missing)")
    record, weights_file, optim_file = files
    try:
        doc = json.loads(record.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise TrainingError(f"{record}: not a checkpoint record ({_first_line(e)})") from None
    problem = _record_problem(doc)
    if problem:
        raise TrainingError(f"{record}: {problem}")
    weights = load_tensors(weights_file)
    problems = weights_problems(model.state_dict(), weights)
    if problems:
        raise TrainingError(f"{weights_file}: the weights do not fit this network: {_listed(problems, 3)}")
    tensors = load_tensors(optim_file)
    rng = tensors.pop("__rng_cpu__", None)
    want = torch.get_rng_state()
    if rng is None or rng.dtype != want.dtype or rng.shape != want.shape:
        raise TrainingError(f"{optim_file}: the random generator's state is missing or malformed")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    state: dict = {}
    for key, v in list(tensors.items()) + list(doc["optimizer_plain"].items()):
        pid, dot, k = key.partition(".")
        if not (dot and pid.isascii() and pid.isdigit() and int(pid) < len(params) and k):
            raise TrainingError(f"{optim_file}: optimizer state {key!r} belongs to no parameter of this network")
        p = params[int(pid)]
        if torch.is_tensor(v) and v.dim() and tuple(v.shape) != tuple(p.shape):
            raise TrainingError(f"{optim_file}: optimizer state {key} has shape {tuple(v.shape)}, its parameter's "
                                f"is {tuple(p.shape)}")
        state.setdefault(int(pid), {})[k] = v
    groups, current = doc["optimizer_groups"], optimizer.state_dict()["param_groups"]
    if len(groups) != len(current) or any(not isinstance(g, dict) or g.get("params") != c["params"]
                                          or not set(c) <= set(g) for g, c in zip(groups, current)):
        raise TrainingError(f"{record}: the optimizer's settings do not match this network and recipe (another "
                            "network's or recipe's checkpoint?)")
    try:  # the optimizer first: on failure it keeps its state, and nothing else was touched
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        raise TrainingError(f"{record}: the optimizer state cannot be loaded ({_first_line(e)})") from None
    model.load_state_dict(weights, strict=True)
    torch.set_rng_state(rng)
    return {k: doc[k] for k in RUN_STATE if k in doc}


def write_json(path: Path, doc) -> None:
    """A JSON file written atomically."""
    write_bytes(path, json.dumps(doc, indent=1).encode("utf-8"))
