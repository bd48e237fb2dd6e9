"""A figure as a one-page vector PDF, written directly: the standard Type 1 fonts (Helvetica, Times, Courier) in
WinAnsi encoding keep every label as searchable text, and no date or id enters the file, so one project always
gives the same bytes."""
from __future__ import annotations

from .draw import Circle, Path, Poly, Rect, Text, circle_steps, head, num, painted, rounded_rect, text_width

FONTS = {"sans": ("Helvetica", "Helvetica-Bold"), "serif": ("Times-Roman", "Times-Bold"),
         "mono": ("Courier", "Courier-Bold")}


def _rgb(colour: str) -> str:
    return " ".join(num(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))


def _text(s: str) -> str:
    """A PDF string in WinAnsi (Latin-1 for the letters users write); anything else shows as '?'."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in "()\\":
            out.append("\\" + ch)
        elif 32 <= o < 127:
            out.append(ch)
        elif 160 <= o < 256:
            out.append(f"\\{o:03o}")
        else:
            out.append("?")
    return "(" + "".join(out) + ")"


def _steps(steps) -> str:
    ops = {"M": "m", "L": "l", "C": "c"}
    return " ".join(" ".join(num(v) for v in s[1:]) + " " + ops[s[0]] for s in steps)


def _paint(it, font: str) -> list:
    if isinstance(it, Text):
        w = text_width(it.text, it.size, font) * (1.1 if it.bold else 1.0)
        x = it.x - {"start": 0.0, "middle": w / 2, "end": w}[it.anchor]
        face = "/F2" if it.bold else "/F1"
        return [f"{_rgb(it.fill)} rg BT {face} {num(it.size)} Tf 1 0 0 -1 {num(x)} {num(it.y)} Tm "
                f"{_text(it.text)} Tj ET"]
    stroke = getattr(it, "stroke", "#000000")
    fill = getattr(it, "fill", "none")
    out = [f"{num(it.width)} w {_rgb(stroke)} RG", "[2 1.5] 0 d" if getattr(it, "dash", False) else "[] 0 d"]
    if isinstance(it, Rect):
        shape = _steps(rounded_rect(it.x, it.y, it.w, it.h, it.round)) + " h" if it.round else \
            f"{num(it.x)} {num(it.y)} {num(it.w)} {num(it.h)} re"
    elif isinstance(it, Poly):
        (x0, y0), *rest = it.points
        shape = f"{num(x0)} {num(y0)} m " + " ".join(f"{num(x)} {num(y)} l" for x, y in rest) + " h"
    elif isinstance(it, Circle):
        shape = _steps(circle_steps(it.cx, it.cy, it.r)) + " h"
    elif isinstance(it, Path):
        out.append(_steps(it.steps) + " S")
        if it.arrow:
            (x0, y0), *rest = head(it)
            out.append(f"{_rgb(it.stroke)} rg {num(x0)} {num(y0)} m "
                       + " ".join(f"{num(x)} {num(y)} l" for x, y in rest) + " h f")
        return out
    else:
        raise TypeError(type(it).__name__)
    if fill == "none":
        out.append(shape + " S")
    else:
        out.append(f"{_rgb(fill)} rg {shape} B")
    return out


def to_pdf(drawing) -> bytes:
    s = drawing.scale
    w, h = drawing.width * s, drawing.height * s
    ops = [f"q {num(s)} 0 0 {num(-s)} 0 {num(h)} cm 1 j 1 J"]  # y down, as the drawing is
    for g in painted(drawing):
        for it in g.items:
            ops += _paint(it, drawing.font)
    ops.append("Q")
    content = "\n".join(ops).encode("latin-1")
    regular, bold = FONTS[drawing.font]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {num(w)} {num(h)}] "
         "/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>").encode(),
        f"<< /Type /Font /Subtype /Type1 /BaseFont /{regular} /Encoding /WinAnsiEncoding >>".encode(),
        f"<< /Type /Font /Subtype /Type1 /BaseFont /{bold} /Encoding /WinAnsiEncoding >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        f"<< /Title {_text(drawing.title)} /Producer (Block Builder) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 7 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
