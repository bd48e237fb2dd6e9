"""Composite block kinds: palette items that expand into primitive blocks.

``expand(params, in_shape) -> Subgraph`` lists primitive blocks with local ids (torchvision's child names, so a
compiled composite has torchvision's state_dict keys) and their wiring; ``"@in"`` is the composite's input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .spec import IN  # noqa: F401  (re-exported: composites wire their first blocks to it)


class OptionalPart(str):
    """The output of an optional part of a composite (a ResNet block's projection shortcut, ``downsample``): the
    part's last block when this instance has it, else the source used in its place. Works as a plain id; the
    Subgraph records where it is read, so the exporter can write one class with the part made optional."""

    def __new__(cls, name: str, value: str, present: bool):
        obj = super().__new__(cls, value)
        obj.part, obj.present = name, present
        return obj


@dataclass
class Subgraph:
    nodes: list = field(default_factory=list)  # [(local_id, type_id, params)]
    edges: list = field(default_factory=list)  # [(src_local_or_IN, dst_local, port)]
    output: str = ""
    optional: dict = field(default_factory=dict)  # part -> (reader local, port, present, source when absent)

    def add(self, local_id: str, type_id: str, inputs, **params) -> str:
        """Add a block fed by ``inputs`` (one id or a list, in port order); returns its id for chaining."""
        self.nodes.append((local_id, type_id, params))
        if isinstance(inputs, str):
            inputs = [inputs]
        from .spec import REGISTRY
        spec = REGISTRY[type_id]
        for i, src in enumerate(inputs):
            port = f"in{i}" if spec.variadic else spec.ports[i]
            self.edges.append((str(src), local_id, port))
            if isinstance(src, OptionalPart):
                self.optional[src.part] = (local_id, port, src.present, None if src.present else str(src))
        self.output = local_id
        return local_id

    def conv(self, local_id, src, out, kernel, stride=1, padding=0, bn=True, eps=0.001) -> str:
        """A BasicConv (conv-BN-ReLU, or conv-ReLU without BN)."""
        return self.add(local_id, "basic_conv", src, out_channels=out, kernel=kernel, stride=stride,
                        padding=padding, eps=eps, batch_norm=bn)

    def inputs_of(self, local_id: str) -> list[str]:
        return [s for s, d, _ in sorted((e for e in self.edges if e[1] == local_id), key=lambda e: _port_key(e[2]))]


def _port_key(port: str):
    return (0, int(port[2:])) if port.startswith("in") and port[2:].isdigit() else (1, port)
