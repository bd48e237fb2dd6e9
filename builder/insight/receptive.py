"""Receptive fields: for every block, how far its output units see into the input image, per axis.

A field is, per axis, ``size`` (input pixels one output unit depends on), ``jump`` (input pixels between
neighbouring output units: the product of the strides) and ``start`` (the input coordinate of the centre of the
first output unit's field; pixel i has centre i, so padding can put it below 0). Convolutions and pools grow the
size by ``(dilation * (kernel - 1)) * jump``; merges (concat, add, multiply) take the union of their inputs'
fields, so a concat sees as far as its widest branch; composites are followed through their inside. After a
Flatten or a Linear every unit sees the whole image (``whole``). Like shapes, fields come from the lowered network
(no torch).
"""
from __future__ import annotations

from blocks import REGISTRY
from blocks.fields import PIXEL, Axis, Field, union

from ..core.analysis import Analysis
from ..core.graph import Graph
from ..core.ir import lower


def through(type_id: str, params: dict, in_shapes, fields: list[Field]) -> Field | None:
    """The field of a primitive block's output from its inputs' fields: the kind's own rule
    (``BlockSpec.receptive``)."""
    if any(f is None for f in fields) or not fields and type_id != "input":
        return None
    if type_id == "input":
        return PIXEL
    spec = REGISTRY[type_id]
    if spec.receptive is not None:
        return spec.receptive(params, in_shapes, fields)
    if spec.variadic:  # concat, add, multiply: what any input sees
        return union(fields)
    return fields[0]  # elementwise and per-position kinds (activations, norms, dropout, shuffles, slices, output)


def receptive_fields(graph: Graph, analysis: Analysis | None = None) -> dict:
    """{block id: Field (or None where the shapes are unknown)} for every block, in input pixels of the first
    input; the lowered network's inner nodes (``inception3a.branch2.1``) have theirs too. Read from the lowered
    network, so a composite's field is the one of the node that gives its output."""
    ir = lower(graph, analysis, partial=True)
    if getattr(ir, "fields", None) is not None:  # the same network: the same fields (a selection moving)
        return ir.fields
    ir.fields = _fields(ir)
    return ir.fields


def _fields(ir) -> dict:
    a = ir.analysis  # the graph's analysis now (``analysis`` if it still describes the graph)
    seen: dict = {}
    for n in ir.nodes:
        rep = a.blocks.get(n.id) if not n.scope else None
        if REGISTRY.get(n.kind) is None or (not n.scope and (rep is None or rep.errors or
                                                             (n.shape is None and n.kind != "output"))):
            seen[n.id] = None
            continue
        try:
            seen[n.id] = through(n.kind, n.params, tuple(n.in_shapes), [seen.get(s) for s in n.inputs])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            seen[n.id] = None
    for cid, comp in ir.composites.items():
        seen[cid] = seen.get(comp.output)
    return {bid: seen.get(bid) for bid in a.blocks} | {k: v for k, v in seen.items() if k not in a.blocks}


__all__ = ["Axis", "Field", "receptive_fields", "through"]
