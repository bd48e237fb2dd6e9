"""A composite block's inside: the expansion of its kind's rule, validated and memoised, and symbolic.

The composite's integer parameters and its input channels enter the rule as :class:`~blocks.spec.SymInt`
(``ch5x5red``, ``in_channels``), so every width inside remembers the expression it came from. Analysis and the
compiler use the values; the exporter writes the expressions. Pure: no graph, no torch.
"""
from __future__ import annotations

from blocks import REGISTRY, Subgraph
from blocks.spec import SymFloat, SymInt

from .graph import freeze

_EXPANSIONS: dict = {}


def expand_composite(type_id: str, params: dict, in_shape) -> Subgraph:
    """The composite's inside, parameters validated (cached: expansions are pure).

    The expansion is symbolic: the composite's integer parameters and its input channels enter as
    :class:`~blocks.spec.SymInt` (``ch5x5red``, ``in_channels``), so every width inside remembers the expression
    it came from. Analysis and the compiler use the values; the exporter writes the expressions."""
    key = (type_id, freeze(params), in_shape)
    sub = _EXPANSIONS.get(key)
    if sub is None:
        spec = REGISTRY[type_id]
        raw = spec.expand(_symbolic(spec, params), _symbolic_shape(in_shape))
        sub = Subgraph([(loc, t, REGISTRY[t].validate_params(p)) for loc, t, p in raw.nodes], list(raw.edges),
                       raw.output, dict(raw.optional))
        if len(_EXPANSIONS) > 10_000:
            _EXPANSIONS.clear()
        _EXPANSIONS[key] = sub
    return sub


def clear() -> None:
    _EXPANSIONS.clear()


def _symbolic(spec, params: dict) -> dict:
    out = dict(params)
    for p in spec.params:
        v = out.get(p.name)
        if p.kind == "int" and isinstance(v, int) and not isinstance(v, bool):
            out[p.name] = SymInt(int(v), p.arg)
        elif p.kind == "float" and isinstance(v, float):
            out[p.name] = SymFloat(v, p.arg)
    return out


def _symbolic_shape(in_shape):
    if not in_shape or not isinstance(in_shape[0], int):
        return in_shape
    return (SymInt(int(in_shape[0]), "in_channels"),) + tuple(in_shape[1:])
