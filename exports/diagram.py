"""Diagrams: graphviz DOT (built with the ``graphviz`` package, no ``dot`` binary needed), SVG and PNG (rendered
by the ``dot`` program, in a child process with a time limit: the package's own ``pipe`` has none)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from blocks import REGISTRY, fmt_shape
from builder.core.analysis import analyze
from builder.core.project import atomic_write
from builder.insight.report import human

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


def _label(text: str) -> str:
    """A label for the graphviz package: user text made visible and its backslashes made literal (the package
    quotes the string and escapes its quotes), lines joined with DOT's line break; no user text breaks out."""
    import graphviz
    return "\\n".join(graphviz.escape(line) for line in visible(text).split("\n"))


def to_dot(graph, analysis=None) -> str:
    """The diagram as DOT text, built with the ``graphviz`` package (no ``dot`` program needed)."""
    import graphviz
    a = analysis or analyze(graph)
    d = graphviz.Digraph("network", graph_attr={"rankdir": "TB", "fontname": "Helvetica", "nodesep": "0.3",
                                                "ranksep": "0.35", "label": _label(graph.name), "labelloc": "t",
                                                "fontsize": "14"},
                         node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                    "fontsize": "10", "fillcolor": "white"},
                         edge_attr={"fontname": "Helvetica", "fontsize": "8", "color": "#78909C"})
    ids = {bid: f"n{i}" for i, bid in enumerate(graph.ids())}
    groups: dict = {}
    for b in graph.blocks():
        if b.group:
            groups.setdefault(b.group["id"], []).append(b.id)

    def node(target, bid):
        b = graph.block(bid)
        spec = REGISTRY.get(b.type)
        rep = a.blocks.get(bid)
        title = spec.title if spec else b.type
        shape = fmt_shape(rep.out_shape) if rep and rep.out_shape else "?"
        label = f"{b.label or b.id}\n{title}\n{shape}"
        if rep and (rep.params or rep.macs):
            label += f"\n{human(rep.params)} params, {human(rep.macs)} MACs"
        colour = COLOURS.get(spec.category if spec else "", "#78909C")
        style = {"color": "#E53935", "penwidth": "2"} if rep and rep.errors else {"color": colour, "penwidth": "1.5"}
        target.node(ids[bid], label=_label(label), **style)

    grouped = {bid for members in groups.values() for bid in members}
    for i, (gid, members) in enumerate(groups.items()):
        with d.subgraph(name=f"cluster_{i}") as c:
            c.attr(label=_label(gid), style="rounded,dashed", color="#B0BEC5")
            for m in members:
                node(c, m)
    for bid in graph.ids():
        if bid not in grouped:
            node(d, bid)
    for u, v, k in graph.edges():
        rep = a.blocks.get(u)
        d.edge(ids[u], ids[v], label=_label(fmt_shape(rep.out_shape) if rep and rep.out_shape else ""))
    # the package indents with tabs; two spaces a level keep every character of the text printable
    return "".join("  " * (len(line) - len(line.lstrip("\t"))) + line.lstrip("\t")
                   for line in d.source.splitlines(keepends=True))


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
