"""Block positions: graphviz ``dot`` when it is installed, otherwise a layered layout in pure Python."""
from __future__ import annotations

import json
import shutil
import subprocess

import networkx as nx

ROW = 110.0
COL = 240.0


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
    return {n: (round(x[n], 1), round(layer[n] * ROW, 1)) for n in g.nodes}


def dot_positions(graph, timeout: float = 20.0) -> dict | None:
    """Positions from graphviz ``dot -Tjson``; None when dot is missing or fails."""
    exe = shutil.which("dot")
    if not exe:
        return None
    ids = list(graph.g.nodes)
    index = {n: i for i, n in enumerate(ids)}
    lines = ["digraph G {", "rankdir=TB; nodesep=0.4; ranksep=0.35;",
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


def auto_layout(graph, use_dot: bool = True) -> dict:
    return (dot_positions(graph) if use_dot else None) or layered_positions(graph)
