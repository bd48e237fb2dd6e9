"""One drawn block: its form (a slab sized by its tensor, a circled operator, a labelled end), its size and its
label, and the primitives that draw it once placed."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from exports.diagram import COLOURS

from .draw import LINE, Circle, Poly, Rect, Text, text_width

FONT = 6.0        # label size, in points
WRAP = 46.0       # a label line wider than this breaks at a space
MONO = {"front": "#FFFFFF", "top": "#EEEEEE", "side": "#D4D4D4", "stroke": "#212121"}
# the lines that are not blocks: wires, frames and their titles
INK = {"kind": {"wire": "#455A64", "frame": "#78909C", "title": "#455A64"},
       "mono": {"wire": "#424242", "frame": "#757575", "title": "#424242"}}


def tensor_text(shape) -> str:
    """An output shape as papers write it: ``64@56x56`` for a feature map, ``1000`` for a vector."""
    if not shape:
        return "?"
    if len(shape) == 3:
        return f"{shape[0]}@{shape[1]}x{shape[2]}"
    return "x".join(str(d) for d in shape)


def _extent(n) -> float:
    """A spatial size on the log scale the figure uses (1 -> 6 pt, 7 -> 24 pt, 224 -> 57 pt)."""
    return 6.0 + 6.5 * math.log2(max(int(n), 1))


def _mix(colour: str, t: float) -> str:
    """``colour`` mixed with white: ``t`` = 0 the colour, 1 white."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c + (255 - c) * t):02X}" for c in (r, g, b))


def _wrap(text: str, font: str) -> list:
    words, lines = text.split(" "), [""]
    for w in words:
        trial = f"{lines[-1]} {w}".strip()
        if lines[-1] and text_width(trial, FONT, font) > WRAP:
            lines.append(w)
        else:
            lines[-1] = trial
    return lines


@dataclass
class Cell:
    id: str
    kind: str
    form: str              # slab | op | end
    thick: float           # along the reading direction (channels)
    cross: float           # across it (spatial size)
    depth: float           # the slab's receding side (width), 0 for flat boxes
    lines: list            # its label, line by line
    colours: dict
    shape: tuple | None = None
    text: str = ""         # an operator's sign, an end's role
    ids: list = field(default_factory=list)  # the blocks it stands for (more than one when a stage is folded)
    # placed by the layout
    row: int = 0
    col: int = 0
    lane: int = 0
    main0: float = 0.0     # where its column starts along the reading direction
    colw: float = 0.0
    axis: float = 0.0      # its lane's line across the reading direction
    ext: tuple = ()        # (along, before its lane's line, after it): :meth:`extents`, set by the layout

    # ------------------------------------------------------------ size, as the layout reads it
    def label_size(self, font: str) -> tuple:
        if not self.lines:
            return 0.0, 0.0
        if getattr(self, "_size", None) is None or self._size[0] != font:
            self._size = (font, self._measure(font))
        return self._size[1]

    def _measure(self, font: str) -> tuple:
        bold = [1.1 if self._bold(i) else 1.0 for i in range(len(self.lines))]  # bold Helvetica is ~10% wider
        return (max(text_width(t, FONT, font) * k for t, k in zip(self.lines, bold)),
                len(self.lines) * FONT * LINE)

    def _bold(self, i: int) -> bool:
        """The first of several label lines (the kind's name) is bold."""
        return i == 0 and len(self.lines) > 1

    def extents(self, direction: str, font: str) -> tuple:
        """(length along the reading direction, extent before its lane's line, extent after it)."""
        lw, lh = self.label_size(font)
        body = self.thick + self.depth
        if direction == "LR":
            return max(body, lw), self.cross / 2 + self.depth, self.cross / 2 + (2 + lh if lh else 0)
        return max(body, lh), self.cross / 2, self.cross / 2 + self.depth + (3 + lw if lw else 0)

    # ------------------------------------------------------------ where wires meet it
    def _start(self) -> float:
        return self.main0 + (self.colw - self.thick - self.depth) / 2

    def ports(self, direction: str) -> tuple:
        """(where a wire enters, where it leaves), as (along, across) points."""
        s = self._start()
        return (s, self.axis), (s + self.thick + self.depth, self.axis)

    # ------------------------------------------------------------ drawing
    def draw(self, direction: str, font: str) -> tuple:
        """(primitives, bounding box (x0, y0, x1, y1) of its body, without the label)."""
        s, a, c = self._start(), self.axis, self.colours
        half, t, d = self.cross / 2, self.thick, self.depth
        items: list = []
        if direction == "LR":
            x0, y0, w, h = s, a - half, t, self.cross
        else:
            x0, y0, w, h = a - half, s + d, self.cross, t
        if self.form == "op":
            r = self.cross / 2
            cx, cy = (s + r, a) if direction == "LR" else (a, s + r)
            items += [Circle(cx, cy, r, c["front"], c["stroke"]),
                      Text(cx, cy + FONT * 0.36, self.text, FONT * 1.15, bold=True, fill=c["stroke"])]
            box = (cx - r, cy - r, cx + r, cy + r)
        elif self.form == "end":
            items += [Rect(x0, y0, w, h, c["front"], c["stroke"], round=min(w, h) / 2),
                      Text(x0 + w / 2, y0 + h / 2 + FONT * 0.34, self.text, FONT, fill=c["stroke"])]
            box = (x0, y0, x0 + w, y0 + h)
        else:
            items.append(Rect(x0, y0, w, h, c["front"], c["stroke"]))
            box = (x0, y0 - d, x0 + w + d, y0 + h)
            if d:
                items += [Poly(((x0, y0), (x0 + d, y0 - d), (x0 + w + d, y0 - d), (x0 + w, y0)), c["top"], c["stroke"]),
                          Poly(((x0 + w, y0), (x0 + w + d, y0 - d), (x0 + w + d, y0 + h - d), (x0 + w, y0 + h)),
                               c["side"], c["stroke"])]
        items += self._label(direction, font, box)
        return items, box

    def _label(self, direction: str, font: str, box) -> list:
        if not self.lines:
            return []
        lw, lh = self.label_size(font)
        if direction == "LR":
            x, top, anchor = (box[0] + box[2]) / 2, box[3] + 2, "middle"
        else:
            x, top, anchor = box[2] + 3, (box[1] + box[3]) / 2 - lh / 2, "start"
        return [Text(x, top + FONT * (0.9 + LINE * i), line, FONT, anchor, bold=self._bold(i),
                     fill="#212121") for i, line in enumerate(self.lines)]


def make_cell(block, report, style, repeat: int = 1, hidden=()) -> Cell:
    """The drawn form of one block, from what its kind says about it and the shape the analysis gives it."""
    spec = block.spec
    shape = report.out_shape if report is not None else None
    name = block.label if spec is None else spec.figure_name
    tint = COLOURS.get(spec.category if spec else "", "#78909C")
    colours = MONO if style.colour == "mono" else {
        "front": _mix(tint, 0.55), "top": _mix(tint, 0.75), "side": _mix(tint, 0.35), "stroke": "#263238"}
    if repeat > 1:
        name = f"{name} x{repeat}"
    lines = (_wrap(name, style.font) + [tensor_text(shape)]) if style.labels == "on" else []
    ids = [block.id, *hidden]
    if spec is not None and spec.glyph:
        return Cell(block.id, block.type, "op", 9.0, 9.0, 0.0, lines[-1:], colours, shape, spec.glyph, ids)
    if block.type == "output" or block.type == "input" and not shape:
        text = "aux output" if block.params.get("role") == "aux" else "output"
        w = text_width(text, FONT, style.font) + 8
        along, across = (w, 10.0) if style.direction == "LR" else (10.0, w)
        return Cell(block.id, block.type, "end", along, across, 0.0, lines[-1:], colours, shape, text, ids)
    if shape and len(shape) >= 2:
        thick = 1.5 + 1.3 * math.log2(max(int(shape[0]), 1))
        cross = min(_extent(shape[1]), 64.0)
        depth = min(cross / 2, 0.3 * _extent(shape[-1])) if style.slabs == "3d" else 0.0
    else:
        n = int(shape[0]) if shape else 1
        thick, cross, depth = 2.5, min(6.0 + 4.5 * math.log2(max(n, 1)), 64.0), 0.0
    return Cell(block.id, block.type, "slab", thick, cross, depth, lines, colours, shape, "", ids)

