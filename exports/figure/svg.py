"""A figure as SVG: text as text, every block one ``<g class="block">`` naming the block, its kind and its shape."""
from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from exports.diagram import visible

from .draw import Circle, Path, Poly, Rect, Text, head, num, painted

FAMILIES = {"sans": "Helvetica, Arial, sans-serif", "serif": "Times, 'Times New Roman', serif",
            "mono": "Courier, 'Courier New', monospace"}
ANCHORS = {"start": "start", "middle": "middle", "end": "end"}


def _attr(v) -> str:
    return quoteattr(visible(str(v)))


def _path(steps) -> str:
    return " ".join(s[0] + " " + " ".join(num(v) for v in s[1:]) for s in steps)


def _item(it) -> str:
    if isinstance(it, Rect):
        dash = ' stroke-dasharray="2 1.5"' if it.dash else ""
        rnd = f' rx="{num(it.round)}"' if it.round else ""
        return (f'<rect x="{num(it.x)}" y="{num(it.y)}" width="{num(it.w)}" height="{num(it.h)}"{rnd} '
                f'fill="{it.fill}" stroke="{it.stroke}" stroke-width="{num(it.width)}"{dash}/>')
    if isinstance(it, Poly):
        pts = " ".join(f"{num(x)},{num(y)}" for x, y in it.points)
        return f'<polygon points="{pts}" fill="{it.fill}" stroke="{it.stroke}" stroke-width="{num(it.width)}"/>'
    if isinstance(it, Circle):
        return (f'<circle cx="{num(it.cx)}" cy="{num(it.cy)}" r="{num(it.r)}" fill="{it.fill}" '
                f'stroke="{it.stroke}" stroke-width="{num(it.width)}"/>')
    if isinstance(it, Path):
        dash = ' stroke-dasharray="2 1.5"' if it.dash else ""
        out = (f'<path d="{_path(it.steps)}" fill="none" stroke="{it.stroke}" stroke-width="{num(it.width)}"'
               f'{dash}/>')
        if it.arrow:
            pts = " ".join(f"{num(x)},{num(y)}" for x, y in head(it))
            out += f'<polygon points="{pts}" fill="{it.stroke}"/>'
        return out
    if isinstance(it, Text):
        bold = ' font-weight="bold"' if it.bold else ""
        return (f'<text x="{num(it.x)}" y="{num(it.y)}" font-size="{num(it.size)}" '
                f'text-anchor="{ANCHORS[it.anchor]}" fill="{it.fill}"{bold}>{escape(visible(it.text))}</text>')
    raise TypeError(type(it).__name__)


def to_svg(drawing) -> str:
    s = drawing.scale
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(drawing.width * s)}pt" '
             f'height="{num(drawing.height * s)}pt" viewBox="0 0 {num(drawing.width)} {num(drawing.height)}" '
             f'font-family="{FAMILIES[drawing.font]}">',
             f"<title>{escape(visible(drawing.title))}</title>"]
    for g in painted(drawing):
        attrs = f' class="{g.role}"'
        for k, v in g.attrs.items():
            if k == "bbox":
                continue
            attrs += f" data-{k}={_attr(' '.join(v) if isinstance(v, list) else v)}"
        lines.append(f"<g{attrs}>" + "".join(_item(it) for it in g.items) + "</g>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"
