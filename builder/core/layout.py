"""Block positions: graphviz ``dot`` when it is installed, otherwise a layered layout in pure Python."""
from __future__ import annotations

import functools
import json
import shutil
import subprocess

import networkx as nx

ROW = 110.0
COL = 240.0
BLOCK_W, BLOCK_H = 210.0, 82.0   # a block's size on the canvas (the app draws them this size)
GAP = 18.0                       # the least space kept between two blocks


def layered_positions(graph) -> dict:
    """Longest-path layers top to bottom; within a layer, blocks sit near the mean of their parents."""
    g = graph.g
    try:
        order = list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:
        order = list(g.nodes)
    layer: dict = {}
    for n in order:
        preds = [p for p in g.predecessors(n) if p in layer]
        layer[n] = 1 + max((layer[p] for p in preds), default=-1)
    rows: dict = {}
    for n in order:
        rows.setdefault(layer[n], []).append(n)
    x: dict = {}
    for lv in sorted(rows):
        items = rows[lv]
        want = {}
        for n in items:
            px = [x[p] for p in g.predecessors(n) if p in x]
            want[n] = sum(px) / len(px) if px else 0.0
        items.sort(key=lambda n: want[n])
        # spread around the wanted centre, keeping order, at least COL apart
        centre = sum(want.values()) / len(items)
        start = centre - COL * (len(items) - 1) / 2
        for i, n in enumerate(items):
            x[n] = start + COL * i
    if graph.direction == "LR":  # layers left to right, a layer's blocks one above the other
        return {n: (round(layer[n] * (BLOCK_W + 60.0), 1), round(x[n] / COL * (BLOCK_H + 40.0), 1)) for n in g.nodes}
    return {n: (round(x[n], 1), round(layer[n] * ROW, 1)) for n in g.nodes}


def dot_positions(graph, timeout: float = 20.0) -> dict | None:
    """Positions from graphviz ``dot -Tjson``; None when dot is missing or fails."""
    exe = shutil.which("dot")
    if not exe:
        return None
    ids = list(graph.g.nodes)
    index = {n: i for i, n in enumerate(ids)}
    lr = graph.direction == "LR"
    lines = ["digraph G {", f"rankdir={graph.direction}; nodesep={0.25 if lr else 0.4}; ranksep={0.6 if lr else 0.35};",
             "node [shape=box, width=2.6, height=0.9, fixedsize=true];"]
    lines += [f"n{i};" for i in range(len(ids))]
    for u, v, _ in graph.edges():
        lines.append(f"n{index[u]} -> n{index[v]};")
    lines.append("}")
    try:
        out = subprocess.run([exe, "-Tjson"], input="\n".join(lines), capture_output=True, text=True,
                             timeout=timeout, check=True).stdout
        data = json.loads(out)
    except (subprocess.SubprocessError, OSError, ValueError):
        return None
    pos = {}
    for obj in data.get("objects", []):
        name = obj.get("name", "")
        if name.startswith("n") and name[1:].isdigit() and "pos" in obj:
            px, py = (float(v) for v in obj["pos"].split(","))
            pos[ids[int(name[1:])]] = (round(px * 1.25, 1), round(-py * 1.25, 1))
    if len(pos) != len(ids):
        return None
    return pos


DOT_UP_TO = 2_000  # blocks: graphviz lays out a bigger network in tens of seconds; the layered layout in one


def auto_layout(graph, use_dot: bool = True) -> dict:
    return (dot_positions(graph) if use_dot and len(graph) <= DOT_UP_TO else None) or layered_positions(graph)


def unplaced(graph) -> bool:
    """Whether a file gave its blocks no positions: more than one block, all at one spot (a file written by
    hand or by another tool); the editor lays such a network out as it opens it."""
    blocks = graph.blocks()
    return len(blocks) > 1 and len({b.pos for b in blocks}) == 1


def lay_out(graph) -> None:
    """Every block at its place in :func:`auto_layout`."""
    for bid, pos in auto_layout(graph).items():
        graph.block(bid).pos = pos


# ------------------------------------------------------------------ free space for new blocks

def overlaps(a, b) -> bool:
    """Two blocks at positions ``a`` and ``b`` (top-left corners) overlap or come closer than GAP."""
    return abs(a[0] - b[0]) < BLOCK_W + GAP and abs(a[1] - b[1]) < BLOCK_H + GAP


class _Occupied:
    """Block positions in grid buckets: 'is this spot free?' looks at the nine buckets around it."""

    def __init__(self, positions=()):
        self.cells: dict = {}
        for p in positions:
            self.add(p)

    @staticmethod
    def _cell(p):
        return int(p[0] // (BLOCK_W + GAP)), int(p[1] // (BLOCK_H + GAP))

    def add(self, p):
        self.cells.setdefault(self._cell(p), []).append(p)

    def free(self, p) -> bool:
        cx, cy = self._cell(p)
        return not any(overlaps(p, q) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                       for q in self.cells.get((cx + dx, cy + dy), ()))


RINGS = 60  # how far a new block's free spot is looked for: this many half-block steps each way


@functools.cache
def _offsets(rings: int = RINGS):
    """Offsets from a wanted spot, nearest first (half a block apart; at equal distance right and down first);
    made on the first placement, not at import (the window opens sooner)."""
    sx, sy = (BLOCK_W + GAP) / 2, (BLOCK_H + GAP) / 2
    out = [(i * sx, j * sy) for i in range(-rings, rings + 1) for j in range(-rings, rings + 1)]
    out.sort(key=lambda d: (d[0] ** 2 + d[1] ** 2, d[1] < 0, d[0] < 0))
    return tuple(out)


def free_spot(occupied: _Occupied, want) -> tuple:
    for dx, dy in _offsets():
        p = (want[0] + dx, want[1] + dy)
        if occupied.free(p):
            return p
    return want  # (beyond RINGS half-blocks: leave it where it was asked for)


def place_new(graph, new_ids) -> None:
    """Move the blocks an edit just added to free space next to where they were put: first apart from each other
    (keeping the first where it is), then together, as one piece (a paste keeps its shape), to the nearest offset
    where none of them touches an older block. Runs inside the edit, so it is part of its undo step."""
    new = [i for i in new_ids if i in graph]
    if not new:
        return
    chosen = set(new)
    # only the blocks the search can reach (RINGS half-blocks around the new ones, a block beyond, and their size)
    xs = [graph.block(b).pos[0] for b in new]
    ys = [graph.block(b).pos[1] for b in new]
    reach = RINGS / 2 + 1
    reach_x, reach_y = reach * (BLOCK_W + GAP) + BLOCK_W, reach * (BLOCK_H + GAP) + BLOCK_H
    x0, x1, y0, y1 = min(xs) - reach_x, max(xs) + reach_x, min(ys) - reach_y, max(ys) + reach_y
    nodes = graph.g._node
    old = _Occupied(p for bid, d in nodes.items() if bid not in chosen
                    for p in (d["block"].pos,) if x0 <= p[0] <= x1 and y0 <= p[1] <= y1)
    inner = _Occupied()
    pos = {}
    for bid in new:
        p = tuple(graph.block(bid).pos)
        if not inner.free(p):
            p = free_spot(inner, p)
        inner.add(p)
        pos[bid] = p
    def at(p, dx, dy):  # positions are kept to 0.1: the spot checked is the one stored (no float-edge overlap)
        return (round(p[0] + dx, 1), round(p[1] + dy, 1))
    for dx, dy in _offsets():
        if all(old.free(at(p, dx, dy)) for p in pos.values()):
            break
    else:
        dx = dy = 0.0
    for bid, p in pos.items():
        target = at(p, dx, dy)
        if target != tuple(graph.block(bid).pos):
            graph.move(bid, target)
