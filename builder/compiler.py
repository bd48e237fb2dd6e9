"""Graph -> ``torch.nn.Module``.

Composite blocks are flattened into their primitive blocks (ids ``inception3a.branch2.0``), every primitive
becomes a submodule at the path of its id (so state_dict keys are the ids), and ``forward`` is generated
straight-line Python, the way ``torch.fx`` generates code: no per-block interpretation at run time. The
auxiliary heads sit in an ``if self.training:`` section, so eval mode never computes them. The result works
with ``torch.compile``, ``torch.jit.trace`` and ``torch.export``.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from blocks import REGISTRY
from blocks.composite import IN

from .analysis import Analysis, Analyzer, walk
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


RESERVED_NAMES = frozenset({"self", "torch", "nn", "F", "Tensor", "x"})


def var_name(block_id: str, taken: set) -> str:
    """A unique, valid, non-keyword local variable name made from a block id (added to ``taken``)."""
    base = re.sub(r"\W", "_", block_id).strip("_") or "v"
    if base[0].isdigit() or keyword.iskeyword(base):
        base = "v_" + base
    name, n = base, 2
    while name in taken or name in RESERVED_NAMES:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def call_expression(type_id: str, args: list, ref: str) -> str:
    """The right-hand side of one forward statement: merges are their kind's tensor expression, every other
    block a module call."""
    spec = REGISTRY[type_id]
    if spec.forward is not None:
        return spec.forward(args)
    return f"{ref}({', '.join(args)})"


def module_ref(path: str) -> str:
    ref = "self"
    for part in path.split("."):
        ref = f"{ref}.{part}" if part.isidentifier() else f"getattr({ref}, {part!r})"
    return ref


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
    """Python source of ``forward``: main path first, then the training-only section, then the return.

    Like fx's generated code, every intermediate is deleted right after its last use, so memory is freed as the
    network runs (as in a hand-written forward that reassigns ``x``)."""
    names: dict = {}
    taken: set = set()
    inputs = [fb for fb in flat if fb.type == "input"]
    for fb in inputs:
        names[fb.id] = var_name(fb.id, taken)
    stmts = []  # (training-only section?, argument variables, source line)
    for section, blocks in ((False, [fb for fb in flat if fb.type != "input" and not fb.training_only]),
                            (True, [fb for fb in flat if fb.type != "input" and fb.training_only])):
        for fb in blocks:
            args = [names[s] for s in fb.inputs]
            if fb.type == "output":
                names[fb.id] = args[0]
                continue
            v = names[fb.id] = var_name(fb.id, taken)
            expr = call_expression(fb.type, args, module_ref(fb.id))
            stmts.append((section, args, f"{v} = {expr}  # {'x'.join(map(str, fb.out_shape or ()))}"))
    keep = {names[o] for o in outputs}
    last_use = {}
    for i, (_, args, _) in enumerate(stmts):
        for a in args:
            last_use[a] = i
    lines = [f"def forward(self, {', '.join(names[fb.id] for fb in inputs)}):"]
    in_aux = False
    for i, (section, args, text) in enumerate(stmts):
        if section and not in_aux:
            lines.append("    if self.training:")
            in_aux = True
        indent = "        " if section else "    "
        lines.append(indent + text)
        dead = [a for a in dict.fromkeys(args) if last_use.get(a) == i and a not in keep]
        if dead:
            lines.append(f"{indent}del {', '.join(dead)}")
    main_out = names[outputs[0]] if outputs else "None"
    if len(outputs) > 1:
        if not in_aux:
            lines.append("    if self.training:")
        lines.append(f"        return ({', '.join(names[o] for o in outputs)})")
    lines.append(f"    return {main_out}")
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
