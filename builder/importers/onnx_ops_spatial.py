"""ONNX operators on images, written with torch (:mod:`.onnx_ops` is the registry): convolution, pooling with
every padding and ceil rule, normalisation, and Resize/Upsample with every coordinate rule and interpolation (as
one matrix per resized axis)."""
from __future__ import annotations

import math

import numpy as np

from .onnx_ops import Call, Unsupported, _axis, _pad_flat, _text, implements


# ------------------------------------------------------------------ convolution and pooling

def _same_pads(auto_pad: str, sizes, kernel, strides, dilations) -> tuple[list, list]:
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small = total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else total - small)
        end.append(total - begin[-1])
    return begin, end


def _auto_pad(c) -> str:
    return _text(c.a.get("auto_pad", "NOTSET"))


def _pads(c, sizes, kernel, strides, dilations) -> tuple[list, list]:
    n = len(sizes)
    mode = _auto_pad(c)
    if mode == "VALID":
        return [0] * n, [0] * n
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        return _same_pads(mode, sizes, kernel, strides, dilations)
    pads = list(c.a.get("pads", [0] * 2 * n))
    return pads[:n], pads[n:]


def _window(c, what: str):
    """A convolution's input, weight, bias, spatial dims, kernel, strides and dilations (the kernel_shape attribute
    must agree with the weight)."""
    x, w, b = c.x, c.inputs[1], c.given(2)
    n = x.dim() - 2
    if not 1 <= n <= 3:
        raise Unsupported(f"a {n}-D {what}")
    kernel = list(c.a.get("kernel_shape", w.shape[2:]))
    if kernel != list(w.shape[2:]):
        raise Unsupported(f"kernel_shape {kernel} disagrees with its weight's {list(w.shape[2:])}")
    return x, w, b, n, kernel, list(c.a.get("strides", [1] * n)), list(c.a.get("dilations", [1] * n))


@implements("Conv")
def _conv(c):
    import torch.nn.functional as F
    x, w, b, n, kernel, strides, dilations = _window(c, "convolution")
    begin, end = _pads(c, list(x.shape[2:]), kernel, strides, dilations)
    if begin == end:
        pad = begin
    else:
        x, pad = F.pad(x, _pad_flat(begin, end)), [0] * n
    conv = (F.conv1d, F.conv2d, F.conv3d)[n - 1]
    return conv(x, w, b, strides, pad, dilations, c.a.get("group", 1))


@implements("ConvTranspose")
def _conv_transpose(c):
    import torch.nn.functional as F
    x, w, b, n, kernel, strides, dilations = _window(c, "transposed convolution")
    sizes = list(x.shape[2:])
    extra = list(c.a.get("output_padding", [0] * n))
    full = [s * (i - 1) + (k - 1) * d + 1 + e for i, s, k, d, e in zip(sizes, strides, kernel, dilations, extra)]
    mode = _auto_pad(c)
    wanted = c.a.get("output_shape")
    if wanted is None and mode in ("SAME_UPPER", "SAME_LOWER"):
        wanted = [i * s for i, s in zip(sizes, strides)]
    if wanted is not None:
        wanted = list(wanted)[-n:]
        total = [f - o for f, o in zip(full, wanted)]
        begin = [t // 2 if mode == "SAME_UPPER" else t - t // 2 for t in total]
        end = [t - bg for t, bg in zip(total, begin)]
    elif mode == "VALID":
        begin, end = [0] * n, [0] * n
    else:
        pads = list(c.a.get("pads", [0] * 2 * n))
        begin, end = pads[:n], pads[n:]
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]
    y = fn(x, w, None, strides, 0, 0, c.a.get("group", 1), dilations)
    if any(extra):  # rows past the last input's reach: no contribution, the bias only
        y = F.pad(y, _pad_flat([0] * n, extra))
    y = F.pad(y, _pad_flat([-v for v in begin], [-v for v in end]))  # a negative pad crops
    return y if b is None else y + b.reshape([1, -1] + [1] * n)


def _windows(x, kernel, strides, dilations, begin, end, ceil: bool, fill: float, reach_fill: float | None = None):
    """Every pooling window of ``x`` (N x C x spatial), as N x C x out... x kernel..., and the window dims;
    ONNX's rules for the output size. The padding holds ``fill``, the ceil mode's extra reach past it
    ``reach_fill`` (default: ``fill``)."""
    import torch.nn.functional as F
    n = len(kernel)
    extra = []
    for size, k, s, d, b, e in zip(x.shape[2:], kernel, strides, dilations, begin, end):
        reach = (k - 1) * d + 1
        span = size + b + e - reach
        out = (math.ceil(span / s) if ceil else span // s) + 1
        if ceil and (out - 1) * s >= size + b:  # the last window starts inside the input or its padding
            out -= 1
        extra.append(max((out - 1) * s + reach - (size + b + e), 0))
    if reach_fill is None or reach_fill == fill:
        x = F.pad(x, _pad_flat(begin, [e + x_ for e, x_ in zip(end, extra)]), value=fill)
    else:
        x = F.pad(F.pad(x, _pad_flat(begin, end), value=fill), _pad_flat([0] * n, extra), value=reach_fill)
    for i, (k, s, d) in enumerate(zip(kernel, strides, dilations)):
        x = x.unfold(2 + i, (k - 1) * d + 1, s)[..., ::d]
    return x, tuple(range(-n, 0))


def _pool_args(c):
    x = c.x
    n = x.dim() - 2
    if n < 1:
        raise Unsupported("pooling needs N x C x spatial input")
    kernel = list(c.a["kernel_shape"])
    strides, dilations = list(c.a.get("strides", [1] * n)), list(c.a.get("dilations", [1] * n))
    begin, end = _pads(c, list(x.shape[2:]), kernel, strides, dilations)
    return kernel, strides, dilations, begin, end, bool(c.a.get("ceil_mode", 0))


@implements("MaxPool")
def _max_pool(c):
    import torch
    kernel, strides, dilations, begin, end, ceil = _pool_args(c)
    if c.a.get("storage_order", 0) and c.outputs > 1:
        raise Unsupported("indices in column-major order")
    win, dims = _windows(c.x, kernel, strides, dilations, begin, end, ceil, -math.inf)
    y = win.amax(dims)
    if c.outputs < 2:
        return y
    # the indices: each window's first maximum, as a position in the flattened input (ONNX's convention)
    x = c.x
    spatial = int(np.prod(x.shape[2:]))
    where = torch.arange(spatial, dtype=torch.float64).reshape((1, 1) + tuple(x.shape[2:])).expand(x.shape)
    pos, _ = _windows(where, kernel, strides, dilations, begin, end, ceil, -1.0)
    flat_win = win.flatten(-len(kernel))
    best = flat_win.argmax(-1, keepdim=True)
    index = pos.flatten(-len(kernel)).gather(-1, best).squeeze(-1).to(torch.int64)
    base = torch.arange(x.shape[1], dtype=torch.int64).reshape([1, -1] + [1] * len(kernel)) * spatial
    batch = torch.arange(x.shape[0], dtype=torch.int64).reshape([-1, 1] + [1] * len(kernel)) * (x.shape[1] *
                                                                                                 spatial)
    return y, index + base + batch


@implements("AveragePool")
def _avg_pool(c):
    import torch
    kernel, strides, dilations, begin, end, ceil = _pool_args(c)
    win, dims = _windows(c.x, kernel, strides, dilations, begin, end, ceil, 0.0)
    ones = torch.ones((1, 1) + tuple(c.x.shape[2:]), dtype=c.x.dtype)
    pad = 1.0 if c.a.get("count_include_pad", 0) else 0.0  # the padding may count, the ceil mode's reach never
    count, _ = _windows(ones, kernel, strides, dilations, begin, end, ceil, pad, reach_fill=0.0)
    return win.sum(dims) / count.sum(dims)


@implements("LpPool")
def _lp_pool(c):
    kernel, strides, dilations, begin, end, ceil = _pool_args(c)
    p = c.a.get("p", 2)
    win, dims = _windows(c.x, kernel, strides, dilations, begin, end, ceil, 0.0)
    return win.abs().pow(p).sum(dims).pow(1.0 / p)


@implements("GlobalAveragePool")
def _global_avg(c):
    return c.x.mean(tuple(range(2, c.x.dim())), keepdim=True)


@implements("GlobalMaxPool")
def _global_max(c):
    return c.x.amax(tuple(range(2, c.x.dim())), keepdim=True)


@implements("GlobalLpPool")
def _global_lp(c):
    p = c.a.get("p", 2)
    return c.x.abs().pow(p).sum(tuple(range(2, c.x.dim())), keepdim=True).pow(1.0 / p)


# ------------------------------------------------------------------ normalisation

@implements("BatchNormalization", buffers=(3, 4))
def _batch_norm(c):
    if c.a.get("training_mode", 0) or c.outputs > 1:
        raise Unsupported("batch normalisation in training mode (it normalises by the batch's own statistics "
                          "and updates the running ones): export in eval mode")
    x, scale, bias, mean, var = c.inputs[:5]
    shape = [1, -1] + [1] * (x.dim() - 2)
    inv = (var + c.a.get("epsilon", 1e-5)).rsqrt()
    return (x - mean.reshape(shape)) * (inv * scale).reshape(shape) + bias.reshape(shape)


@implements("InstanceNormalization")
def _instance_norm(c):
    import torch.nn.functional as F
    return F.instance_norm(c.x, weight=c.inputs[1], bias=c.inputs[2], eps=c.a.get("epsilon", 1e-5))


@implements("LayerNormalization")
def _layer_norm(c):
    x = c.x
    axis = _axis(c.a.get("axis", -1), x.dim())
    dims = tuple(range(axis, x.dim()))
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    inv = (centred.pow(2).mean(dims, keepdim=True) + c.a.get("epsilon", 1e-5)).rsqrt()
    y = centred * inv * c.inputs[1]
    if c.given(2) is not None:
        y = y + c.inputs[2]
    return (y, mean, inv)[:c.outputs] if c.outputs > 1 else y


@implements("GroupNormalization", since=18)
def _group_norm(c):
    x, scale, bias = c.x, c.inputs[1], c.inputs[2]
    groups = c.a["num_groups"]
    grouped = x.reshape(x.shape[0], groups, -1)
    mean = grouped.mean(-1, keepdim=True)
    var = (grouped - mean).pow(2).mean(-1, keepdim=True)
    y = ((grouped - mean) * (var + c.a.get("epsilon", 1e-5)).rsqrt()).reshape(x.shape)
    per = x.shape[1] // groups
    if c.opset < 21:  # one scale and bias per group
        scale, bias = scale.repeat_interleave(per), bias.repeat_interleave(per)
    shape = [1, -1] + [1] * (x.dim() - 2)
    return y * scale.reshape(shape) + bias.reshape(shape)


@implements("LRN")
def _lrn(c):
    import torch.nn.functional as F
    x, size = c.x, c.a["size"]
    square = x.pow(2).unsqueeze(1)  # the channels as a spatial dim of one plane
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    square = F.pad(square, [0, 0] * (x.dim() - 2) + [before, after])
    total = square.unfold(2, size, 1).sum(-1).squeeze(1)
    return x / (c.a.get("bias", 1.0) + c.a.get("alpha", 1e-4) / size * total).pow(c.a.get("beta", 0.75))


@implements("LpNormalization")
def _lp_norm(c):
    return c.x / c.x.norm(c.a.get("p", 2), _axis(c.a.get("axis", -1), c.x.dim()), keepdim=True)


@implements("MeanVarianceNormalization")
def _mvn(c):
    dims = tuple(_axis(a, c.x.dim()) for a in c.a.get("axes", [0, 2, 3]))
    centred = c.x - c.x.mean(dims, keepdim=True)
    return centred / (centred.pow(2).mean(dims, keepdim=True).sqrt() + 1e-9)


# ------------------------------------------------------------------ resizing

MAX_MATRIX = 1 << 26  # weights of one resized axis (output x input sizes): 512 MiB as float64


def _axis_weights(size: int, out: int, scale: float, c, roi) -> tuple[np.ndarray, np.ndarray | None]:
    """The (out x size) matrix that resizes one axis (the coordinate rule, the interpolation and its options of
    the node), and which outputs lie outside a crop (tf_crop_and_resize), or None."""
    ctm = _text(c.a.get("coordinate_transformation_mode", "half_pixel" if c.opset >= 11 else "asymmetric"))
    mode = c.a.get("mode", b"nearest")  # ONNX's own bytes ("linear" is a kind's id too, and not meant here)
    mode = mode.encode() if isinstance(mode, str) else mode
    if out * size > MAX_MATRIX:
        raise Unsupported(f"resizing an axis of {size} to {out} needs a {out} x {size} matrix, over the "
                          f"{MAX_MATRIX:,} values an exact resize may hold")
    y = np.arange(out, dtype=np.float64)
    width = scale * size
    outside = None
    if ctm == "align_corners":
        x = np.zeros(out) if width == 1 else y * (size - 1) / (width - 1)
    elif ctm == "asymmetric":
        x = y / scale
    elif ctm == "tf_crop_and_resize":
        lo, hi = roi
        x = np.full(out, (hi - lo) * (size - 1) / 2) if width == 1 else y * (hi - lo) * (size - 1) / (width - 1)
        x = x + lo * (size - 1)
        outside = (x < 0) | (x > size - 1)
    elif ctm == "pytorch_half_pixel":
        x = np.full(out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel_symmetric":
        x = size / 2 * (1 - out / width) + (y + 0.5) / scale - 0.5
    else:
        raise Unsupported(f"coordinate transformation {ctm!r}")
    whole = x == np.floor(x)
    left = np.where(whole, x - 1, np.floor(x)).astype(np.int64)  # the pixel on the left, as onnx prefers
    ratio = np.where(whole, 1.0, x - np.floor(x))
    antialias = bool(c.a.get("antialias", 0)) and scale < 1 and mode != b"nearest"
    a = c.a.get("cubic_coeff_a", -0.75)
    matrix = np.zeros((out, size))
    for o in range(out):
        r = ratio[o]
        if mode == b"nearest":
            nm = _text(c.a.get("nearest_mode", "round_prefer_floor"))
            if r == 1.0:
                coeffs = [0.0, 1.0]
            else:
                up = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5, "floor": False,
                      "ceil": True}.get(nm)
                if up is None:
                    raise Unsupported(f"nearest mode {nm!r}")
                coeffs = [float(not up), float(up)]
        elif mode == b"linear":
            coeffs = _linear_aa(r, scale) if antialias else [1 - r, r]
        elif mode == b"cubic":
            coeffs = _cubic_aa(r, scale, a) if antialias else _cubic(r, a)
        else:
            raise Unsupported(f"resize mode {_text(mode)!r}")
        coeffs = np.array(coeffs, dtype=np.float64)
        first = left[o] - len(coeffs) // 2 + 1
        index = np.arange(first, first + len(coeffs))
        if c.a.get("exclude_outside", 0):
            coeffs = np.where((index < 0) | (index >= size), 0.0, coeffs)
            coeffs = coeffs / coeffs.sum()
        for i, w in zip(np.clip(index, 0, size - 1), coeffs):
            matrix[o, i] += w
    if outside is not None:
        matrix[outside] = 0.0
    return matrix, outside


def _cubic_kernel(t: float, a: float) -> float:
    t = abs(t)
    if t <= 1:
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a if t < 2 else 0.0


def _cubic(r: float, a: float) -> list:
    return [_cubic_kernel(t, a) for t in (r + 1, r, 1 - r, 2 - r)]


def _cubic_aa(r: float, scale: float, a: float) -> list:
    start = int(np.floor(-2 / scale) + 1)
    coeffs = np.array([_cubic_kernel(scale * (i - r), a) for i in range(start, 2 - start)])
    return list(coeffs / coeffs.sum())


def _linear_aa(r: float, scale: float) -> list:
    start = int(np.floor(-1 / scale) + 1)
    args = (np.arange(start, 2 - start) - r) * scale
    coeffs = np.clip(1 - np.abs(args), 0, 1)
    return list(coeffs / coeffs.sum())


def _resize_plan(c, scales, sizes, roi):
    """Per axis: (axis, output size, scale) for the axes that change; ONNX's rules for sizes from scales and for
    keep_aspect_ratio_policy."""
    x = c.x
    rank = x.dim()
    axes = [_axis(a, rank) for a in (c.a.get("axes") or range(rank))]
    shape = [x.shape[a] if a else 1 for a in axes]  # the batch's size is not known: it must not change
    if sizes is not None and len(sizes):
        policy = _text(c.a.get("keep_aspect_ratio_policy", "stretch"))
        ratios = [o / i for o, i in zip(sizes, shape)]
        if policy == "stretch":
            plan = [(a, o, r) for a, o, r in zip(axes, sizes, ratios)]
        else:
            s = min(ratios[1:] if axes[0] == 0 else ratios) if policy == "not_larger" else \
                max(ratios[1:] if axes[0] == 0 else ratios)
            plan = [(a, int(s * i + 0.5) if a else 1, s if a else 1.0) for a, i in zip(axes, shape)]
    else:
        plan = [(a, int(s * i), float(s)) for a, s, i in zip(axes, scales, shape)]
    for a, o, s in plan:
        if a == 0 and (o != 1 or s != 1):
            raise Unsupported("resizing the batch dimension")
    rois = {}
    if roi is not None and len(roi):
        n = len(axes)
        rois = {a: (float(roi[i]), float(roi[n + i])) for i, a in enumerate(axes)}
    return [(a, o, s, rois.get(a, (0.0, 1.0))) for a, o, s in plan
            if a and not (s == 1 and o == x.shape[a] and rois.get(a, (0.0, 1.0)) == (0.0, 1.0))]


def _resize_apply(c, plan):
    import torch
    y = c.x
    mask = None
    value = c.a.get("extrapolation_value", 0.0)
    for axis, out, scale, roi in plan:
        matrix, outside = _axis_weights(y.shape[axis], out, scale, c, roi)
        moved = y.movedim(axis, -1)
        if ((matrix == 0) | (matrix == 1)).all() and (matrix.sum(1) == 1).all():  # nearest: pick, not mix
            picked = moved.index_select(-1, torch.from_numpy(matrix.argmax(1)))
        else:
            picked = moved @ torch.from_numpy(matrix.T.copy()).to(y.dtype)
        y = picked.movedim(-1, axis)
        if outside is not None and outside.any():
            shape = [1] * y.dim()
            shape[axis] = out
            m = torch.from_numpy(outside).reshape(shape)
            mask = m if mask is None else mask | m
    return y if mask is None else torch.where(mask, torch.full_like(y, value), y)


@implements("Resize", since=10, static=(1, 2, 3))
def _resize(c):
    if c.opset < 11:
        return _resize_apply(c, _resize_plan(c, c.given(1), None, None))
    return _resize_apply(c, _resize_plan(c, c.given(2), c.given(3), c.given(1)))


@implements("Upsample", static=(1,))
def _upsample(c):
    scales = c.given(1) if c.given(1) is not None else c.a.get("scales")
    mode = _text(c.a.get("mode", "nearest"))
    attrs = dict(c.a, coordinate_transformation_mode="asymmetric", mode=mode, nearest_mode="floor")
    call = Call(attrs, c.inputs, 10, c.outputs)
    return _resize_apply(call, _resize_plan(call, list(np.asarray(scales, dtype=np.float64)), None, None))
