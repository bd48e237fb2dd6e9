"""What an ONNX operator computes, written with torch: the registry the ONNX importer's exact fallback reads
when no kind stands for a node (or its attributes are outside every kind's). ``(operator, first opset)`` -> an
implementation, onnx2torch's table as the model; :mod:`.onnx_opaque` runs it under ``torch.export`` and keeps the
ATen operators as a captured block, so these functions never run in a user's network themselves.

An implementation takes a :class:`Call`: the node's attributes, its inputs (network tensors and the file's
tensor constants as torch tensors; the inputs it lists as ``static`` as numpy arrays, read as numbers: shapes,
axes, pads, scales) and the file's opset. It returns the node's outputs (a tensor, or a tuple of them).
Sizes of a sample are plain numbers while it runs (the capture fixes them); only the batch is symbolic, so an
operator that mixes the batch with the other sizes fails the capture and is refused with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Impl:
    fn: object
    static: frozenset = frozenset()    # inputs read as numbers
    buffers: frozenset = frozenset()   # constant inputs kept as buffers (running statistics), not parameters


OPS: dict = {}  # op type -> [(first opset, Impl)], newest first


def implements(*ops: str, since: int = 1, static=(), buffers=()):
    def register(fn):
        for op in ops:
            entries = OPS.setdefault(op, [])
            if any(v == since for v, _ in entries):
                raise ValueError(f"{op} since opset {since} is implemented twice")
            entries.append((since, Impl(fn, frozenset(static), frozenset(buffers))))
            entries.sort(key=lambda e: -e[0])
        return fn
    return register


def implementation(op: str, opset: int):
    return next((impl for since, impl in OPS.get(op, ()) if since <= opset), None)


class Unsupported(Exception):
    """The node's attributes ask for what cannot be computed exactly here (said in the message); the capture
    reports it as the reason (``refusal``)."""
    refusal = True


class Call:
    def __init__(self, attrs: dict, inputs: list, opset: int, outputs: int):
        self.a, self.inputs, self.opset, self.outputs = attrs, inputs, opset, outputs

    @property
    def x(self):
        return self.inputs[0]

    def given(self, i: int):
        return self.inputs[i] if len(self.inputs) > i else None

    def ints(self, i: int, attr: str | None = None):
        """Static input ``i`` (or, in older opsets, attribute ``attr``) as a list of ints; None when absent."""
        v = self.given(i)
        if v is None and attr is not None:
            v = self.a.get(attr)
        return None if v is None else [int(e) for e in np.asarray(v).reshape(-1)]

    def number(self, i: int, default):
        """Static input ``i`` as one number (``default`` when absent); more than one is refused."""
        v = self.given(i)
        if v is None or np.asarray(v).size == 0:
            return default
        if np.asarray(v).size != 1:
            raise Unsupported(f"input {i} holds {np.asarray(v).size} numbers where it takes one")
        return float(np.asarray(v).reshape(-1)[0])


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _pad_flat(begin, end) -> list:
    """F.pad's order (the last dim first) from per-dim begin and end pads."""
    out = []
    for b, e in zip(reversed(begin), reversed(end)):
        out += [b, e]
    return out


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


__all__ = ["OPS", "Call", "Impl", "Unsupported", "implementation", "implements"]
