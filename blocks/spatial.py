"""Kinds of a map's layout and statistics that imported models use: adaptive and global max pooling
(``nn.AdaptiveMaxPool2d``, ``amax`` over H and W, ONNX's GlobalMaxPool and ReduceMax), pixel shuffle
(ESPCN's sub-pixel convolution; ONNX's DepthToSpace in CRD order) and instance normalisation (style transfer;
ONNX's InstanceNormalization)."""
from __future__ import annotations

import numpy as np

from . import fields
from .imports import FromOnnx, FromTorch, pair
from .spec import MAX_SPATIAL, BlockError, BlockSpec, Cost, Param, TorchCall, fmt_shape, register

ZERO = Cost(0, 0)


def _chw(ins, what):
    if len(ins[0]) != 3:
        raise BlockError(f"{what} needs a CxHxW input, got {fmt_shape(ins[0])}", "shape")
    return ins[0]


def _adaptive_max(m):
    size = m.output_size
    if isinstance(size, (tuple, list)) and None in size or getattr(m, "return_indices", False):
        return "adaptive max pool with a None size or its indices"
    return dict(output_size=pair(size))


def _amax_call(c):
    if c.name.endswith("adaptive_max_pool2d"):
        if c.opt(2, "return_indices", False):
            return "adaptive max pool with its indices"
        return dict(output_size=pair(c.opt(1, "output_size", 1)))
    from .layout import reduce_call  # over H and W: global max pooling; over other dims: a reduction
    return reduce_call("max", "adaptive_maxpool2d")(c)


def _reduce_max_from_onnx(n):
    from .layout import reduce_from_onnx
    return reduce_from_onnx("max", "adaptive_maxpool2d")(n)


register(BlockSpec(
    "adaptive_maxpool2d", "Global / adaptive max pool", "Pooling", short="MaxPool", receptive=fields.adaptive,
    params=(Param("output_size", "pair", [1, 1], "Output grid (1x1: global max pooling)", min=1, max=MAX_SPATIAL),),
    shape=lambda p, ins: (_chw(ins, "Adaptive max pool")[0],) + tuple(p["output_size"]),
    cost=lambda p, ins, out: ZERO,
    summary=lambda p: "global" if p["output_size"] == [1, 1] else f"to {p['output_size'][0]}x{p['output_size'][1]}",
    torch=TorchCall("nn.AdaptiveMaxPool2d", lambda p, i, o: [(None, p["output_size"], None)]), keeps_width=True,
    from_torch=FromTorch(("torch.nn.AdaptiveMaxPool2d",), _adaptive_max,
                         ("torch.nn.functional.adaptive_max_pool2d", "torch.amax", "Tensor.amax"), _amax_call),
    from_onnx=(FromOnnx("GlobalMaxPool", lambda n: dict(output_size=[1, 1])),
               FromOnnx("ReduceMax", _reduce_max_from_onnx)),
    description="The largest value of each channel over a fixed grid; 1x1 is global max pooling."))


def _shuffle_shape(p, ins):
    c, h, w = _chw(ins, "PixelShuffle")
    r = p["upscale_factor"]
    if c % (r * r):
        raise BlockError(f"PixelShuffle by {r} needs channels divisible by {r * r}, got {c}", "shape")
    if h * r > MAX_SPATIAL or w * r > MAX_SPATIAL:
        raise BlockError(f"PixelShuffle to {h * r}x{w * r} is larger than {MAX_SPATIAL}", "invalid")
    return (c // (r * r), h * r, w * r)


def _depth_to_space(n):
    mode = n.attrs.get("mode", b"DCR")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "CRD":
        n.refuse(f"depth-to-space in {mode} order (PixelShuffle's is CRD)")
    return dict(upscale_factor=int(n.attrs["blocksize"]))


register(BlockSpec(
    "pixel_shuffle", "PixelShuffle", "Reshape", receptive=fields.upsampled(lambda p: [p["upscale_factor"]] * 2),
    params=(Param("upscale_factor", "int", 2, "Times larger; the channels shrink by its square", min=1, max=64),),
    shape=_shuffle_shape, cost=lambda p, ins, out: ZERO, summary=lambda p: f"x{p['upscale_factor']}",
    channel_rule=lambda p, ch, ins, out: out[0],
    torch=TorchCall("nn.PixelShuffle", lambda p, i, o: [(None, p["upscale_factor"], None)]), alias="view",
    from_torch=FromTorch(("torch.nn.PixelShuffle",), lambda m: dict(upscale_factor=m.upscale_factor),
                         ("torch.nn.functional.pixel_shuffle",),
                         lambda c: dict(upscale_factor=int(c.opt(1, "upscale_factor")))),
    from_onnx=(FromOnnx("DepthToSpace", _depth_to_space),),
    in_table=False,
    description="Moves channels into space: C*r*r x H x W to C x rH x rW (ESPCN's sub-pixel convolution)."))


def _instance_from_torch(m):
    if m.track_running_stats:
        return "instance norm with running statistics has no block"
    return dict(eps=float(m.eps), affine=bool(m.affine))


def _instance_from_onnx(n):
    scale, bias = np.asarray(n.const(1), np.float32), np.asarray(n.const(2), np.float32)
    n.weights.update(weight=scale.reshape(-1), bias=bias.reshape(-1))
    return dict(eps=float(n.attrs.get("epsilon", 1e-5)), affine=True)


register(BlockSpec(
    "instancenorm2d", "InstanceNorm2d", "Normalisation", short="IN",
    params=(Param("eps", "float", 1e-5, "Added to the variance for stability", min=1e-12, max=1.0),
            Param("affine", "bool", False, "Learn a scale and a shift per channel")),
    shape=lambda p, ins: _chw(ins, "InstanceNorm2d"),
    cost=lambda p, ins, out: Cost(2 * out[0] if p["affine"] else 0, 0),
    torch=TorchCall("nn.InstanceNorm2d", lambda p, i, o: [(None, i, None), ("eps", float(p["eps"]), 1e-5),
                                                         ("affine", p["affine"], False)]),
    from_torch=FromTorch(("torch.nn.InstanceNorm2d",), _instance_from_torch),
    from_onnx=(FromOnnx("InstanceNormalization", _instance_from_onnx),),
    keeps_width=True, in_table=False,
    description="Normalises each channel of each image over its height and width (style transfer)."))
