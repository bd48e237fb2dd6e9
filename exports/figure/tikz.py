"""A figure as TikZ: a LaTeX document of one page the figure's size (pdflatex compiles it as it is); the
``tikzpicture`` between its markers goes into a paper as it is, with ``\\usepackage{tikz}``."""
from __future__ import annotations

from .draw import Circle, Path, Poly, Rect, Text, circle_steps, head, num, painted, rounded_rect

FAMILIES = {"sans": r"\sffamily", "serif": r"\rmfamily", "mono": r"\ttfamily"}
ANCHORS = {"start": "base west", "middle": "base", "end": "base east"}
SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "^": r"\^{}",
           "_": r"\_", "%": r"\%", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def _latex(s: str) -> str:
    """User text as LaTeX text: its specials escaped, anything but printable ASCII shown as '?'."""
    return "".join(SPECIAL.get(c, c) if 32 <= ord(c) < 127 else "?" for c in s)


def _pt(x, y) -> str:
    return f"({num(x)},{num(y)})"


def _steps(steps) -> str:
    out = []
    for s in steps:
        if s[0] == "C":
            out.append(f".. controls {_pt(s[1], s[2])} and {_pt(s[3], s[4])} .. {_pt(s[5], s[6])}")
        else:
            out.append(("" if s[0] == "M" else "-- ") + _pt(s[1], s[2]))
    return " ".join(out)


class _Colours:
    def __init__(self):
        self.names: dict = {}

    def __call__(self, colour: str) -> str:
        if colour not in self.names:
            self.names[colour] = f"bb{len(self.names)}"
        return self.names[colour]

    def definitions(self) -> list:
        return [f"\\definecolor{{{n}}}{{HTML}}{{{c[1:]}}}" for c, n in self.names.items()]


def _item(it, col, family) -> list:
    if isinstance(it, Text):
        weight = r"\bfseries" if it.bold else ""
        return [f"\\node[anchor={ANCHORS[it.anchor]}, inner sep=0, text={col(it.fill)}, "
                f"font={family}{weight}\\fontsize{{{num(it.size)}}}{{{num(it.size * 1.2)}}}\\selectfont] "
                f"at {_pt(it.x, it.y)} {{{_latex(it.text)}}};"]
    opts = [f"line width={num(it.width)}bp", f"draw={col(it.stroke)}"]
    if getattr(it, "dash", False):
        opts.append("dash pattern=on 2bp off 1.5bp")
    fill = getattr(it, "fill", "none")
    if fill != "none" and not isinstance(it, Path):
        opts.append(f"fill={col(fill)}")
    if isinstance(it, Rect):
        shape = _steps(rounded_rect(it.x, it.y, it.w, it.h, it.round)) + " -- cycle" if it.round else \
            f"{_pt(it.x, it.y)} rectangle {_pt(it.x + it.w, it.y + it.h)}"
    elif isinstance(it, Poly):
        shape = " -- ".join(_pt(x, y) for x, y in it.points) + " -- cycle"
    elif isinstance(it, Circle):
        shape = _steps(circle_steps(it.cx, it.cy, it.r)) + " -- cycle"
    elif isinstance(it, Path):
        out = [f"\\draw[{', '.join(opts)}] {_steps(it.steps)};"]
        if it.arrow:
            out.append(f"\\fill[{col(it.stroke)}] " + " -- ".join(_pt(x, y) for x, y in head(it)) + " -- cycle;")
        return out
    else:
        raise TypeError(type(it).__name__)
    return [f"\\path[{', '.join(opts)}] {shape};"]


def to_tikz(drawing) -> str:
    col = _Colours()
    family = FAMILIES[drawing.font]
    body = []
    for g in painted(drawing):
        for it in g.items:
            body += _item(it, col, family)
    s = drawing.scale
    w, h = drawing.width * s, drawing.height * s
    return "\n".join([
        "% A figure by Block Builder. pdflatex compiles this file as it is; in a paper, use the tikzpicture",
        "% between the markers (with \\usepackage{tikz}).",
        r"\documentclass{article}",
        r"\usepackage{tikz}",
        f"\\paperwidth={num(w)}bp \\paperheight={num(h)}bp \\pdfpagewidth=\\paperwidth "
        f"\\pdfpageheight=\\paperheight",
        r"\hoffset=-1in \voffset=-1in \oddsidemargin=0pt \topmargin=0pt \headheight=0pt \headsep=0pt",
        f"\\textwidth={num(w)}bp \\textheight={num(h)}bp \\parindent=0pt \\pagestyle{{empty}}",
        r"\begin{document}",
        "% --- figure begins",
        f"\\begin{{tikzpicture}}[x={num(s)}bp, y=-{num(s)}bp]",
        *col.definitions(),
        f"\\useasboundingbox (0,0) rectangle {_pt(drawing.width, drawing.height)};",
        *body,
        r"\end{tikzpicture}",
        "% --- figure ends",
        r"\end{document}",
        ""])
