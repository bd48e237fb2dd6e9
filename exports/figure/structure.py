"""What a paper figure draws, before any geometry: the main path cut into units (a block every value passes through,
or a stretch of parallel branches between two of them), the auxiliary heads hanging off it, and, when asked, the
repeated stages folded into one drawn period.

A block ``v`` is a cut when no wire jumps over it in the running order: everything before it reaches everything
after it only through ``v``. Cuts are where the drawing may wrap to a new row and where a stage may repeat.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from builder.core.graph import freeze

STRUCTURAL = ("input", "output")  # the network's ends: drawn, never folded


@dataclass
class Unit:
    ids: list                 # its blocks in running order
    cut: bool                 # one block every value passes through (else parallel branches)
    repeat: int = 1           # a folded stage: this unit (or the period it starts) stands for ``repeat`` of them
    period: int = 1           # how many units the folded period spans (the first of them carries it)
    hidden: list = field(default_factory=list)  # the blocks of the folded repeats it stands for


@dataclass
class Structure:
    units: list               # the main path, in order
    aux: list                 # [(anchor block id or None, [ids in running order])], one per auxiliary head
    edges: list               # (src, dst) between drawn blocks, in the graph's order, folded repeats mapped
    order: dict               # drawn block id -> its position in the running order


def structure(graph, analysis, fold: bool = False) -> Structure:
    order = [b for b in analysis.blocks if b in graph]
    order += [b for b in graph.ids() if b not in analysis.blocks]
    nxg = graph.g
    if analysis.outputs:
        main_out = analysis.outputs[0]
        main = nx.ancestors(nxg, main_out) | {main_out}
    else:
        main = set(order)
    path = [b for b in order if b in main]
    units = _units(path, nxg)
    edges = [(u, v) for u, v, _ in graph.edges()]
    if fold:
        units, mapping = _fold(units, graph, analysis, main)
        edges = _mapped(edges, mapping)
    aux = _aux_heads(order, main, nxg, {b for u in units for b in u.ids})
    drawn = {b for u in units for b in u.ids} | {b for _, ids in aux for b in ids}
    seen, kept = set(), []
    for e in edges:
        if e[0] in drawn and e[1] in drawn and e[0] != e[1] and e not in seen:
            seen.add(e)
            kept.append(e)
    return Structure(units, aux, kept, {b: i for i, b in enumerate(order) if b in drawn})


def _units(path: list, nxg) -> list:
    pos = {b: i for i, b in enumerate(path)}
    reach = -1  # the furthest position a wire from an earlier block goes to
    units: list = []
    stretch: list = []
    for i, b in enumerate(path):
        if reach <= i:
            if stretch:
                units.append(Unit(stretch, False))
                stretch = []
            units.append(Unit([b], True))
        else:
            stretch.append(b)
        for s in nxg.successors(b):
            if s in pos:
                reach = max(reach, pos[s])
    if stretch:
        units.append(Unit(stretch, False))
    return units


def _aux_heads(order, main, nxg, on_path) -> list:
    rest = [b for b in order if b not in main]
    if not rest:
        return []
    rank = {b: i for i, b in enumerate(order)}
    sub = nxg.subgraph(rest)
    heads = []
    for comp in nx.weakly_connected_components(sub):
        ids = sorted(comp, key=rank.__getitem__)
        anchors = [p for b in ids for p in nxg.predecessors(b) if p in on_path]
        heads.append((max(anchors, key=rank.__getitem__) if anchors else None, ids))
    heads.sort(key=lambda h: (rank.get(h[0], -1), rank[h[1][0]]))
    return heads


# ---------------------------------------------------------------- folding repeated stages

def _signature(unit, graph, analysis, main, strict: bool) -> tuple | None:
    """What must match for two units to be repeats: each block's kind and output shape, and (``strict``) its
    parameters and input shapes. None: never folded (inputs, outputs, a unit an auxiliary head hangs off)."""
    sig = []
    for b in unit.ids:
        blk = graph.block(b)
        rep = analysis.blocks.get(b)
        if blk.type in STRUCTURAL or blk.spec is None or rep is None or rep.out_shape is None:
            return None
        if any(s not in main for s in graph.g.successors(b)):
            return None
        sig.append((blk.type, rep.out_shape) + ((freeze(blk.params), tuple(rep.in_shapes)) if strict else ()))
    return (unit.cut, tuple(sig))


def _fold(units, graph, analysis, main, longest: int = 4):
    """Runs of repeated periods of up to ``longest`` units folded into their first period. The first may differ
    from the rest where it is the stage's transition (same kinds and output shapes, another input shape: ResNet's
    strided first block); the rest must be equal. Returns the units and a map of every hidden block to the one
    drawn in its place."""
    strict = [_signature(u, graph, analysis, main, True) for u in units]
    loose = [_signature(u, graph, analysis, main, False) for u in units]
    out, mapping, i, n = [], {}, 0, len(units)
    while i < n:
        best = (1, 1)  # (repeats, period)
        for length in range(1, longest + 1):
            if i + 2 * length > n:
                break
            if any(loose[i + t] is None for t in range(length)):
                continue
            k = 1
            while i + (k + 1) * length <= n and all(
                    strict[i + k * length + t] == strict[i + length + t] and strict[i + length + t] is not None
                    for t in range(length)):
                k += 1
            if k < 2:
                continue
            first_fits = all(strict[i + t] == strict[i + length + t] for t in range(length)) or (
                all(loose[i + t] == loose[i + length + t] for t in range(length))
                and analysis.blocks[units[i].ids[0]].in_shapes != analysis.blocks[units[i + length].ids[0]].in_shapes)
            if first_fits and k * length > best[0] * best[1]:
                best = (k, length)
        k, length = best
        if k == 1:
            out.append(units[i])
            i += 1
            continue
        period = units[i:i + length]
        period[0].repeat, period[0].period = k, length
        for r in range(1, k):
            for t in range(length):
                twin = units[i + r * length + t]
                period[0].hidden.extend(twin.ids)
                mapping.update(zip(twin.ids, period[t].ids))
        out.extend(period)
        i += k * length
    return out, mapping


def _mapped(edges, mapping) -> list:
    """The wires as drawn: a wire inside the folded repeats goes; one leaving them leaves the drawn period."""
    out = []
    for u, v in edges:
        if u in mapping and v in mapping:
            continue
        if v in mapping:  # into a hidden repeat from outside it: only the first period's entry is drawn
            continue
        out.append((mapping.get(u, u), v))
    return out
