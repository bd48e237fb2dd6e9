"""How a paper figure looks: the choices a user makes once and the project keeps (``meta["figure"]``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from exports.errors import ExportError

# A two-column paper's text width (IEEE: 7.16 in, ACM and NeurIPS within a few points of it), in points.
PAPER_WIDTH = 516.0

CHOICES = {
    "colour": ("kind", "mono"),         # fill by the kind's category, or greys only
    "font": ("sans", "serif", "mono"),  # Helvetica, Times, Courier (and their LaTeX families)
    "labels": ("on", "off"),           # the kind and the output shape beside every box
    "slabs": ("3d", "flat"),           # 3-D slabs sized by the tensor, or flat boxes
    "direction": ("LR", "TB"),         # left to right (rows) or top down (columns)
}


@dataclass(frozen=True)
class Style:
    colour: str = "kind"
    font: str = "sans"
    labels: str = "on"
    slabs: str = "3d"
    direction: str = "LR"
    stages: bool = False               # fold repeated stages into one drawn period with "xN"
    width: float = PAPER_WIDTH         # the widest the figure may be, in points; a wider one wraps, then scales

    def to_dict(self) -> dict:
        """Only what differs from the defaults, so a project that never chose keeps no figure entry."""
        base = Style()
        return {k: v for k, v in asdict(self).items() if v != getattr(base, k)}

    def replace(self, where: str = "--", **changes) -> "Style":
        """This style with ``changes`` (checked; ``where`` prefixes a key in a message: ``--width``)."""
        return style_from({**asdict(self), **changes}, where)


def style_from(value, where: str = "meta.figure.") -> Style:
    """A style from a project's ``meta["figure"]`` (or options): unknown keys and bad values named, each as
    ``where`` + its key."""
    if value is None:
        return Style()
    if not isinstance(value, dict):
        raise ExportError(f"{where.rstrip('.')}: must be an object of style choices, not {type(value).__name__}")
    known = {f.name for f in fields(Style)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ExportError(f"{where}{unknown[0]}: not a figure style; the choices are {', '.join(sorted(known))}")
    out = {}
    for key, v in value.items():
        if key in CHOICES:
            if v not in CHOICES[key]:
                raise ExportError(f"{where}{key}: {v!r} is not one of {', '.join(CHOICES[key])}")
        elif key == "stages":
            if not isinstance(v, bool):
                raise ExportError(f"{where}stages: must be true or false, not {v!r}")
        elif key == "width":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 72 <= v <= 7200:
                raise ExportError(f"{where}width: must be a number of points from 72 to 7200, not {v!r}")
            v = float(v)
        out[key] = v
    return Style(**out)


def project_style(graph) -> Style:
    """The figure style the project keeps (the defaults when it keeps none)."""
    return style_from(graph.meta.get("figure"))
