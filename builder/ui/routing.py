"""Wires that go around blocks (issue 22): a wire whose straight run from its source down to its target would
cross other blocks (a skip connection over a stage, an aux head's input) leaves its port, turns aside into a free
lane beside the blocks in the way, runs along it, and turns back into its target's port, with rounded corners.
A wire with nothing in its way stays one smooth curve.

The geometry is written along the reading direction ("along": down, or right when the diagram reads left to
right) and across it; ``blocks_in(rect)`` gives the scene rects of the blocks that lie in a rect."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath

from . import theme

CLEAR = 14.0      # a lane's distance from the blocks it passes
TURN = 12.0       # how far a wire runs out of a port before it turns
RADIUS = 10.0     # the rounded corners
TRIES = 6         # a lane that meets blocks of its own moves past them, at most this many times


def _swap(p, horizontal: bool):
    """(x, y) <-> (along, across): along is y when the diagram reads down, x when it reads right."""
    return p if horizontal else (p[1], p[0])


def _rect(a0, a1, c0, c1, horizontal: bool) -> QRectF:
    """A scene rect from along [a0, a1] and across [c0, c1]."""
    if horizontal:
        return QRectF(min(a0, a1), min(c0, c1), abs(a1 - a0), abs(c1 - c0))
    return QRectF(min(c0, c1), min(a0, a1), abs(c1 - c0), abs(a1 - a0))


def _span(r: QRectF, horizontal: bool) -> tuple:
    """(across low, across high) of a scene rect."""
    return (r.top(), r.bottom()) if horizontal else (r.left(), r.right())


def smooth(a: QPointF, b: QPointF, horizontal: bool) -> QPainterPath:
    """One curve from an output port to an input port, leaving and entering along the reading direction."""
    path = QPainterPath(a)
    if horizontal:
        dx = max(abs(b.x() - a.x()) * 0.5, 40.0)
        path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    else:
        dy = max(abs(b.y() - a.y()) * 0.5, 40.0)
        path.cubicTo(QPointF(a.x(), a.y() + dy), QPointF(b.x(), b.y() - dy), b)
    return path


def lane(a: QPointF, b: QPointF, horizontal: bool, blocks_in: Callable[[QRectF], list]) -> float | None:
    """The across coordinate of a free lane for the wire from ``a`` to ``b``, or None when nothing is in its
    way (or it runs backwards: a wire into a block before its source keeps its curve)."""
    (a_al, a_ac), (b_al, b_ac) = _swap((a.x(), a.y()), horizontal), _swap((b.x(), b.y()), horizontal)
    lo, hi = a_al + TURN, b_al - TURN
    if hi - lo < (theme.BLOCK_W if horizontal else theme.BLOCK_H):  # no block fits in between (rows side by side;
        return None                                                   # blocks never overlap): not even asked
    corridor = _rect(lo, hi, min(a_ac, b_ac) - 4, max(a_ac, b_ac) + 4, horizontal)
    hits = blocks_in(corridor)
    if not hits:
        return None
    spans = [_span(r, horizontal) for r in hits]
    right, left = max(s[1] for s in spans) + CLEAR, min(s[0] for s in spans) - CLEAR
    mid = (a_ac + b_ac) / 2
    candidates = sorted((right, left), key=lambda c: abs(c - mid))
    for start in candidates:
        at, step = start, 1.0 if start == right else -1.0
        for _ in range(TRIES):
            more = blocks_in(_rect(lo, hi, at - 3, at + 3, horizontal))
            if not more:
                return at
            edge = [_span(r, horizontal) for r in more]
            at = (max(s[1] for s in edge) + CLEAR) if step > 0 else (min(s[0] for s in edge) - CLEAR)
    return None  # boxed in on both sides: the curve it had


def routed(a: QPointF, b: QPointF, horizontal: bool, blocks_in: Callable[[QRectF], list]) -> QPainterPath:
    """The wire from ``a`` to ``b``: around the blocks in its way, else one curve."""
    at = lane(a, b, horizontal, blocks_in)
    if at is None:
        return smooth(a, b, horizontal)
    (a_al, a_ac), (b_al, b_ac) = _swap((a.x(), a.y()), horizontal), _swap((b.x(), b.y()), horizontal)
    out, into = a_al + TURN, b_al - TURN
    corners = [(a_al, a_ac), (out, a_ac), (out, at), (into, at), (into, b_ac), (b_al, b_ac)]
    points = [QPointF(*_swap(p, horizontal)) for p in corners]
    return _rounded(points)


def _rounded(points: list) -> QPainterPath:
    """A polyline through ``points`` with each inner corner rounded (a radius no larger than half a segment)."""
    path = QPainterPath(points[0])
    for i in range(1, len(points) - 1):
        p, c, n = points[i - 1], points[i], points[i + 1]
        d_in, d_out = c - p, n - c
        len_in = (d_in.x() ** 2 + d_in.y() ** 2) ** 0.5
        len_out = (d_out.x() ** 2 + d_out.y() ** 2) ** 0.5
        if len_in < 1e-6 or len_out < 1e-6:
            continue
        r = min(RADIUS, len_in / 2, len_out / 2)
        path.lineTo(c - d_in * (r / len_in))
        path.quadTo(c, c + d_out * (r / len_out))
    path.lineTo(points[-1])
    return path
