"""Diagrams: graphviz DOT (written without the ``dot`` binary), SVG and PNG (rendered by it)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from blocks import REGISTRY, fmt_shape
from builder.analysis import analyze
from builder.project import atomic_write
from builder.report import human

COLOURS = {"Input & output": "#546E7A", "Convolution": "#1E88E5", "Pooling": "#43A047", "Normalisation": "#8E24AA",
           "Activation": "#F4511E", "Regularisation": "#757575", "Reshape": "#6D4C41", "Dense": "#3949AB",
           "Merge": "#00897B", "Inception modules": "#D81B60", "Inception branches": "#EC407A",
           "Grid reductions": "#5E35B1", "Heads": "#00838F", "Residual & NIN": "#7CB342"}


def visible(text: str) -> str:
    """User text as a diagram shows it: every character that is not printable (controls, NUL, line and paragraph
    separators, NEL, form feed, unassigned code points; XML and DOT choke on several) written as a visible
    ``\\uXXXX``; line breaks kept."""
    return "\n".join("".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in line)
                     for line in str(text).split("\n"))


def _q(text: str) -> str:
    """A DOT double-quoted string: user text made visible, then backslashes, quotes and newlines escaped, so no
    user text breaks out."""
    return '"' + visible(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph, analysis=None) -> str:
    a = analysis or analyze(graph)
    lines = ["digraph network {", "  rankdir=TB;", "  graph [fontname=\"Helvetica\", nodesep=0.3, ranksep=0.35];",
             "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10, fillcolor=white];",
             "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#78909C\"];",
             f"  label={_q(graph.name)}; labelloc=t; fontsize=14;"]
    ids = {bid: f"n{i}" for i, bid in enumerate(graph.ids())}
    groups: dict = {}
    for b in graph.blocks():
        if b.group:
            groups.setdefault(b.group["id"], []).append(b.id)

    def node_line(bid, indent="  "):
        b = graph.block(bid)
        spec = REGISTRY.get(b.type)
        rep = a.blocks.get(bid)
        title = spec.title if spec else b.type
        shape = fmt_shape(rep.out_shape) if rep and rep.out_shape else "?"
        label = f"{b.label or b.id}\n{title}\n{shape}"
        if rep and (rep.params or rep.macs):
            label += f"\n{human(rep.params)} params, {human(rep.macs)} MACs"
        colour = COLOURS.get(spec.category if spec else "", "#78909C")
        extra = ', color="#E53935", penwidth=2' if rep and rep.errors else f', color="{colour}", penwidth=1.5'
        return f"{indent}{ids[bid]} [label={_q(label)}{extra}];"

    grouped = {bid for members in groups.values() for bid in members}
    for i, (gid, members) in enumerate(groups.items()):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_q(gid)}; style=\"rounded,dashed\"; color=\"#B0BEC5\";")
        lines += [node_line(m, "    ") for m in members]
        lines.append("  }")
    lines += [node_line(bid) for bid in graph.ids() if bid not in grouped]
    for u, v, k in graph.edges():
        rep = a.blocks.get(u)
        lab = fmt_shape(rep.out_shape) if rep and rep.out_shape else ""
        lines.append(f"  {ids[u]} -> {ids[v]} [label={_q(lab)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_diagram(graph, fmt: str, path: Path) -> list[Path]:
    from .errors import ExportError
    text = to_dot(graph)
    if fmt == "dot":
        atomic_write(path, text)
        return [path]
    exe = shutil.which("dot")
    if exe is None:
        raise ExportError(f"{fmt.upper()} needs graphviz's 'dot' program, which is not installed "
                          "(Debian: apt install graphviz); the DOT export works without it")
    try:
        out = subprocess.run([exe, f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=120, check=True)
    except subprocess.CalledProcessError as e:
        raise ExportError(f"dot failed: {e.stderr.decode(errors='replace').strip()[:500]}") from None
    except subprocess.TimeoutExpired:
        raise ExportError("dot took more than two minutes; try the DOT export") from None
    atomic_write(path, out.stdout)
    return [path]
