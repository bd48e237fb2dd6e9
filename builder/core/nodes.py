"""The records of the lowered network: a :class:`Node` per primitive block (or, as a composite's inside is
walked, per block of that inside) and a :class:`Composite` per composite instance. Every consumer (analysis of a
composite, the IR, code generation, reports, receptive fields, the advisor) reads these."""
from __future__ import annotations

from dataclasses import dataclass, field

from blocks import REGISTRY


@dataclass(slots=True)
class Node:
    """One primitive block of the lowered network."""
    id: str              # its module path in the network ("inception3a.branch2.0"): state_dict keys start here
    kind: str
    params: dict         # validated; inside a composite, widths are SymInt expressions of its parameters
    inputs: list         # ids of the nodes it reads, in port order
    in_shapes: list
    shape: tuple | None
    scope: tuple = ()    # ids of the composite instances around it, outermost first
    training_only: bool = False  # only the auxiliary outputs need it
    block: str = ""      # the diagram block it comes from (the top-level block id)
    figures: object = None  # its analysis (analysis.Result: shape, parameters, MACs, errors)

    @property
    def local(self) -> str:
        """Its id inside its innermost composite (``branch2.0``); its id at the top level."""
        return self.id[len(self.scope[-1]) + 1:] if self.scope else self.id

    @property
    def spec(self):
        return REGISTRY[self.kind]


@dataclass(slots=True)
class Composite:
    """One composite instance of the lowered network: its kind, parameters, input shape and optional parts."""
    id: str
    kind: str
    params: dict
    in_shape: tuple
    output: str          # the node id that gives its output
    optional: dict = field(default_factory=dict)  # part -> (reader local, port, present, source when absent)
    scope: tuple = ()    # the composites around it
