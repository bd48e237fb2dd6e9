"""The lowered network: one ordered list of nodes that every back end reads (torch.fx's Graph of Nodes is the
model).

:func:`lower` expands every composite into its primitive blocks once and gives them in the order they run, each
with its kind, validated parameters (inside a composite the widths are :class:`~blocks.spec.SymInt` expressions
of the composite's parameters), the nodes it reads, its shapes and the module path it belongs to. The compiled
module, the exported code, the in-place plan and the profiler are made from it. Memoised per graph change.
"""
from __future__ import annotations

from dataclasses import dataclass

from blocks import REGISTRY

from .analysis import Analysis, Analyzer, walk
from .errors import CompileError
from .expansion import expand_composite
from .graph import Graph
from .nodes import Composite, Node

__all__ = ["IR", "Node", "Composite", "lower", "inplace_plan"]


@dataclass
class IR:
    nodes: list          # every primitive Node in the order the network runs it (Input nodes first)
    outputs: list        # node ids whose values are the network's outputs: main first, then aux
    loss_weights: list
    composites: dict     # instance id -> Composite, outermost first
    analysis: Analysis
    name: str = "network"

    def __post_init__(self):
        self.by_id = {n.id: n for n in self.nodes}

    @property
    def inputs(self) -> list:
        return [n for n in self.nodes if n.kind == "input"]

    def node(self, node_id: str) -> Node:
        return self.by_id[node_id]


_MEMO: dict = {}


def lower(graph: Graph, analysis: Analysis | None = None, partial: bool = False) -> IR:
    """The lowered network (raises :class:`CompileError` naming the graph's errors). Memoised on what defines
    it (blocks and wiring in their order; moves do not count), so every consumer of one state of the graph shares
    one IR.

    ``partial``: the network as far as it can be lowered, for the views of a graph being edited (reports,
    receptive fields, the advisor): every block, in the order the analysis gives them; a block with an error or
    without a shape is one node, not expanded; no error is raised."""
    key = (id(graph), graph.name, partial, tuple((b.id, b.key) for b in graph.blocks()), tuple(graph.edges()))
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is graph:
        return hit[1]
    if analysis is None or not analysis.describes(graph):  # a view may hold the analysis of a moment ago
        analysis = Analyzer(graph).run()
    ir = _lower(graph, analysis, partial)
    if len(_MEMO) > 16:
        _MEMO.clear()
    _MEMO[key] = (graph, ir)
    return ir


def _lower(graph: Graph, a: Analysis, partial: bool) -> IR:
    bad = [i for i in a.errors if i.block is None or a.blocks[i.block].training]
    if bad and not partial:
        raise CompileError("the graph has errors:\n" + "\n".join(f"  {i}" for i in bad))
    nodes: list = []
    composites: dict = {}
    alias: dict = {}  # composite id -> id of the node that gives its output
    for bid, rep in a.blocks.items():
        if not rep.training and not partial:
            continue
        blk = graph.block(bid)
        srcs = [alias.get(s, s) for _, s in graph.inputs(bid)]
        train_only = not rep.inference
        spec = blk.spec
        if spec is not None and spec.is_composite and rep.out_shape is not None and not rep.errors:
            alias[bid] = _expand(nodes, composites, bid, blk.type, blk.params, srcs, rep.in_shapes[0], train_only,
                                 bid, ())
        else:
            nodes.append(Node(bid, blk.type, blk.params, srcs, list(rep.in_shapes), rep.out_shape, (),
                              train_only, bid))
    outputs = [alias.get(o, o) for o in a.outputs]
    weights = [graph.block(o).params.get("loss_weight", 1.0) for o in a.outputs]
    return IR(nodes, outputs, weights, composites, a, graph.name)


def _expand(nodes, composites, cid, kind, params, srcs, in_shape, train_only, block, scope) -> str:
    inside, output = walk(kind, params, in_shape, cid, srcs[0], scope, block, train_only)
    optional = expand_composite(kind, params, in_shape).optional
    alias: dict = {}  # an inner composite's id -> the node that gives its output
    for n in inside:
        n.inputs = [alias.get(s, s) for s in n.inputs]
        if REGISTRY[n.kind].is_composite:
            alias[n.id] = _expand(nodes, composites, n.id, n.kind, n.params, n.inputs, n.in_shapes[0], train_only,
                                  block, n.scope)
        else:
            nodes.append(n)
    output = alias.get(output, output)
    composites[cid] = Composite(cid, kind, params, in_shape, output, optional, scope)
    return output


def inplace_plan(ir: IR) -> dict:
    """Which in-place blocks may really run in place: ``{node id: params with inplace=False}`` for the others.

    Alias analysis over the lowered network, in one pass (linear in its size). A block that overwrites its input
    writes into a *storage*: the tensor of the last block before it that made a new one (its producer), seen
    through every view on the way (Flatten, Dropout, which returns its input in eval, and blocks already running
    in place). Overwriting is safe only when
    - every tensor sharing that storage has exactly one reader, the next block of the chain, so nothing reads
      the storage after the write (a second branch, an aux head, or the network's output would see the
      overwritten values), and it is not a network input (the caller's tensor);
    - autograd does not keep any of them for backward: the producer and the blocks of the chain do not save
      their output (Tanh, Sigmoid and ReLU do; overwriting it makes backward fail).
    """
    readers: dict = {}
    for n in ir.nodes:
        for s in n.inputs:
            readers[s] = readers.get(s, 0) + 1
    exclusive: dict = {}  # tensor id -> a block reading it may overwrite its storage
    disabled = {}
    for n in ir.nodes:
        spec = REGISTRY[n.kind]
        src = n.inputs[0] if n.inputs else None
        in_place = False
        if spec.inplace and n.params.get("inplace"):
            in_place = src is not None and exclusive.get(src, False)
            if not in_place:
                disabled[n.id] = {**n.params, "inplace": False}
        alias = in_place or spec.alias == "view"
        own = readers.get(n.id, 0) == 1 and not spec.saves_output and n.kind not in ("input", "output")
        exclusive[n.id] = own and (exclusive.get(src, False) if alias else True)
    return disabled
