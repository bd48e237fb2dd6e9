"""ONNX operators on tensors of any layout, written with torch (:mod:`.onnx_ops` is the registry): elementwise
arithmetic and activations, softmax, linear algebra, reshaping and indexing, reductions."""
from __future__ import annotations

import functools
import math

import numpy as np

from .onnx_ops import Unsupported, _axis, _pad_flat, _text, implements


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
    return F.gelu(c.x, approximate=_text(c.a.get("approximate", "none")))


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
    return torch.einsum(_text(c.a["equation"]), *c.inputs)


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
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise Unsupported(f"starts {list(starts)}, ends {list(ends)}, axes {axes} and steps {steps} do not make "
                          "slices")
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
    mode = _text(c.a.get("mode", "constant"))
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
    if _text(c.a.get("mode", "DCR")) == "CRD":
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
