"""Tables of a graph's analysis: per block, per layer (inside composites), and the GoogLeNet paper's Table 1."""
from __future__ import annotations

import csv
import io

from blocks import REGISTRY, fmt_shape

from ..core.analysis import Analysis, evaluate
from ..core.graph import Graph
from ..core.ir import lower


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
    """One row per block; ``per_layer``: each composite followed by the layers of its inside, from the lowered
    network (an inner composite's row before its own layers; ``depth`` is the nesting)."""
    inside = _inside(graph, analysis) if per_layer else {}
    rows = []
    for bid, rep in analysis.blocks.items():
        rows.append({"id": bid, "kind": graph.block(bid).type, "output_shape": rep.out_shape, "params": rep.params,
                     "macs": rep.macs, "errors": [e.message for e in rep.errors], "depth": 0,
                     "inference": rep.inference})
        shown = {bid}
        for n in inside.get(bid, ()):
            for level, cid in enumerate(n.scope):
                if cid not in shown:  # an inner composite: its row, then its layers
                    shown.add(cid)
                    c = inside["composites"][cid]
                    r = evaluate(c.kind, c.params, (c.in_shape,))
                    rows.append(_row(cid, c.kind, r, level, rep.inference))
            rows.append(_row(n.id, n.kind, n.figures, len(n.scope), rep.inference))
    return rows


def _inside(graph, analysis) -> dict:
    """{top-level block: its lowered nodes in order} and the composites (``"composites"``)."""
    ir = lower(graph, analysis, partial=True)
    out: dict = {"composites": ir.composites}
    for n in ir.nodes:
        if n.scope:
            out.setdefault(n.block, []).append(n)
    return out


def _row(rid, kind, r, depth, inference) -> dict:
    return {"id": rid, "kind": kind, "output_shape": r.out_shape, "params": r.params, "macs": r.macs,
            "errors": [m for _, m in r.errors], "depth": depth, "inference": inference}


# ------------------------------------------------------------------------- the paper's Table 1 layout

PAPER_COLUMNS = ["type", "patch size/stride", "output size", "depth", "#1x1", "#3x3 reduce", "#3x3",
                 "#5x5 reduce", "#5x5", "pool proj", "params", "ops"]

def _conv_depth(block: str, kind: str, inside: dict) -> int:
    """The layers with weights on the longest path through a block (the paper's depth column), over its
    lowered nodes."""
    nodes = inside.get(block)
    if not nodes:
        return REGISTRY[kind].weight_layers if kind in REGISTRY else 0
    depth: dict = {}
    for n in nodes:
        depth[n.id] = max((depth.get(s, 0) for s in n.inputs), default=0) + n.spec.weight_layers
    return depth[inside["composites"][block].output]


def paper_rows(graph: Graph, analysis: Analysis, inference_only: bool = True) -> list[dict]:
    """One row per block in the layout of GoogLeNet's Table 1 (activations, flatten, BN and merges folded); each
    kind fills its own cells (``BlockSpec.report``)."""
    rows = []
    inside = _inside(graph, analysis)
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
               "output size": size, "depth": _conv_depth(bid, blk.type, inside),
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
