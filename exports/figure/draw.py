"""A figure as drawing primitives in points (y grows downward), which every writer (SVG, PDF, TikZ) renders the
same way; and the font metrics the layout sizes text with."""
from __future__ import annotations

from dataclasses import dataclass, field

# Advance widths of Helvetica (Adobe's AFM, 1/1000 em) for ASCII 32..126: the layout's measure of a label. Times is
# narrower and Courier's 600 is close to Helvetica's average, so boxes sized by it hold the text in every font.
_HELVETICA = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,  # space ! " # $ % & ' ( ) * + , - . /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,  # 0-9 : ; < = > ?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,  # @ A-O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,  # P-Z [ \ ] ^ _
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,  # ` a-o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584)       # p-z { | } ~


def text_width(text: str, size: float, font: str = "sans") -> float:
    """The width of one line of ``text`` at ``size`` points (an upper bound for serif; exact for mono)."""
    if font == "mono":
        return 0.6 * size * len(text)
    return size * sum(_HELVETICA[ord(c) - 32] if 32 <= ord(c) < 127 else 667 for c in text) / 1000


LINE = 1.2  # line height, in ems


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str = "none"
    stroke: str = "#000000"
    dash: bool = False
    round: float = 0.0
    width: float = 0.6


@dataclass
class Poly:
    points: tuple       # ((x, y), ...), closed
    fill: str = "none"
    stroke: str = "#000000"
    width: float = 0.6


@dataclass
class Circle:
    cx: float
    cy: float
    r: float
    fill: str = "#FFFFFF"
    stroke: str = "#000000"
    width: float = 0.6


@dataclass
class Path:
    """An open line: ("M", x, y), ("L", x, y) and ("C", x1, y1, x2, y2, x, y) steps; ``arrow`` puts a head on its
    end."""
    steps: tuple
    stroke: str = "#455A64"
    dash: bool = False
    arrow: bool = True
    width: float = 0.6

    def end_direction(self) -> tuple:
        """The unit vector of the path's last step, for its arrow head."""
        last = self.steps[-1]
        x, y = last[-2], last[-1]
        if last[0] == "C":
            px, py = last[3], last[4]
        else:
            prev = self.steps[-2]
            px, py = prev[-2], prev[-1]
        dx, dy = x - px, y - py
        n = (dx * dx + dy * dy) ** 0.5 or 1.0
        return dx / n, dy / n


@dataclass
class Text:
    x: float
    y: float            # the baseline
    text: str
    size: float
    anchor: str = "middle"  # start | middle | end
    bold: bool = False
    fill: str = "#000000"


@dataclass
class Group:
    """The primitives of one thing the figure shows (a block, a frame, a wire), with what it stands for."""
    role: str            # block | frame | wire | connector
    attrs: dict = field(default_factory=dict)  # block: id, kind, shape (as the analysis gives it), ids (folded)
    items: list = field(default_factory=list)


@dataclass
class Drawing:
    width: float
    height: float
    font: str
    groups: list
    title: str = ""
    scale: float = 1.0   # the figure is drawn at this scale to fit the width asked for

    def boxes(self) -> dict:
        """Every block's outline as (x0, y0, x1, y1), by id (what the overlap check and the tests read)."""
        out = {}
        for g in self.groups:
            if g.role == "block":
                out[g.attrs["id"]] = g.attrs["bbox"]
        return out


def head(path: Path, size: float = 2.6) -> tuple:
    """The arrow head of ``path`` as a closed triangle's points."""
    last = path.steps[-1]
    x, y = last[-2], last[-1]
    dx, dy = path.end_direction()
    bx, by = x - dx * size, y - dy * size
    nx, ny = -dy * size * 0.45, dx * size * 0.45
    return ((x, y), (bx + nx, by + ny), (bx - nx, by - ny))


def num(v: float) -> str:
    """A coordinate as every writer prints it: two decimals at most, no trailing zeros, never ``-0``."""
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def rounded_rect(x, y, w, h, r) -> tuple:
    """A rectangle with corners of radius ``r`` as path steps (what PDF and TikZ draw it with)."""
    r = max(0.0, min(r, w / 2, h / 2))
    k = 0.5523 * r  # a quarter circle's control distance
    return (("M", x + r, y), ("L", x + w - r, y), ("C", x + w - r + k, y, x + w, y + r - k, x + w, y + r),
            ("L", x + w, y + h - r), ("C", x + w, y + h - r + k, x + w - r + k, y + h, x + w - r, y + h),
            ("L", x + r, y + h), ("C", x + r - k, y + h, x, y + h - r + k, x, y + h - r),
            ("L", x, y + r), ("C", x, y + r - k, x + r - k, y, x + r, y))


def circle_steps(cx, cy, r) -> tuple:
    k = 0.5523 * r
    return (("M", cx + r, cy), ("C", cx + r, cy + k, cx + k, cy + r, cx, cy + r),
            ("C", cx - k, cy + r, cx - r, cy + k, cx - r, cy), ("C", cx - r, cy - k, cx - k, cy - r, cx, cy - r),
            ("C", cx + k, cy - r, cx + r, cy - k, cx + r, cy))


def painted(drawing: Drawing):
    """Every primitive in painting order (frames, then wires, then blocks), with its group."""
    order = {"frame": 0, "connector": 1, "wire": 1, "block": 2}
    for g in sorted(drawing.groups, key=lambda g: order.get(g.role, 3)):
        yield g
