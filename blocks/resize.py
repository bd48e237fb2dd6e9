"""Resizing a map to any size, by any of torch's interpolations: nearest (torch's legacy rule), nearest-exact,
bilinear and bicubic, with or without aligned corners, to a size or by a scale (``F.interpolate``,
``nn.Upsample``; ONNX's Resize and Upsample, whose coordinate rules these are). Whole factors with nearest or
bilinear are the upsample kind's."""
from __future__ import annotations

import math

from .imports import FromTorch, Made
from .spec import MAX_SPATIAL, BlockError, BlockSpec, Cost, Param, ParamError, TorchCall, fmt_shape, register

MODES = ("nearest", "nearest-exact", "bilinear", "bicubic")


def _scale(value, name="scale"):
    if value in (None, []):
        return []
    if not isinstance(value, (list, tuple)) or len(value) != 2 or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 1e-3 <= v <= 1e3 for v in value):
        raise ParamError(f"{name}: {value!r} is not [] or two factors in [0.001, 1000]")
    return [float(v) for v in value]


def _shape(p, ins):
    if len(ins[0]) != 3:
        raise BlockError(f"Resize needs a CxHxW input, got {fmt_shape(ins[0])}", "shape")
    c, h, w = ins[0]
    if p["scale"]:
        want = [math.floor(h * p["scale"][0]), math.floor(w * p["scale"][1])]
        if want != list(p["size"]):
            raise BlockError(f"a scale of {p['scale'][0]:g} x {p['scale'][1]:g} makes {h}x{w} into "
                             f"{want[0]}x{want[1]}, not the size {p['size'][0]}x{p['size'][1]}", "shape")
    if p["align_corners"] and p["mode"] not in ("bilinear", "bicubic"):
        raise BlockError(f"aligned corners are for bilinear and bicubic, not {p['mode']}", "invalid")
    return (c, *p["size"])


def _args(p, i, o):
    size = ("size", list(p["size"]), None) if not p["scale"] else ("scale_factor", tuple(p["scale"]), None)
    out = [size, ("mode", p["mode"], "nearest")]
    if p["mode"] in ("bilinear", "bicubic"):
        out.append(("align_corners", p["align_corners"], None))
    return out


def resized(shape, size, scale, mode: str, align_corners: bool):
    """The parameters of resizing a C x H x W map (``size`` or ``scale`` given), or why it has no block."""
    c, h, w = shape
    if mode not in MODES:
        return f"resizing by {mode!r} has no block"
    if size is None:
        scale = [float(v) for v in (scale if isinstance(scale, (list, tuple)) else (scale, scale))]
        size = [math.floor(h * scale[0]), math.floor(w * scale[1])]
        if [float(size[0]) / h, float(size[1]) / w] == scale:
            scale = []  # the size says it: a whole or exact factor
    else:
        size = [int(v) for v in (size if isinstance(size, (list, tuple)) else (size, size))]
        scale = []
    if min(size) < 1 or max(size) > MAX_SPATIAL:
        return f"resizing to {size[0]}x{size[1]} has no block"
    if scale and align_corners:  # the runtimes disagree on these corners: what ONNX's reference says is unsure
        return "resizing with aligned corners by a scale that is not the sizes' ratio has no block"
    return dict(size=size, scale=scale, mode=mode, align_corners=bool(align_corners))


def _call(c):
    x = c.tensors[0] if c.tensors else None
    shape = c.shape(x) if x is not None else None
    if shape is None or len(shape) != 3:
        return "resizing other than a C x H x W map"
    if c.opt(5, "recompute_scale_factor") or c.opt(6, "antialias"):
        return "resizing with a recomputed scale or antialiasing has no block"
    made = resized(shape, c.opt(1, "size"), c.opt(2, "scale_factor"), c.opt(3, "mode", "nearest"),
                   c.opt(4, "align_corners") or False)
    return made if isinstance(made, str) else Made(made, [x])


register(BlockSpec(
    "resize", "Resize", "Reshape",
    params=(Param("size", "pair", [32, 32], "The output's height and width", min=1, max=MAX_SPATIAL),
            Param("scale", "data", [], "The factors the coordinates are mapped by, where they are not the sizes' "
                                       "ratio ([] : the ratio)", check=_scale,
                  describe=lambda v: " x ".join(f"{f:g}" for f in v) if v else "the sizes' ratio"),
            Param("mode", "choice", "bilinear", "Interpolation", choices=MODES),
            Param("align_corners", "bool", False, "Map the corner pixels onto each other (bilinear, bicubic)")),
    shape=_shape, cost=lambda p, ins, out: Cost(0, 0),
    summary=lambda p: f"to {p['size'][0]}x{p['size'][1]} {p['mode']}",
    torch=TorchCall("nn.Upsample", _args), keeps_width=True, in_table=False,
    from_torch=FromTorch(functions=("torch.nn.functional.interpolate", "torch.nn.functional.upsample"), call=_call),
    description="Resizes a map to any size by nearest, bilinear or bicubic interpolation."))
