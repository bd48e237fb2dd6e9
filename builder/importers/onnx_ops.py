"""What an ONNX operator computes, written with torch: the registry the ONNX importer's exact fallback reads
when no kind stands for a node (or its attributes are outside every kind's). ``(operator, first opset)`` -> an
implementation, onnx2torch's table as the model; :mod:`.onnx_opaque` runs it under ``torch.export`` and keeps the
ATen operators as a captured block, so these functions never run in a user's network themselves.

An implementation takes a :class:`Call`: the node's attributes, its inputs (network tensors and the file's
tensor constants as torch tensors; the inputs it lists as ``static`` as numpy arrays, read as numbers: shapes,
axes, pads, scales) and the file's opset. It returns the node's outputs (a tensor, or a tuple of them).
Sizes of a sample are plain numbers while it runs (the capture fixes them); only the batch is symbolic, so an
operator that mixes the batch with the other sizes fails the capture and is refused with the reason.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Impl:
    fn: object
    static: frozenset = frozenset()    # inputs read as numbers
    buffers: frozenset = frozenset()   # constant inputs kept as buffers (running statistics), not parameters


OPS: dict = {}  # op type -> [(first opset, Impl)], newest first


def implements(*ops: str, since: int = 1, static=(), buffers=()):
    def register(fn):
        for op in ops:
            entries = OPS.setdefault(op, [])
            if any(v == since for v, _ in entries):
                raise ValueError(f"{op} since opset {since} is implemented twice")
            entries.append((since, Impl(fn, frozenset(static), frozenset(buffers))))
            entries.sort(key=lambda e: -e[0])
        return fn
    return register


def implementation(op: str, opset: int):
    return next((impl for since, impl in OPS.get(op, ()) if since <= opset), None)


class Unsupported(Exception):
    """The node's attributes ask for what cannot be computed exactly here (said in the message); the capture
    reports it as the reason (``refusal``)."""
    refusal = True


class Call:
    def __init__(self, attrs: dict, inputs: list, opset: int, outputs: int):
        self.a, self.inputs, self.opset, self.outputs = attrs, inputs, opset, outputs

    @property
    def x(self):
        return self.inputs[0]

    def given(self, i: int):
        return self.inputs[i] if len(self.inputs) > i else None

    def ints(self, i: int, attr: str | None = None):
        """Static input ``i`` (or, in older opsets, attribute ``attr``) as a list of ints; None when absent."""
        v = self.given(i)
        if v is None and attr is not None:
            v = self.a.get(attr)
        return None if v is None else [int(e) for e in np.asarray(v).reshape(-1)]

    def number(self, i: int, default):
        v = self.given(i)
        return default if v is None or np.asarray(v).size == 0 else float(np.asarray(v).reshape(-1)[0])


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


# ------------------------------------------------------------------ elementwise

def _unary():
    import torch
    import torch.nn.functional as F
    table = {"Abs": torch.abs, "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt,
             "Reciprocal": torch.reciprocal, "Floor": torch.floor, "Ceil": torch.ceil, "Round": torch.round,
             "Sign": torch.sign, "Erf": torch.erf, "Sin": torch.sin, "Cos": torch.cos, "Tan": torch.tan,
             "Asin": torch.asin, "Acos": torch.acos, "Atan": torch.atan, "Sinh": torch.sinh, "Cosh": torch.cosh,
             "Asinh": torch.asinh, "Acosh": torch.acosh, "Atanh": torch.atanh, "Sigmoid": torch.sigmoid,
             "Tanh": torch.tanh, "Relu": torch.relu, "Softsign": F.softsign, "Not": torch.logical_not,
             "HardSwish": F.hardswish, "Mish": F.mish, "IsNaN": torch.isnan, "Identity": lambda t: t}
    for op, fn in table.items():
        implements(op)(lambda c, fn=fn: fn(c.x))


def _binary():
    import torch
    table = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow,
             "Equal": torch.eq, "Greater": torch.gt, "Less": torch.lt, "GreaterOrEqual": torch.ge,
             "LessOrEqual": torch.le, "And": torch.logical_and, "Or": torch.logical_or, "Xor": torch.logical_xor,
             "BitShift": None}
    for op, fn in table.items():
        if fn is not None:
            implements(op)(lambda c, fn=fn: fn(c.inputs[0], c.inputs[1]))
    for op, fn in {"Max": torch.maximum, "Min": torch.minimum, "Sum": torch.add}.items():
        implements(op)(lambda c, fn=fn: functools.reduce(fn, c.inputs))


_unary()
_binary()


@implements("Mean")
def _mean(c):
    import torch
    return functools.reduce(torch.add, c.inputs) / len(c.inputs)


@implements("Mod")
def _mod(c):
    import torch
    return (torch.fmod if c.a.get("fmod", 0) else torch.remainder)(c.inputs[0], c.inputs[1])


@implements("Where")
def _where(c):
    import torch
    return torch.where(c.inputs[0].bool(), c.inputs[1], c.inputs[2])


@implements("LeakyRelu")
def _leaky(c):
    import torch.nn.functional as F
    return F.leaky_relu(c.x, c.a.get("alpha", 0.01))


@implements("Elu")
def _elu(c):
    import torch.nn.functional as F
    return F.elu(c.x, c.a.get("alpha", 1.0))


@implements("Celu")
def _celu(c):
    import torch.nn.functional as F
    return F.celu(c.x, c.a.get("alpha", 1.0))


@implements("Selu")
def _selu(c):
    import torch
    alpha, gamma = c.a.get("alpha", 1.67326319217681884765625), c.a.get("gamma", 1.05070102214813232421875)
    return gamma * torch.where(c.x > 0, c.x, alpha * torch.expm1(c.x))


@implements("ThresholdedRelu")
def _thresholded(c):
    import torch
    return torch.where(c.x > c.a.get("alpha", 1.0), c.x, torch.zeros_like(c.x))


@implements("HardSigmoid")
def _hard_sigmoid(c):
    return (c.a.get("alpha", 0.2) * c.x + c.a.get("beta", 0.5)).clamp(0, 1)


@implements("Softplus")
def _softplus(c):
    import torch
    return torch.log1p(torch.exp(-c.x.abs())) + c.x.clamp(min=0)


@implements("Gelu")
def _gelu(c):
    import torch.nn.functional as F
    approximate = c.a.get("approximate", "none")
    return F.gelu(c.x, approximate=approximate.decode() if isinstance(approximate, bytes) else approximate)


@implements("Shrink")
def _shrink(c):
    import torch
    bias, lambd = c.a.get("bias", 0.0), c.a.get("lambd", 0.5)
    return torch.where(c.x < -lambd, c.x + bias, torch.where(c.x > lambd, c.x - bias, torch.zeros_like(c.x)))


@implements("PRelu")
def _prelu(c):
    import torch
    return torch.where(c.x < 0, c.x * c.inputs[1], c.x)


@implements("Clip")
def _clip_attrs(c):
    return c.x.clamp(c.a.get("min", -math.inf), c.a.get("max", math.inf))


@implements("Clip", since=11, static=(1, 2))
def _clip(c):
    return c.x.clamp(c.number(1, -math.inf), c.number(2, math.inf))


@implements("Cast")
def _cast(c):
    import torch
    from onnx import helper
    dtype = helper.tensor_dtype_to_np_dtype(c.a["to"])
    return c.x.to(torch.from_numpy(np.zeros(0, dtype=dtype)).dtype)


@implements("Dropout", static=(1, 2))
def _dropout(c):
    import torch
    training = c.given(2) is not None and bool(np.asarray(c.given(2)).reshape(-1)[0])
    if training and c.number(1, c.a.get("ratio", 0.5)) > 0:
        raise Unsupported("dropout in training mode draws random numbers: export in eval mode")
    return (c.x, torch.ones_like(c.x, dtype=torch.bool)) if c.outputs > 1 else c.x


# ------------------------------------------------------------------ softmax and friends

def _over(c, fn):
    """Softmax-like ``fn`` along the node's axis; before opset 13, over the flattened dims from the axis on."""
    rank = c.x.dim()
    if c.opset < 13:
        axis = _axis(c.a.get("axis", 1), rank)
        flat = c.x.flatten(axis) if axis < rank - 1 else c.x
        return fn(flat, -1).reshape(c.x.shape)
    return fn(c.x, _axis(c.a.get("axis", -1), rank))


@implements("Softmax")
def _softmax(c):
    import torch
    return _over(c, lambda t, d: torch.softmax(t, d))


@implements("LogSoftmax")
def _log_softmax(c):
    import torch
    return _over(c, lambda t, d: torch.log_softmax(t, d))


@implements("Hardmax")
def _hardmax(c):
    import torch.nn.functional as F

    def hard(t, d):
        return F.one_hot(t.argmax(d), t.shape[d]).to(t.dtype).movedim(-1, d)
    return _over(c, hard)


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
    v = c.a.get("auto_pad", "NOTSET")
    return v.decode() if isinstance(v, bytes) else v


def _pads(c, sizes, kernel, strides, dilations) -> tuple[list, list]:
    n = len(sizes)
    mode = _auto_pad(c)
    if mode == "VALID":
        return [0] * n, [0] * n
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        return _same_pads(mode, sizes, kernel, strides, dilations)
    pads = list(c.a.get("pads", [0] * 2 * n))
    return pads[:n], pads[n:]


def _pad_flat(begin, end) -> list:
    """F.pad's order (the last dim first) from per-dim begin and end pads."""
    out = []
    for b, e in zip(reversed(begin), reversed(end)):
        out += [b, e]
    return out


@implements("Conv")
def _conv(c):
    import torch.nn.functional as F
    x, w, b = c.x, c.inputs[1], c.given(2)
    n = x.dim() - 2
    if not 1 <= n <= 3:
        raise Unsupported(f"a {n}-D convolution")
    kernel = list(c.a.get("kernel_shape", w.shape[2:]))
    strides, dilations = list(c.a.get("strides", [1] * n)), list(c.a.get("dilations", [1] * n))
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
    x, w, b = c.x, c.inputs[1], c.given(2)
    n = x.dim() - 2
    if not 1 <= n <= 3:
        raise Unsupported(f"a {n}-D transposed convolution")
    sizes = list(x.shape[2:])
    kernel = list(c.a.get("kernel_shape", w.shape[2:]))
    strides, dilations = list(c.a.get("strides", [1] * n)), list(c.a.get("dilations", [1] * n))
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


def _windows(x, kernel, strides, dilations, begin, end, ceil: bool, fill: float):
    """Every pooling window of ``x`` (N x C x spatial), as N x C x out... x kernel..., ONNX's rules for the
    output size; the padding and the ceil mode's extra reach hold ``fill``."""
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
    x = F.pad(x, _pad_flat(begin, [e + x_ for e, x_ in zip(end, extra)]), value=fill)
    for i, (k, s, d) in enumerate(zip(kernel, strides, dilations)):
        x = x.unfold(2 + i, (k - 1) * d + 1, s)[..., ::d]
    return x, extra, tuple(range(-n, 0))


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
    win, _, dims = _windows(c.x, kernel, strides, dilations, begin, end, ceil, -math.inf)
    y = win.amax(dims)
    if c.outputs < 2:
        return y
    # the indices: each window's first maximum, as a position in the flattened input (ONNX's convention)
    x = c.x
    spatial = int(np.prod(x.shape[2:]))
    where = torch.arange(spatial, dtype=torch.float64).reshape((1, 1) + tuple(x.shape[2:])).expand(x.shape)
    pos, _, _ = _windows(where, kernel, strides, dilations, begin, end, ceil, -1.0)
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
    win, extra, dims = _windows(c.x, kernel, strides, dilations, begin, end, ceil, 0.0)
    total = win.sum(dims)
    ones = torch.ones((1, 1) + tuple(c.x.shape[2:]), dtype=c.x.dtype)
    if c.a.get("count_include_pad", 0):  # the padding counts, the ceil mode's extra reach does not
        import torch.nn.functional as F
        ones = F.pad(ones, _pad_flat(begin, end), value=1.0)
        begin, end = [0] * len(kernel), [0] * len(kernel)
    count, _, _ = _windows(ones, kernel, strides, dilations, begin, [e for e in end], ceil, 0.0)
    return total / count.sum(dims)


@implements("LpPool")
def _lp_pool(c):
    kernel, strides, dilations, begin, end, ceil = _pool_args(c)
    p = c.a.get("p", 2)
    win, _, dims = _windows(c.x, kernel, strides, dilations, begin, end, ceil, 0.0)
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


# ------------------------------------------------------------------ linear algebra

@implements("Gemm")
def _gemm(c):
    a, b, bias = c.inputs[0], c.inputs[1], c.given(2)
    a = a.t() if c.a.get("transA", 0) else a
    b = b.t() if c.a.get("transB", 0) else b
    y = c.a.get("alpha", 1.0) * (a @ b)
    return y if bias is None else y + c.a.get("beta", 1.0) * bias


@implements("MatMul")
def _matmul(c):
    return c.inputs[0] @ c.inputs[1]


@implements("Einsum")
def _einsum(c):
    import torch
    eq = c.a["equation"]
    return torch.einsum(eq.decode() if isinstance(eq, bytes) else eq, *c.inputs)


# ------------------------------------------------------------------ layout

def _sample_axis(axis: int, rank: int, what: str) -> int:
    axis = _axis(axis, rank)
    if axis == 0:
        raise Unsupported(f"{what} along the batch dimension")
    return axis


@implements("Flatten")
def _flatten(c):
    axis = _axis(c.a.get("axis", 1), c.x.dim())
    if axis == 0:
        return c.x.reshape(1, -1)
    return c.x.flatten(axis).flatten(0, axis - 1) if axis > 1 else c.x.flatten(1)


@implements("Reshape", static=(1,))
def _reshape_attr(c):
    shape = c.ints(1, "shape")
    allow_zero = c.a.get("allowzero", 0)
    target = [c.x.shape[i] if s == 0 and not allow_zero else s for i, s in enumerate(shape)]
    return c.x.reshape(target)


@implements("Transpose")
def _transpose(c):
    return c.x.permute(list(c.a.get("perm", range(c.x.dim() - 1, -1, -1))))


@implements("Squeeze", static=(1,))
def _squeeze(c):
    axes = c.ints(1, "axes")
    if not axes:
        raise Unsupported("a squeeze without axes drops the batch dimension of a batch of one")
    return c.x.squeeze(tuple(_axis(a, c.x.dim()) for a in axes))


@implements("Unsqueeze", static=(1,))
def _unsqueeze(c):
    axes = c.ints(1, "axes")
    rank = c.x.dim() + len(axes)
    y = c.x
    for a in sorted(_axis(a, rank) for a in axes):
        y = y.unsqueeze(a)
    return y


@implements("Concat")
def _concat(c):
    import torch
    return torch.cat([t for t in c.inputs if t is not None], _axis(c.a["axis"], c.x.dim()))


@implements("Split", static=(1,))
def _split(c):
    x = c.x
    axis = _axis(c.a.get("axis", 0), x.dim())
    sizes = c.ints(1, "split")
    if not sizes:
        parts = c.a.get("num_outputs", c.outputs)
        step = math.ceil(x.shape[axis] / parts)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(parts)]
    return tuple(x.split(sizes, axis))


@implements("Slice", static=(1, 2, 3, 4))
def _slice(c):
    import torch
    x = c.x
    if c.opset < 10:
        starts, ends, axes, steps = c.a["starts"], c.a["ends"], c.a.get("axes"), None
    else:
        starts, ends, axes, steps = c.ints(1), c.ints(2), c.ints(3), c.ints(4)
    axes = list(axes) if axes is not None else list(range(len(starts)))
    steps = steps or [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _sample_axis(axis, x.dim(), "a slice")
        size = x.shape[axis]
        if step > 0:
            lo, hi = min(max(start + size if start < 0 else start, 0), size), \
                min(max(end + size if end < 0 else end, 0), size)
        else:
            lo, hi = min(max(start + size if start < 0 else start, 0), size - 1), \
                min(max(end + size if end < 0 else end, -1), size - 1)
        index = torch.tensor(list(range(lo, hi, step)), dtype=torch.int64)
        x = x.index_select(axis, index)
    return x


def _edge_index(size: int, begin: int, end: int, mode: str) -> list:
    out = []
    for i in range(-begin, size + end):
        if mode == "edge":
            out.append(min(max(i, 0), size - 1))
        elif mode == "wrap":
            out.append(i % size)
        else:  # reflect, without repeating the edge
            period = 2 * (size - 1) or 1
            j = i % period
            out.append(j if j < size else period - j)
    return out


@implements("Pad", static=(1, 2, 3))
def _pad(c):
    import torch
    import torch.nn.functional as F
    x = c.x
    mode = c.a.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = c.ints(1, "pads")
    value = c.number(2, c.a.get("value", 0.0))
    axes = [_axis(a, x.dim()) for a in (c.ints(3) or range(x.dim()))]
    n = len(axes)
    begin, end = [0] * x.dim(), [0] * x.dim()
    for a, b, e in zip(axes, pads[:n], pads[n:]):
        begin[a], end[a] = b, e
    if begin[0] or end[0]:
        raise Unsupported("padding along the batch dimension")
    if mode == "constant":
        return F.pad(x, _pad_flat(begin[1:], end[1:]), value=value)
    for a in range(1, x.dim()):
        if begin[a] < 0 or end[a] < 0:  # crop first
            x = x.narrow(a, max(-begin[a], 0), x.shape[a] - max(-begin[a], 0) - max(-end[a], 0))
        b, e = max(begin[a], 0), max(end[a], 0)
        if b or e:
            x = x.index_select(a, torch.tensor(_edge_index(x.shape[a], b, e, mode), dtype=torch.int64))
    return x


@implements("DepthToSpace")
def _depth_to_space(c):
    x, b = c.x, c.a["blocksize"]
    n, ch, h, w = x.shape
    mode = c.a.get("mode", "DCR")
    if (mode.decode() if isinstance(mode, bytes) else mode) == "CRD":
        y = x.reshape(n, ch // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, b, b, ch // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, ch // (b * b), h * b, w * b)


@implements("SpaceToDepth")
def _space_to_depth(c):
    x, b = c.x, c.a["blocksize"]
    n, ch, h, w = x.shape
    y = x.reshape(n, ch, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, ch * b * b, h // b, w // b)


@implements("Expand", static=(1,))
def _expand(c):
    shape = c.ints(1)
    x = c.x
    rank = max(len(shape), x.dim())
    have = [1] * (rank - x.dim()) + list(x.shape)
    want = [1] * (rank - len(shape)) + shape
    return x.expand([h if w == 1 else w for h, w in zip(have, want)])


@implements("Tile", static=(1,))
def _tile(c):
    return c.x.repeat(c.ints(1))


@implements("Gather")
def _gather(c):
    import torch
    x, index = c.inputs[0], c.inputs[1]
    axis = _axis(c.a.get("axis", 0), x.dim())
    index = index.to(torch.int64)
    index = torch.where(index < 0, index + x.shape[axis], index)
    picked = x.index_select(axis, index.reshape(-1))
    return picked.reshape(tuple(x.shape[:axis]) + tuple(index.shape) + tuple(x.shape[axis + 1:]))


@implements("CumSum", static=(1,))
def _cumsum(c):
    import torch
    axis = _axis(c.ints(1)[0], c.x.dim())
    x = c.x.flip(axis) if c.a.get("reverse", 0) else c.x
    y = x.cumsum(axis)
    if c.a.get("exclusive", 0):
        y = y - x
    return y.flip(axis) if c.a.get("reverse", 0) else y


# ------------------------------------------------------------------ reductions

def _reduce(fn, axes_input_since: int):
    def reduce(c):
        x = c.x
        axes = c.ints(1) if c.opset >= axes_input_since else c.a.get("axes")
        if not axes:
            if c.a.get("noop_with_empty_axes", 0):
                return x
            axes = range(x.dim())
        dims = tuple(sorted(_axis(a, x.dim()) for a in axes))
        return fn(x, dims, bool(c.a.get("keepdims", 1)))
    return reduce


def _prod(x, dims, keep):
    for d in reversed(dims):
        x = x.prod(d, keepdim=keep)
    return x


def _reductions():
    import torch
    table = {"ReduceSum": (lambda x, d, k: x.sum(d, keepdim=k), 13),
             "ReduceMean": (lambda x, d, k: x.mean(d, keepdim=k), 18),
             "ReduceMax": (lambda x, d, k: x.amax(d, keepdim=k), 18),
             "ReduceMin": (lambda x, d, k: x.amin(d, keepdim=k), 18),
             "ReduceProd": (_prod, 18),
             "ReduceL1": (lambda x, d, k: x.abs().sum(d, keepdim=k), 18),
             "ReduceL2": (lambda x, d, k: x.pow(2).sum(d, keepdim=k).sqrt(), 18),
             "ReduceLogSum": (lambda x, d, k: x.sum(d, keepdim=k).log(), 18),
             "ReduceLogSumExp": (lambda x, d, k: torch.logsumexp(x, d, keepdim=k), 18),
             "ReduceSumSquare": (lambda x, d, k: x.pow(2).sum(d, keepdim=k), 18)}
    for op, (fn, since) in table.items():
        implements(op, static=(1,))(_reduce(fn, since))


_reductions()


def _arg(fn_name: str):
    def arg(c):
        x = c.x
        axis = _axis(c.a.get("axis", 0), x.dim())
        keep = bool(c.a.get("keepdims", 1))
        if c.a.get("select_last_index", 0):
            i = getattr(x.flip(axis), fn_name)(axis, keepdim=keep)
            return x.shape[axis] - 1 - i
        return getattr(x, fn_name)(axis, keepdim=keep)
    return arg


implements("ArgMax")(_arg("argmax"))
implements("ArgMin")(_arg("argmin"))


# ------------------------------------------------------------------ resizing

def _axis_weights(size: int, out: int, scale: float, c, roi) -> tuple[np.ndarray, np.ndarray | None]:
    """The (out x size) matrix that resizes one axis (the coordinate rule, the interpolation and its options of
    the node), and which outputs lie outside a crop (tf_crop_and_resize), or None."""
    ctm = _text(c.a.get("coordinate_transformation_mode", "half_pixel" if c.opset >= 11 else "asymmetric"))
    mode = _text(c.a.get("mode", "nearest"))
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
    antialias = bool(c.a.get("antialias", 0)) and scale < 1 and mode != "nearest"
    a = c.a.get("cubic_coeff_a", -0.75)
    matrix = np.zeros((out, size))
    for o in range(out):
        r = ratio[o]
        if mode == "nearest":
            nm = _text(c.a.get("nearest_mode", "round_prefer_floor"))
            if r == 1.0:
                coeffs = [0.0, 1.0]
            else:
                up = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5, "floor": False,
                      "ceil": True}.get(nm)
                if up is None:
                    raise Unsupported(f"nearest mode {nm!r}")
                coeffs = [float(not up), float(up)]
        elif mode == "linear":
            coeffs = _linear_aa(r, scale) if antialias else [1 - r, r]
        elif mode == "cubic":
            coeffs = _cubic_aa(r, scale, a) if antialias else _cubic(r, a)
        else:
            raise Unsupported(f"resize mode {mode!r}")
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


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


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


__all__ = ["OPS", "Call", "Impl", "Unsupported", "implementation", "implements"]
