"""Compound edits of a graph: expand a composite into its blocks, collapse it back, group a selection into a
new composite. Each is one transaction (all-or-nothing for every caller) and one undo step in the app."""
from __future__ import annotations

import functools

import networkx as nx

from blocks import REGISTRY
from blocks.composite import IN
from blocks.spec import plain

from .analysis import Analyzer
from .errors import GraphEditError
from .expansion import expand_composite
from .graph import Graph, make_id


def _atomic(edit):
    """A compound edit runs in one transaction: refused half-way, it leaves the graph exactly as it was."""
    @functools.wraps(edit)
    def run(graph, *args, **kwargs):
        with graph.transaction():
            return edit(graph, *args, **kwargs)
    return run


@_atomic
def expand(graph: Graph, block_id: str) -> list[str]:
    """Replace a composite block by its primitive blocks, ids prefixed with its own (``inception3a.branch1``),
    so compiled weights keep the same keys. Returns the new ids."""
    blk = graph.block(block_id)
    if blk.spec is None or not blk.spec.is_composite:
        raise GraphEditError(f"{block_id!r} is not a composite block")
    ins = graph.inputs(block_id)
    in_shape = _input_shape(graph, block_id)
    if in_shape is None:
        raise GraphEditError(f"connect {block_id!r} to a working input before expanding it: its inside "
                             "depends on the input's shape")
    sub = expand_composite(blk.type, blk.params, in_shape)
    rec = graph.remove_block(block_id)
    group = {"id": block_id, "type": blk.type, "params": dict(blk.params), "label": blk.label}
    new_ids = []
    x0, y0 = blk.pos
    places = _sub_layout(sub)
    extra = max(p[1] for p in places.values()) if places else 0.0
    for other in graph.blocks():  # make room: everything below the composite moves down
        if other.pos[1] > y0 + 1.0 and extra:
            graph.move(other.id, (other.pos[0], round(other.pos[1] + extra, 1)))
    for local, type_id, params in sub.nodes:
        nid = f"{block_id}.{local}"
        dx, dy = places[local]
        graph.add_block(type_id, plain(params), nid, pos=(x0 + dx, y0 + dy), group=group)
        new_ids.append(nid)
    src = ins[0][1] if ins else None
    for s, d, port in sub.edges:
        if s == IN:
            if src is not None:
                graph.connect(src, f"{block_id}.{d}", port, check_cycle=False)
        else:
            graph.connect(f"{block_id}.{s}", f"{block_id}.{d}", port, check_cycle=False)
    for v, k in rec["out"]:
        graph.connect(f"{block_id}.{sub.output}", v, k, check_cycle=False)
    return new_ids


@_atomic
def collapse(graph: Graph, group_id: str) -> str:
    """Put an expanded composite back together; refused when its inside was edited since."""
    members = [b for b in graph.blocks() if b.group and b.group.get("id") == group_id]
    if not members:
        raise GraphEditError(f"no expanded composite {group_id!r}")
    info = members[0].group
    ids = {b.id for b in members}
    entry = [(u, k) for bid in ids for u, _, k in graph.g.in_edges(bid, keys=True) if u not in ids]
    sources = {u for u, _ in entry}
    if len(sources) > 1:
        raise GraphEditError(f"cannot collapse {group_id!r}: its blocks take input from several outside blocks")
    src = next(iter(sources), None)
    in_shape = _shape_of(graph, src) if src else None
    sub = expand_composite(info["type"], info["params"], in_shape)
    expected = {f"{group_id}.{loc}": (t, REGISTRY[t].validate_params(p)) for loc, t, p in sub.nodes}
    actual = {b.id: (b.type, b.params) for b in members}
    exp_edges = {(f"{group_id}.{s}" if s != IN else src, f"{group_id}.{d}", p) for s, d, p in sub.edges}
    act_edges = {(u, v, k) for v in ids for u, _, k in graph.g.in_edges(v, keys=True)}
    if expected != actual or exp_edges != act_edges:
        raise GraphEditError(f"cannot collapse {group_id!r}: its inside was edited after it was expanded")
    out_id = f"{group_id}.{sub.output}"
    outs = [(v, k) for _, v, k in graph.g.out_edges(out_id, keys=True) if v not in ids]
    leaks = [(u, v) for u in ids - {out_id} for _, v in graph.g.out_edges(u) if v not in ids]
    if leaks:
        raise GraphEditError(f"cannot collapse {group_id!r}: {leaks[0][0]!r} feeds {leaks[0][1]!r} outside it")
    # where expand put the composite: its inside's rows are centred under it, the first row at its place
    xs = [b.pos[0] for b in members]
    pos = ((min(xs) + max(xs)) / 2, min(b.pos[1] for b in members))
    bottom = max(b.pos[1] for b in members)
    for bid in ids:
        graph.remove_block(bid)
    for other in graph.blocks():  # close the gap: what is below the composite's inside moves up (expand's inverse)
        if other.pos[1] > bottom + 1.0 and bottom > pos[1]:
            graph.move(other.id, (other.pos[0], round(other.pos[1] - (bottom - pos[1]), 1)))
    graph.add_block(info["type"], info["params"], group_id, info.get("label", ""), pos)
    if src is not None:
        graph.connect(src, group_id, "x", check_cycle=False)
    for v, k in outs:
        graph.connect(group_id, v, k, check_cycle=False)
    return group_id


@_atomic
def group(graph: Graph, ids, name: str = "Group", block_id: str | None = None) -> str:
    """Collapse a selection into a new composite block (a "group"): one input from outside, one output. When
    ``block_id`` is the module path above every selected id (an imported container), the blocks inside keep the
    rest of their paths, so the compiled module's names do not change."""
    ids = [i for i in graph.ids() if i in set(ids)]  # graph order
    chosen = set(ids)
    if not ids:
        raise GraphEditError("select the blocks to group")
    for bid in ids:
        b = graph.block(bid)
        if b.type in ("input", "output"):
            raise GraphEditError(f"{bid} is an {b.type.capitalize()} block: a group cannot hold it")
    for bid in list(ids):  # a group holds primitive blocks: open composites inside the selection first
        b = graph.block(bid)
        if b.spec is not None and b.spec.is_composite:
            ids.remove(bid)
            ids.extend(expand(graph, bid))
    chosen = set(ids)
    index = {b: i for i, b in enumerate(graph.ids())}  # inner blocks in the order they run, as the graph lists
    ids = list(nx.lexicographical_topological_sort(graph.g.subgraph(ids), key=index.__getitem__))  # them
    entry = {(u, v, k) for v in ids for u, _, k in graph.g.in_edges(v, keys=True) if u not in chosen}
    sources = {u for u, _, _ in entry}
    if len(sources) != 1:
        raise GraphEditError("a group takes exactly one input from outside; this selection has "
                             f"{len(sources)} ({', '.join(sorted(sources)) or 'none'})")
    exits = {(u, v, k) for u in ids for _, v, k in graph.g.out_edges(u, keys=True) if v not in chosen}
    leaving = {u for u, _, _ in exits}
    sinks = [u for u in ids if not any(v in chosen for _, v in graph.g.out_edges(u))]
    if len(leaving) > 1 or (not leaving and len(sinks) != 1):
        raise GraphEditError("a group gives one output; more than one block of this selection feeds blocks "
                             "outside it")
    out_id = next(iter(leaving)) if leaving else sinks[0]
    src = next(iter(sources))
    under = block_id is not None and all(b.startswith(block_id + ".") for b in ids)
    local = {bid: bid[len(block_id) + 1:] if under else bid for bid in ids}
    sub = {"nodes": [[local[bid], graph.block(bid).type, dict(graph.block(bid).params)] for bid in ids],
           "edges": [[IN if u == src else local[u], local[v], k] for v in ids
                     for u, _, k in graph.g.in_edges(v, keys=True)],
           "output": local[out_id]}
    top = min((graph.block(b).pos for b in ids), key=lambda p: (p[1], p[0]))
    new_id = block_id or make_id(name, graph, fallback="group")
    for bid in ids:
        graph.remove_block(bid)
    graph.add_block("group", {"name": name, "graph": sub}, new_id, pos=top)
    graph.connect(src, new_id, "x", check_cycle=False)
    for _, v, k in exits:
        graph.connect(new_id, v, k, check_cycle=False)
    return new_id


def _input_shape(graph: Graph, block_id):
    ins = graph.inputs(block_id)
    return _shape_of(graph, ins[0][1]) if ins else None


def _shape_of(graph: Graph, block_id):
    r = Analyzer(graph).run().blocks.get(block_id)
    return r.out_shape if r else None


def _sub_layout(sub, row: float = 110.0, col: float = 240.0) -> dict:
    """Offsets of a composite's inner blocks: one row per depth, branches side by side."""
    layer: dict = {}
    for local, _, _ in sub.nodes:
        srcs = [s for s, d, _ in sub.edges if d == local and s != IN]
        layer[local] = 1 + max((layer[s] for s in srcs), default=-1)
    rows: dict = {}
    for local, _, _ in sub.nodes:
        rows.setdefault(layer[local], []).append(local)
    out = {}
    for lv, items in rows.items():
        for i, local in enumerate(items):
            out[local] = ((i - (len(items) - 1) / 2) * col, lv * row)
    return out


def up_to(graph: Graph, block_id: str) -> Graph:
    """A copy of ``graph`` with only ``block_id`` and what feeds it, ``block_id`` feeding its only Output (to
    look at one block's output: feature maps, receptive-field checks)."""
    keep = nx.ancestors(graph.g, block_id) | {block_id}
    g = graph.copy()
    for bid in list(g.ids()):
        if bid not in keep:
            g.remove_block(bid)
    out = g.add_block("output", {}, make_id("probe_output", g))
    g.connect(block_id, out)
    return g


def alone(graph: Graph, block_id: str, in_shape) -> Graph:
    """Block ``block_id`` as a network of its own: an Input of ``in_shape`` (C, H, W), the block (its id, kind and
    parameters), an Output (to export one block as code). A GraphEditError when the block has more than one input
    or ``in_shape`` is not C x H x W."""
    b = graph.block(block_id)
    if len(graph.inputs(block_id)) != 1 or in_shape is None or len(in_shape) != 3:
        raise GraphEditError(f"{block_id}: only a block with one image input (C x H x W) can stand alone")
    g = Graph(b.id)
    c, h, w = in_shape
    src = g.add_block("input", {"channels": c, "height": h, "width": w}, make_id("input", {block_id}), pos=(0, 0))
    g.add_block(b.type, dict(b.params), b.id, b.label, (0.0, 110.0))
    g.connect(src, b.id)
    out = g.add_block("output", {}, make_id("output", {block_id}), pos=(0, 220))
    g.connect(b.id, out)
    return g
