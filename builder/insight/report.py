"""Tables of a graph's analysis: per block, per layer (inside composites), and the GoogLeNet paper's Table 1."""
from __future__ import annotations

import csv
import io

from blocks import IN, REGISTRY, fmt_shape

from ..core.analysis import Analysis, walk
from ..core.graph import Graph


def human(n: float, unit: str = "") -> str:
    """6624904 -> '6.62M'; the exact figure belongs in a tooltip or the JSON."""
    n = float(n)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            v = n / div
            digits = 2 if abs(v) < 10 else (1 if abs(v) < 100 else 0)
            return f"{v:.{digits}f}{suffix}{unit}"
    return f"{int(n)}{unit}"


def human_bytes(n: float) -> str:
    for div, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.3g} {suffix}"
    return f"{int(n)} B"


def block_rows(graph: Graph, analysis: Analysis, per_layer: bool = False) -> list[dict]:
    rows = []
    for bid, rep in analysis.blocks.items():
        blk = graph.block(bid)
        spec = blk.spec
        rows.append({"id": bid, "kind": blk.type, "output_shape": rep.out_shape, "params": rep.params,
                     "macs": rep.macs, "errors": [e.message for e in rep.errors], "depth": 0,
                     "inference": rep.inference})
        if per_layer and spec is not None and spec.is_composite and rep.out_shape and len(rep.in_shapes) == 1:
            rows.extend(_inner_rows(bid, blk.type, blk.params, rep.in_shapes[0], 1, rep.inference))
    return rows


def _inner_rows(prefix, type_id, params, in_shape, depth, inference) -> list[dict]:
    rows = []
    for n in walk(type_id, params, in_shape)[0]:
        r = n.result
        rows.append({"id": f"{prefix}.{n.local}", "kind": n.type, "output_shape": r.out_shape, "params": r.params,
                     "macs": r.macs, "errors": [m for _, m in r.errors], "depth": depth, "inference": inference})
        if REGISTRY[n.type].is_composite:
            rows.extend(_inner_rows(f"{prefix}.{n.local}", n.type, n.params, n.in_shapes[0], depth + 1, inference))
    return rows


# ------------------------------------------------------------------------- the paper's Table 1 layout

PAPER_COLUMNS = ["type", "patch size/stride", "output size", "depth", "#1x1", "#3x3 reduce", "#3x3",
                 "#5x5 reduce", "#5x5", "pool proj", "params", "ops"]

def _conv_depth(type_id, params, in_shape) -> int:
    """The layers with weights on the longest path through a block (the paper's depth column)."""
    spec = REGISTRY[type_id]
    if not spec.is_composite:
        return spec.weight_layers
    inside, output = walk(type_id, params, in_shape)
    depth = {IN: 0}
    for n in inside:
        depth[n.local] = max(depth[s] for s in n.sources) + _conv_depth(n.type, n.params,
                                                                          n.in_shapes[0] if n.in_shapes else None)
    return depth[output]


def paper_rows(graph: Graph, analysis: Analysis, inference_only: bool = True) -> list[dict]:
    """One row per block in the layout of GoogLeNet's Table 1 (activations, flatten, BN and merges folded); each
    kind fills its own cells (``BlockSpec.report``)."""
    rows = []
    for bid, rep in analysis.blocks.items():
        blk = graph.block(bid)
        spec = blk.spec
        if (spec and not spec.in_table) or (inference_only and not rep.inference) or not rep.out_shape:
            continue
        p = blk.params
        cells = spec.report(p, rep.in_shapes, bid) if spec and spec.report else \
            {"type": spec.title if spec else blk.type}
        out = rep.out_shape
        size = f"{out[1]}x{out[2]}x{out[0]}" if len(out) == 3 else f"1x1x{out[0]}"
        row = {"id": bid, "type": cells["type"], "patch size/stride": cells.get("patch size/stride", ""),
               "output size": size, "depth": _conv_depth(blk.type, p, rep.in_shapes[0] if rep.in_shapes else None),
               "params": rep.params, "ops": rep.macs}
        row.update({k: v for k, v in cells.items() if k not in ("type", "patch size/stride")})
        rows.append(row)
    return rows


def render(rows: list[dict], columns: list[str], fmt: str = "text", humanize=("params", "ops", "macs"),
           paper_units: bool = False) -> str:
    """Text (aligned), CSV or Markdown. ``paper_units``: params in K = 1024 and ops in M = 10^6, as Table 1."""
    def cell(row, c):
        v = row.get(c, "")
        if paper_units and c == "params" and isinstance(v, int):
            return f"{v / 1024:.0f}K" if v else ""
        if paper_units and c == "ops" and isinstance(v, int):
            return f"{v / 1e6:.0f}M" if v else ""
        if v is None or v == "":
            return ""
        if c in ("output_shape",):
            return fmt_shape(v) if v else "-"
        if isinstance(v, list):
            return "; ".join(map(str, v))
        if fmt == "text" and c in humanize and isinstance(v, int):
            return human(v) if v else ""
        return str(v)

    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([cell(r, c) for c in columns])
        return buf.getvalue()
    table = [[cell(r, c) for c in columns] for r in rows]
    if fmt == "markdown":
        esc = [[t.replace("|", "\\|") for t in line] for line in table]
        out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in esc]
        return "\n".join(out) + "\n"
    widths = [max([len(c)] + [len(line[i]) for line in table]) for i, c in enumerate(columns)]
    head = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    lines = [head, "  ".join("-" * w for w in widths)]
    lines += ["  ".join(t.rjust(w) if _numeric(t) else t.ljust(w) for t, w in zip(line, widths)) for line in table]
    return "\n".join(lines) + "\n"


def _numeric(t: str) -> bool:
    return bool(t) and (t.replace(".", "").replace(",", "").isdigit() or (t[:-1].replace(".", "").isdigit()
                                                                         and t[-1] in "KMGT"))
