"""A small helper to write templates as code that reads like the paper's table."""
from __future__ import annotations

from builder.core.graph import Graph
from builder.core.layout import layered_positions


class Net:
    def __init__(self, name: str, input_size, default_hw: int, channels: int = 3):
        self.g = Graph(name)
        c, h, w = parse_input(input_size, default_hw, channels)
        self.last = self.add("input", "input", None, channels=c, height=h, width=w)

    def add(self, block_id: str, type_id: str, src="last", **params) -> str:
        src = self.last if src == "last" else src
        self.g.add_block(type_id, params, block_id)
        for s in ([src] if isinstance(src, str) else (src or [])):
            self.g.connect(s, block_id, check_cycle=False)
        self.last = block_id
        return block_id

    def output(self, src: str, block_id: str = "output", role: str = "main", weight: float = 1.0) -> str:
        return self.add(block_id, "output", src, role=role, loss_weight=weight)

    def done(self, **meta) -> Graph:
        for bid, pos in layered_positions(self.g).items():
            self.g.block(bid).pos = pos
        self.g.meta = {k: v for k, v in meta.items()}
        return self.g


def parse_input(value, default_hw: int, channels: int = 3) -> tuple[int, int, int]:
    """(C, H, W) from None, an int (H = W), a tuple/list, or text like '3x224x224' / '224'."""
    if value is None:
        return channels, default_hw, default_hw
    if isinstance(value, str):
        parts = [p for p in value.lower().replace(",", "x").split("x") if p.strip()]
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"input size {value!r} must look like 3x224x224 or 224") from None
        value = nums
    if isinstance(value, int):
        return channels, value, value
    value = list(value)
    if len(value) == 1:
        return channels, value[0], value[0]
    if len(value) == 2:
        return channels, value[0], value[1]
    if len(value) == 3:
        return value[0], value[1], value[2]
    raise ValueError(f"input size {value!r} must be CxHxW, HxW or one number")
