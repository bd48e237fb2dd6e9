"""Receptive fields: for every block, how far its output units see into the input image, per axis.

A field is, per axis, ``size`` (input pixels one output unit depends on), ``jump`` (input pixels between
neighbouring output units: the product of the strides) and ``start`` (the input coordinate of the centre of the
first output unit's field; pixel i has centre i, so padding can put it below 0). Convolutions and pools grow the
size by ``(dilation * (kernel - 1)) * jump``; merges (concat, add, multiply) take the union of their inputs'
fields, so a concat sees as far as its widest branch; composites are followed through their inside. After a
Flatten or a Linear every unit sees the whole image (``whole``). Like shapes, fields come from the analysed graph
(no torch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from blocks import REGISTRY

from .analysis import IN, Analysis, analyze, walk
from .graph import Graph


@dataclass(frozen=True)
class Axis:
    size: float
    jump: float
    start: float

    def span(self, unit: int = 0) -> tuple[float, float]:
        """The input interval (first and last pixel) output unit ``unit`` depends on, before clipping."""
        centre = self.start + unit * self.jump
        half = (self.size - 1) / 2
        return centre - half, centre + half

    def to_dict(self) -> dict:
        return {"size": self.size, "jump": self.jump, "start": self.start}


@dataclass(frozen=True)
class Field:
    h: Axis
    w: Axis
    whole: bool = False  # every unit sees the whole input (after Flatten, Linear)
    exact: bool = True   # False where a rule is an approximation (transposed convolution, upsampling)

    def to_dict(self) -> dict:
        return {"h": self.h.to_dict(), "w": self.w.to_dict(), "whole": self.whole, "exact": self.exact}

    def describe(self) -> str:
        if self.whole:
            return "the whole input"
        size = f"{_num(self.h.size)}x{_num(self.w.size)}"
        jump = f"{_num(self.h.jump)}x{_num(self.w.jump)}" if self.h.jump != self.w.jump else _num(self.h.jump)
        return f"{size} px, jump {jump}" + ("" if self.exact else " (approximate)")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}"


PIXEL = Field(Axis(1, 1, 0), Axis(1, 1, 0))


def _window(f: Field, k, s, p, d=(1, 1), exact=True) -> Field:
    axes = []
    for a, kk, ss, pp, dd in ((f.h, k[0], s[0], p[0], d[0]), (f.w, k[1], s[1], p[1], d[1])):
        eff = dd * (kk - 1) + 1
        axes.append(Axis(a.size + (eff - 1) * a.jump, a.jump * ss, a.start + ((eff - 1) / 2 - pp) * a.jump))
    return Field(axes[0], axes[1], f.whole, f.exact and exact)


def _padding(params, kernel, dilation):
    p = params.get("padding", [0, 0])
    if p == "valid":
        return (0, 0)
    if p == "same":  # torch pads d * (k - 1) in all, the smaller half first
        return tuple((dd * (kk - 1)) // 2 for kk, dd in zip(kernel, dilation))
    return tuple(p)


def _union(fields: list[Field]) -> Field:
    if len(fields) == 1:
        return fields[0]
    axes = []
    for pick in (lambda f: f.h, lambda f: f.w):
        spans = [pick(f).span(0) for f in fields]
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        axes.append(Axis(hi - lo + 1, max(pick(f).jump for f in fields), (lo + hi) / 2))
    return Field(axes[0], axes[1], any(f.whole for f in fields), all(f.exact for f in fields))


def _adaptive(f: Field, in_shape, out) -> Field:
    axes = []
    for a, n, o in ((f.h, in_shape[1], out[0]), (f.w, in_shape[2], out[1])):
        widths = [math.ceil((i + 1) * n / o) - (i * n) // o for i in range(o)]
        first = widths[0]
        axes.append(Axis(a.size + (max(widths) - 1) * a.jump, a.jump * n / o, a.start + (first - 1) / 2 * a.jump))
    return Field(axes[0], axes[1], f.whole, f.exact and all(n % o == 0 for n, o in zip(in_shape[1:], out)))


def through(type_id: str, params: dict, in_shapes, fields: list[Field]) -> Field | None:
    """The field of a block's output from its inputs' fields."""
    if any(f is None for f in fields) or not fields and type_id != "input":
        return None
    if type_id == "input":
        return PIXEL
    spec = REGISTRY[type_id]
    if spec.is_composite:
        inside, output = walk(type_id, params, in_shapes[0])
        seen = {IN: fields[0]}
        for n in inside:
            seen[n.local] = through(n.type, n.params, n.in_shapes, [seen.get(s) for s in n.sources])
        return seen.get(output)
    f = fields[0]
    if type_id in ("conv2d", "basic_conv", "maxpool2d", "avgpool2d"):
        k = params["kernel"]
        d = params.get("dilation", [1, 1])
        return _window(f, k, params["stride"], _padding(params, k, d), d)
    if type_id == "convnext_block":
        return _window(f, (7, 7), (1, 1), (3, 3))
    if type_id == "adaptive_avgpool2d":
        return _adaptive(f, in_shapes[0], params["output_size"])
    if type_id == "zeropad2d":
        (left, _), (top, _) = params["horizontal"], params["vertical"]
        return Field(Axis(f.h.size, f.h.jump, f.h.start - top * f.h.jump),
                     Axis(f.w.size, f.w.jump, f.w.start - left * f.w.jump), f.whole, f.exact)
    if type_id in ("upsample", "conv_transpose2d"):  # an output unit lies between input units: approximate
        s = params["scale_factor"] if type_id == "upsample" else params["stride"]
        k = params.get("kernel", [1, 1])
        axes = [Axis(a.size + (kk - 1) * a.jump / ss, a.jump / ss, a.start) for a, kk, ss in
                ((f.h, k[0], s[0]), (f.w, k[1], s[1]))]
        return Field(axes[0], axes[1], f.whole, False)
    if type_id in ("flatten", "linear"):
        return Field(f.h, f.w, True, f.exact)
    if spec.variadic:  # concat, add, multiply: what any input sees
        return _union(fields)
    return f  # elementwise and per-position kinds (activations, norms, dropout, shuffles, slices, output)


def receptive_fields(graph: Graph, analysis: Analysis | None = None) -> dict:
    """{block id: Field (or None where the shapes are unknown)} for every block, in input pixels of the first
    input."""
    import networkx as nx
    a = analysis or analyze(graph)
    out: dict = {}
    try:
        order = list(nx.topological_sort(graph.g))
    except nx.NetworkXUnfeasible:
        return {bid: None for bid in graph.ids()}
    for bid in order:
        b = graph.block(bid)
        rep = a.blocks.get(bid)
        if b.spec is None or rep is None or rep.errors or (rep.out_shape is None and b.type != "output"):
            out[bid] = None
            continue
        fields = [out.get(src) for _, src in graph.inputs(bid)]
        try:
            out[bid] = through(b.type, b.params, tuple(rep.in_shapes), fields)
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            out[bid] = None
    return out


__all__ = ["Axis", "Field", "receptive_fields", "through"]
