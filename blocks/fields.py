"""Receptive-field rules: what part of the input image a block's output units see, per axis.

A field is, per axis, the size of the window one output unit sees, the jump between neighbouring units and the
centre of the first unit's window, all in input pixels (Araujo et al., "Computing receptive fields of
convolutional neural networks"). A kind's ``receptive`` rule maps its inputs' fields to its output's; the rules
below serve the kinds in this package. Pure arithmetic, no torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Axis:
    size: float   # pixels one output unit sees
    jump: float   # pixels between neighbouring output units
    start: float  # centre of the first unit's window, in input pixels (may be negative: padding)

    def span(self, unit: int = 0) -> tuple[float, float]:
        """The input interval (first and last pixel) output unit ``unit`` depends on, before clipping."""
        centre = self.start + unit * self.jump
        return centre - (self.size - 1) / 2, centre + (self.size - 1) / 2

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


def window(f: Field, k, s, p, d=(1, 1), exact=True) -> Field:
    """A sliding window: kernel ``k``, stride ``s``, padding ``p``, dilation ``d`` (pairs)."""
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


def sliding(params, in_shapes, fields) -> Field:
    """Convolutions and pools: their ``kernel``, ``stride``, ``padding`` (and ``dilation``) parameters."""
    k = params["kernel"]
    d = params.get("dilation", [1, 1])
    return window(fields[0], k, params["stride"], _padding(params, k, d), d)


def union(fields: list) -> Field:
    """What any of several inputs sees (concat, add, multiply)."""
    if len(fields) == 1:
        return fields[0]
    axes = []
    for pick in (lambda f: f.h, lambda f: f.w):
        spans = [pick(f).span(0) for f in fields]
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        axes.append(Axis(hi - lo + 1, max(pick(f).jump for f in fields), (lo + hi) / 2))
    return Field(axes[0], axes[1], any(f.whole for f in fields), all(f.exact for f in fields))


def adaptive(params, in_shapes, fields) -> Field:
    """An adaptive pool to ``output_size``: windows of uneven width where the sizes do not divide."""
    f, in_shape, out = fields[0], in_shapes[0], params["output_size"]
    axes = []
    for a, n, o in ((f.h, in_shape[1], out[0]), (f.w, in_shape[2], out[1])):
        widths = [math.ceil((i + 1) * n / o) - (i * n) // o for i in range(o)]
        first = widths[0]
        axes.append(Axis(a.size + (max(widths) - 1) * a.jump, a.jump * n / o, a.start + (first - 1) / 2 * a.jump))
    return Field(axes[0], axes[1], f.whole, f.exact and all(n % o == 0 for n, o in zip(in_shape[1:], out)))


def shifted(params, in_shapes, fields) -> Field:
    """Zero padding: the same windows, the first unit moved by the left and top padding."""
    f = fields[0]
    (left, _), (top, _) = params["horizontal"], params["vertical"]
    return Field(Axis(f.h.size, f.h.jump, f.h.start - top * f.h.jump),
                 Axis(f.w.size, f.w.jump, f.w.start - left * f.w.jump), f.whole, f.exact)


def upsampled(scale, kernel=(1, 1)):
    """Upsampling by ``scale`` (pairs): an output unit lies between input units, so the field is approximate."""
    def rule(params, in_shapes, fields) -> Field:
        f = fields[0]
        s, k = scale(params), kernel(params) if callable(kernel) else kernel
        axes = [Axis(a.size + (kk - 1) * a.jump / ss, a.jump / ss, a.start) for a, kk, ss in
                ((f.h, k[0], s[0]), (f.w, k[1], s[1]))]
        return Field(axes[0], axes[1], f.whole, False)
    return rule


def whole(params, in_shapes, fields) -> Field:
    """Flatten, Linear: every output unit sees everything its input units saw (the whole image)."""
    f = fields[0]
    return Field(f.h, f.w, True, f.exact)


def fixed_window(k, s=(1, 1), p=(0, 0)):
    """A kind with a window of its own (ConvNeXt's 7x7 depthwise convolution, padding 3)."""
    return lambda params, in_shapes, fields: window(fields[0], k, s, p)
