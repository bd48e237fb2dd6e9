"""Paper figures of the live design: layers as slabs sized by their tensors, branches side by side, skips as arcs,
auxiliary heads apart, expanded composites framed, repeated stages folded; written as SVG, PDF or TikZ."""
from __future__ import annotations

from pathlib import Path

from .layout import build_figure
from .style import CHOICES, PAPER_WIDTH, Style, project_style, style_from

SUFFIXES = (".svg", ".pdf", ".tex")


def render(drawing, suffix: str) -> bytes:
    """The figure as the bytes of a ``suffix`` file."""
    if suffix == ".svg":
        from .svg import to_svg
        return to_svg(drawing).encode("utf-8")
    if suffix == ".pdf":
        from .pdf import to_pdf
        return to_pdf(drawing)
    if suffix == ".tex":
        from .tikz import to_tikz
        return to_tikz(drawing).encode("utf-8")
    from exports.errors import ExportError
    raise ExportError(f"a figure is written as {', '.join(SUFFIXES)}, not {suffix or 'a file without a suffix'!r}")


def write_figure(graph, path, style: Style | None = None) -> list[Path]:
    """The figure of ``graph`` in the style its project keeps (or ``style``), as the file ``path`` names it."""
    from builder.core.files import write_bytes
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        from exports.errors import ExportError
        raise ExportError(f"{path}: a figure is written as .svg, .pdf or .tex (TikZ), not "
                          f"{path.suffix or 'a file without a suffix'}")
    data = render(build_figure(graph, style or project_style(graph)), path.suffix.lower())
    write_bytes(path, data)
    return [path]


__all__ = ["CHOICES", "PAPER_WIDTH", "SUFFIXES", "Style", "build_figure", "project_style", "render", "style_from",
           "write_figure"]
