"""Graph -> ``torch.nn.Module``.

Composite blocks are flattened into their primitive blocks (ids ``inception3a.branch2.0``), every primitive
becomes a submodule at the path of its id (so state_dict keys are the ids), and ``forward`` is generated
straight-line Python, the way ``torch.fx`` generates code: no per-block interpretation at run time. The
auxiliary heads sit in an ``if self.training:`` section, so eval mode never computes them. The result works
with ``torch.compile``, ``torch.jit.trace`` and ``torch.export``.
"""
from __future__ import annotations

from dataclasses import dataclass

from blocks import REGISTRY
from blocks.composite import IN

from .analysis import Analysis, Analyzer, walk
from .codegen import Names, Node, forward_body
from .errors import CompileError
from .graph import Graph


@dataclass
class FlatBlock:
    id: str
    type: str
    params: dict
    inputs: list        # source ids, in port order
    in_shapes: list
    out_shape: tuple
    training_only: bool  # only needed for auxiliary outputs
    group: str | None = None  # the top-level composite it came from


def flatten(graph: Graph, analysis: Analysis | None = None) -> tuple[list[FlatBlock], list[str], list[float]]:
    """The primitive blocks the compiled network runs, in order; the output ids (main first) and loss weights."""
    a = analysis or Analyzer(graph).run()
    bad = [i for i in a.errors if i.block is None or a.blocks[i.block].training]
    if bad:
        raise CompileError("the graph has errors:\n" + "\n".join(f"  {i}" for i in bad))
    flat: list[FlatBlock] = []
    alias: dict = {}  # composite id -> id of the primitive that gives its output
    for bid, rep in a.blocks.items():
        if not rep.training:
            continue
        blk = graph.block(bid)
        srcs = [alias.get(s, s) for _, s in graph.inputs(bid)]
        train_only = not rep.inference
        if blk.spec.is_composite:
            alias[bid] = _flatten_composite(flat, bid, blk.type, blk.params, srcs, rep.in_shapes, train_only, bid)
        else:
            flat.append(FlatBlock(bid, blk.type, blk.params, srcs, list(rep.in_shapes), rep.out_shape, train_only,
                                  blk.group["id"] if blk.group else None))
    outputs = [alias.get(o, o) for o in a.outputs]
    weights = [graph.block(o).params["loss_weight"] for o in a.outputs]
    return flat, outputs, weights


def _flatten_composite(flat, prefix, type_id, params, srcs, in_shapes, train_only, group) -> str:
    inside, output = walk(type_id, params, in_shapes[0])
    ids = {IN: srcs[0]}
    for n in inside:
        gid = f"{prefix}.{n.local}"
        if REGISTRY[n.type].is_composite:
            ids[n.local] = _flatten_composite(flat, gid, n.type, n.params, [ids[s] for s in n.sources],
                                              list(n.in_shapes), train_only, group)
        else:
            flat.append(FlatBlock(gid, n.type, n.params, [ids[s] for s in n.sources], list(n.in_shapes),
                                  n.result.out_shape, train_only, group))
            ids[n.local] = gid
    return ids[output]


def set_submodule(root, path: str, module) -> None:
    import torch.nn as nn
    parts = path.split(".")
    parent = root
    for part in parts[:-1]:
        child = parent._modules.get(part)
        if child is None:
            child = nn.Module()
            parent.add_module(part, child)
        parent = child
    parent.add_module(parts[-1], module)


def inplace_plan(flat: list[FlatBlock]) -> dict:
    """Which in-place blocks may really run in place: ``{id: params with inplace=False}`` for the others.

    Alias analysis over the flat network, in one pass (linear in its size). A block that overwrites its input
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
    for fb in flat:
        for s in fb.inputs:
            readers[s] = readers.get(s, 0) + 1
    exclusive: dict = {}  # tensor id -> a block reading it may overwrite its storage
    disabled = {}
    for fb in flat:
        spec = REGISTRY[fb.type]
        src = fb.inputs[0] if fb.inputs else None
        in_place = False
        if spec.inplace and fb.params.get("inplace"):
            in_place = src is not None and exclusive.get(src, False)
            if not in_place:
                disabled[fb.id] = {**fb.params, "inplace": False}
        alias = in_place or spec.alias == "view"
        own = readers.get(fb.id, 0) == 1 and not spec.saves_output and fb.type not in ("input", "output")
        exclusive[fb.id] = own and (exclusive.get(src, False) if alias else True)
    return disabled


def generate_forward(flat: list[FlatBlock], outputs: list[str]) -> str:
    """Python source of ``forward`` from the one code generator (:mod:`builder.codegen`), flat: main path first,
    then the training-only section, then the return; every intermediate deleted right after its last use."""
    names = Names()
    inputs = {fb.id: names(fb.id) for fb in flat if fb.type == "input"}
    nodes = [Node(fb.id, fb.type, None, fb.inputs, fb.out_shape, fb.training_only) for fb in flat
             if fb.type != "input"]
    body = forward_body(inputs, nodes, outputs, names)
    lines = [f"def forward(self, {', '.join(inputs.values())}):"] + [line[4:] for line in body]
    return "\n".join(lines) + "\n"


def compile_graph(graph: Graph, analysis: Analysis | None = None):
    """Compile to a ``CompiledNetwork``: train mode returns (main, aux...) when there are aux outputs, eval
    mode returns the main output only."""
    import torch

    flat, outputs, weights = flatten(graph, analysis)
    src = generate_forward(flat, outputs)
    namespace = {"torch": torch}
    exec(compile(src, f"<block-builder {graph.name!r}>", "exec"), namespace)  # our own generated code

    cls = type("CompiledNetwork", (network_base(),), {"forward": namespace["forward"]})
    model = cls()
    model.code = src
    model.output_ids = outputs
    model.loss_weights = weights
    model.input_shapes = [fb.out_shape for fb in flat if fb.type == "input"]
    fixed = inplace_plan(flat)
    for fb in flat:
        spec = REGISTRY[fb.type]
        if spec.build is None:
            continue
        module = spec.build(fixed.get(fb.id, fb.params), fb.in_shapes)
        set_submodule(model, fb.id, module)
    return model


_BASE = None


def network_base():
    """The base class of compiled networks (made on first use: importing this module must not import torch)."""
    global _BASE
    if _BASE is None:
        from torch import nn

        class CompiledNetwork(nn.Module):
            """A network compiled from a Block Builder graph; ``.code`` holds its generated forward."""

        _BASE = CompiledNetwork
    return _BASE
