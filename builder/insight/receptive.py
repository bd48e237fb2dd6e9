"""Receptive fields: for every block, how far its output units see into the input image, per axis.

A field is, per axis, ``size`` (input pixels one output unit depends on), ``jump`` (input pixels between
neighbouring output units: the product of the strides) and ``start`` (the input coordinate of the centre of the
first output unit's field; pixel i has centre i, so padding can put it below 0). Convolutions and pools grow the
size by ``(dilation * (kernel - 1)) * jump``; merges (concat, add, multiply) take the union of their inputs'
fields, so a concat sees as far as its widest branch; composites are followed through their inside. After a
Flatten or a Linear every unit sees the whole image (``whole``). Like shapes, fields come from the analysed graph
(no torch).
"""
from __future__ import annotations

from blocks import REGISTRY
from blocks.fields import PIXEL, Axis, Field, union

from ..core.analysis import IN, Analysis, analyze, walk
from ..core.graph import Graph


def through(type_id: str, params: dict, in_shapes, fields: list[Field]) -> Field | None:
    """The field of a block's output from its inputs' fields: the kind's own rule (``BlockSpec.receptive``);
    a composite is followed through its inside."""
    if any(f is None for f in fields) or not fields and type_id != "input":
        return None
    if type_id == "input":
        return PIXEL
    spec = REGISTRY[type_id]
    if spec.is_composite:
        inside, output = walk(type_id, params, in_shapes[0])
        seen = {IN: fields[0]}
        for n in inside:
            seen[n.local] = through(n.type, n.params, n.in_shapes, [seen.get(s) for s in n.sources])
        return seen.get(output)
    if spec.receptive is not None:
        return spec.receptive(params, in_shapes, fields)
    if spec.variadic:  # concat, add, multiply: what any input sees
        return union(fields)
    return fields[0]  # elementwise and per-position kinds (activations, norms, dropout, shuffles, slices, output)


def receptive_fields(graph: Graph, analysis: Analysis | None = None) -> dict:
    """{block id: Field (or None where the shapes are unknown)} for every block, in input pixels of the first
    input."""
    import networkx as nx
    a = analysis or analyze(graph)
    out: dict = {}
    try:
        order = list(nx.topological_sort(graph.g))
    except nx.NetworkXUnfeasible:
        return {bid: None for bid in graph.ids()}
    for bid in order:
        b = graph.block(bid)
        rep = a.blocks.get(bid)
        if b.spec is None or rep is None or rep.errors or (rep.out_shape is None and b.type != "output"):
            out[bid] = None
            continue
        fields = [out.get(src) for _, src in graph.inputs(bid)]
        try:
            out[bid] = through(b.type, b.params, tuple(rep.in_shapes), fields)
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            out[bid] = None
    return out


__all__ = ["Axis", "Field", "receptive_fields", "through"]
