"""How a kind appears in the paper-style per-layer table (GoogLeNet's Table 1): a kind's ``report`` rule gives
its row's "type" cell and any other cells it fills (patch size/stride, the Inception column numbers). Pure."""
from __future__ import annotations


def named(name: str):
    """A row named ``name``."""
    return lambda p, in_shapes, block_id: {"type": name}


def module(name: str):
    """A module row: ``name (4a)``, with the block's id (``inception4a`` shortened to ``4a``)."""
    def rule(p, in_shapes, block_id):
        short = block_id.replace("inception", "") if block_id.startswith("inception") else block_id
        return {"type": f"{name} ({short})"}
    return rule


def window(name: str):
    """A convolution or pool: ``7x7/2`` in the patch size/stride column."""
    def rule(p, in_shapes, block_id):
        k, s = p["kernel"], p.get("stride", [1, 1])
        return {"type": name, "patch size/stride": f"{k[0]}x{k[1]}/{s[0]}"}
    return rule


def adaptive(name: str):
    """An adaptive pool: the window it comes to on its input (``7x7/1`` for a global pool of a 7x7 map)."""
    def rule(p, in_shapes, block_id):
        row = {"type": name}
        if in_shapes and in_shapes[0] and len(in_shapes[0]) == 3:
            ish, out = in_shapes[0], p["output_size"]
            row["patch size/stride"] = f"{ish[1] // out[0]}x{ish[2] // out[1]}/1"
        return row
    return rule


def columns(name: str, cells: dict):
    """A module row with Table 1's channel columns: ``cells`` maps a column to the parameter it shows."""
    base = module(name)

    def rule(p, in_shapes, block_id):
        return {**base(p, in_shapes, block_id), **{col: p[param] for col, param in cells.items()}}
    return rule
