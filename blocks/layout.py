"""A tensor's layout and its reductions, for the models that leave N x C x H x W (attention, channels-last
sections, squeeze-and-excitation written by hand): permute (ONNX Transpose), reshape (view, squeeze,
unsqueeze; ONNX Reshape, Squeeze, Unsqueeze), reductions over any axes (mean, sum, max, min; ONNX's Reduce*) and
layer normalisation over the last axes. The batch dimension never moves: axes count it as 0, as torch does."""
from __future__ import annotations

import math

import numpy as np

from .imports import BATCH, Chain, FromOnnx, FromTorch, Made
from .spec import BlockError, BlockSpec, Cost, Param, ParamError, Sizes, TorchCall, fmt_shape, register

ZERO = Cost(0, 0)
MAX_RANK = 5  # sizes a sample may have (C, D, H, W and one more)


def _ints(low: int, name: str, lo: int = 1, hi: int = MAX_RANK):
    def check(value, param=name):
        if not isinstance(value, (list, tuple)) or not lo <= len(value) <= hi or \
                not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= 1 << 20 for v in value):
            raise ParamError(f"{param}: {value!r} is not a list of {lo} to {hi} whole numbers from {low}")
        return [int(v) for v in value]
    return check


def _listed(v) -> str:
    return ", ".join(map(str, v))


# ------------------------------------------------------------------------------------------------ permute

def _permute_shape(p, ins):
    dims = p["dims"]
    if sorted(dims) != list(range(1, len(ins[0]) + 1)):
        raise BlockError(f"permute to ({_listed(dims)}) is no order of the dims 1..{len(ins[0])} of a batch of "
                         f"{fmt_shape(ins[0])}", "shape")
    return tuple(ins[0][d - 1] for d in dims)


def _permute_call(c):
    x = c.tensors[0] if c.tensors else None
    shape = c.shape(x) if x is not None else None
    if shape is None:
        return "permute of a value of unknown shape"
    rank = len(shape) + 1
    if c.name.endswith("transpose"):
        a, b = c.opt(1, "dim0") % rank, c.opt(2, "dim1") % rank
        order = list(range(rank))
        order[a], order[b] = order[b], order[a]
    else:
        order = c.args[1] if len(c.args) == 2 and isinstance(c.args[1], (list, tuple)) else c.args[1:]
        order = [int(d) % rank for d in order]
    if order[0] != 0:
        return "a permute that moves the batch dimension has no block"
    return Made(dict(dims=order[1:]), [x])


def _transpose_from_onnx(n):
    rank = len(n.shape(n.x(0))) + 1
    perm = [int(v) for v in n.attrs.get("perm", list(range(rank))[::-1])]
    if perm[0] != 0:
        n.refuse("a transpose that moves the batch dimension has no block")
    return dict(dims=perm[1:])


register(BlockSpec(
    "permute", "Permute", "Reshape",
    params=(Param("dims", "data", [1, 3, 2], "The new order of the dims (1 is the first after the batch)",
                  check=_ints(1, "dims"), describe=lambda v: f"({_listed(v)})"),),
    shape=_permute_shape, cost=lambda p, ins, out: ZERO, summary=lambda p: f"({_listed(p['dims'])})",
    torch=TorchCall("Permute", lambda p, i, o: [(None, Sizes([0] + list(p["dims"])), None)]), alias="view", in_table=False,
    from_torch=FromTorch(functions=("Tensor.permute", "torch.permute", "Tensor.transpose", "torch.transpose"),
                         call=_permute_call),
    from_onnx=(FromOnnx("Transpose", _transpose_from_onnx),), in_palette=False,
    description="Reorders the dims of each sample (a channels-last section: (2, 3, 1))."))


# ------------------------------------------------------------------------------------------------ reshape

def _reshape_shape(p, ins):
    if math.prod(p["shape"]) != math.prod(ins[0]):
        raise BlockError(f"reshape of {fmt_shape(ins[0])} ({math.prod(ins[0])} values) to {fmt_shape(p['shape'])} "
                         f"({math.prod(p['shape'])})", "shape")
    return tuple(p["shape"])


def _target(shape_in, target) -> list | None:
    """A target shape without the batch dimension, or None when the target does not keep the batch: its first
    size is the batch's (``x.size(0)``; ONNX's 0, a copy) or -1 with every other size given; ONNX's 0 elsewhere
    copies that size, one -1 elsewhere takes what is left."""
    target = list(target)
    if len(target) < 2:
        return None
    first, rest = target[0], target[1:]
    rest = [shape_in[i] if isinstance(v, int) and v == 0 and i < len(shape_in) else v for i, v in enumerate(rest)]
    if any(v is BATCH or not isinstance(v, int) for v in rest) or sum(1 for v in rest if v == -1) > 1:
        return None
    if not (first is BATCH or first == 0 or (first == -1 and -1 not in rest)):
        return None
    if -1 in rest:
        known = math.prod(v for v in rest if v != -1)
        if not known or math.prod(shape_in) % known:
            return None
        rest[rest.index(-1)] = math.prod(shape_in) // known
    return rest if min(rest) >= 1 and math.prod(rest) == math.prod(shape_in) else None


def reshape_call(c):
    """``x.view(x.size(0), ...)``, ``x.reshape(...)``, ``x.squeeze(d)``, ``x.unsqueeze(d)``: a reshape that keeps
    the batch dimension (a Made of the reshape kind), or why not."""
    x = c.tensors[0] if c.tensors else None
    shape = c.shape(x) if x is not None else None
    if shape is None:
        return "reshape of a value of unknown shape"
    name = c.name.rsplit(".", 1)[-1]
    if name in ("squeeze", "unsqueeze"):
        dim = c.opt(1, "dim")
        rank = len(shape) + 1 + (name == "unsqueeze")
        out = list(shape)
        if dim is None:  # every size-1 dim: the batch's too when the batch is one
            return f"{name} without a dim has no block (of a batch of one it would drop the batch dimension)"
        if isinstance(dim, int) and -rank <= dim < rank and dim % rank != 0:
            d = dim % rank - 1
            out = out[:d] + [1] + out[d:] if name == "unsqueeze" else (out[:d] + out[d + 1:] if out[d] == 1 else out)
        else:
            return f"{name} of the batch dimension has no block"
    else:
        target = list(c.args[1]) if len(c.args) == 2 and isinstance(c.args[1], (list, tuple)) else list(c.args[1:])
        out = _target(shape, target)
        if out is None:
            return f"{name} to {target} has no block (it would mix the samples of a batch)"
    if not 1 <= len(out) <= MAX_RANK:
        return f"{name} to {len(out)} dims per sample has no block"
    return Made(dict(shape=out), [x], "reshape")


def reshape_from_onnx(n):
    """ONNX Reshape (a target whose first size is the batch: 0, -1 or 1 for a batch of one), Squeeze and
    Unsqueeze of axes other than the batch's."""
    shape = list(n.shape(n.x(0)))
    op = n.node.op_type
    if op == "Reshape":
        given = [int(v) for v in n.const(1)]
        target = [0] + given[1:] if given and given[0] == 1 else given  # a batch of one (x.size(0), folded)
        out = _target(shape, target)
        if out is None:
            n.refuse(f"reshape to {given} (the batch's size first, 0, -1 or 1, and the sizes of one sample)")
    else:
        axes = n.attrs.get("axes")
        if axes is None and len(n.node.input) > 1 and n.node.input[1]:
            axes = [int(v) for v in n.const(1)]
        if not axes:  # every size-1 dim: the batch's too when the batch is one
            n.refuse(f"{op.lower()} without axes (of a batch of one it would drop the batch dimension)")
        rank = len(shape) + 1 + (len(axes) if op == "Unsqueeze" else 0)
        if any(not -rank <= int(a) < rank for a in axes):
            n.refuse(f"{op.lower()} of axes {list(axes)}, out of range for {rank} dims")
        axes = sorted(int(a) % rank for a in axes)
        if 0 in axes:
            n.refuse(f"{op.lower()} of the batch dimension has no block")
        out = list(shape)
        if op == "Squeeze":
            out = [d for i, d in enumerate(shape) if (i + 1 not in axes if axes else d != 1)]
        else:
            for a in axes:
                out.insert(a - 1, 1)
    if not 1 <= len(out) <= MAX_RANK:
        n.refuse(f"{len(out)} dims per sample")
    return Made(dict(shape=out), [n.x(0)], "reshape")


register(BlockSpec(
    "reshape", "Reshape", "Reshape",
    params=(Param("shape", "data", [1, 4, 15, 15], "The sizes of each sample (the batch dimension kept)",
                  check=_ints(1, "shape"), describe=lambda v: "x".join(map(str, v))),),
    shape=_reshape_shape, cost=lambda p, ins, out: ZERO, summary=lambda p: "to " + "x".join(map(str, p["shape"])),
    torch=TorchCall("Reshape", lambda p, i, o: [(None, Sizes(p["shape"]), None)]), alias="view", in_table=False,
    from_torch=FromTorch(functions=("Tensor.squeeze", "torch.squeeze", "Tensor.unsqueeze", "torch.unsqueeze"),
                         call=reshape_call),
    from_onnx=(FromOnnx("Squeeze", reshape_from_onnx), FromOnnx("Unsqueeze", reshape_from_onnx)),
    in_palette=False, description="Each sample to new sizes, its values in order (a view)."))


# ------------------------------------------------------------------------------------------------ reduce

def _reduce_shape(p, ins):
    rank = len(ins[0]) + 1
    dims = sorted(d % rank for d in p["dims"])
    if not dims or 0 in dims or len(set(dims)) != len(dims):
        raise BlockError(f"a reduction over dims ({_listed(p['dims'])}) of a batch of {fmt_shape(ins[0])}: dims "
                         "1..rank-1, each once", "invalid")
    out = [1 if i + 1 in dims else d for i, d in enumerate(ins[0])] if p["keepdim"] else \
        [d for i, d in enumerate(ins[0]) if i + 1 not in dims]
    if not out:
        raise BlockError("a reduction over every dim leaves nothing per sample (keep the dims)", "invalid")
    return tuple(out)


def _onnx_axes(n):
    axes = n.attrs.get("axes")
    if axes is None and len(n.node.input) > 1 and n.node.input[1]:
        axes = [int(v) for v in n.const(1)]
    return [int(a) for a in axes or []]


def _global(kind: str, keep: bool):
    return Chain([(kind, dict(output_size=[1, 1]))] + ([] if keep else [("flatten", {})]))


def reduce_call(op, pool: str = ""):
    """A torch rule for ``x.mean(dims)``, ``x.sum(dims)``, ...: a reduction over those dims; over H and W of a
    C x H x W map, the global pool ``pool`` if given (then a flatten, unless the dims are kept)."""
    def rule(c):
        x = c.tensors[0] if c.tensors else None
        dims, keep = c.opt(1, "dim"), bool(c.opt(2, "keepdim", False))
        if x is None or dims is None:
            return f"{op} over every dim has no block"
        dims = [int(d) for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
        shape = c.shape(x)
        if pool and shape is not None and len(shape) == 3 and sorted(d % 4 for d in dims) == [2, 3]:
            return _global(pool, keep)
        return Made(dict(op=op, dims=dims, keepdim=keep), [x], "reduce_axes")
    return rule


def reduce_from_onnx(op, pool: str = ""):
    """An ONNX rule for ReduceMean, ReduceMax, ...: as :func:`reduce_call` says."""
    def read(n):
        axes, keep = _onnx_axes(n), bool(int(n.attrs.get("keepdims", 1)))
        if not axes:
            n.refuse(f"{op} over every axis has no block")
        if pool and len(n.shape(n.x(0))) == 3 and sorted(a % 4 for a in axes) == [2, 3]:
            return _global(pool, keep)
        return Made(dict(op=op, dims=axes, keepdim=keep), [n.x(0)], "reduce_axes")
    return read


register(BlockSpec(
    "reduce_axes", "Reduce", "Pooling",
    params=(Param("op", "choice", "mean", "What each group of values becomes", choices=("mean", "sum", "max", "min")),
            Param("dims", "data", [2, 3], "The dims reduced (1 is the first after the batch)",
                  check=_ints(-MAX_RANK, "dims"), describe=lambda v: f"({_listed(v)})"),
            Param("keepdim", "bool", False, "Keep the reduced dims, as size 1")),
    shape=_reduce_shape, cost=lambda p, ins, out: ZERO,
    summary=lambda p: f"{p['op']} over ({_listed(p['dims'])})",
    torch=TorchCall("Reduce", lambda p, i, o: [(None, p["op"], None), (None, Sizes(p["dims"]), None),
                                              ("keepdim", p["keepdim"], False)]),
    from_torch=FromTorch(functions=("torch.sum", "Tensor.sum", "torch.amin", "Tensor.amin"),
                         call=lambda c: reduce_call("sum" if c.name.endswith("sum") else "min")(c)),
    from_onnx=(FromOnnx("ReduceSum", reduce_from_onnx("sum")), FromOnnx("ReduceMin", reduce_from_onnx("min"))),
    in_palette=False, in_table=False, description="The mean, sum, largest or smallest value over dims."))


# ------------------------------------------------------------------------------------------------ layer norm

def _norm_shape(p, ins):
    k = len(p["shape"])
    if tuple(ins[0][-k:]) != tuple(p["shape"]) or k > len(ins[0]):
        raise BlockError(f"a layer norm over {fmt_shape(p['shape'])} needs an input ending in those sizes, gets "
                         f"{fmt_shape(ins[0])}", "shape")
    return ins[0]


def _norm_from_torch(m):
    return dict(shape=list(m.normalized_shape), eps=float(m.eps), affine=bool(m.elementwise_affine),
                bias=m.bias is not None)


def _norm_call(c):
    shape = c.opt(1, "normalized_shape")
    if not isinstance(shape, (list, tuple)):
        return "a layer norm of an unknown shape"
    if c.opt(2, "weight") is not None or c.opt(3, "bias") is not None:
        return "a layer norm with tensors of the model's own (its module has a block)"
    return Made(dict(shape=list(shape), eps=float(c.opt(4, "eps", 1e-5)), affine=False, bias=False),
                [c.tensors[0]], "layernorm")


def _norm_from_onnx(n):
    shape = list(n.shape(n.x(0)))
    axis = int(n.attrs.get("axis", -1)) % (len(shape) + 1)
    if axis == 0:
        n.refuse("a layer norm over the batch dimension has no block")
    normalized = shape[axis - 1:]
    scale = np.asarray(n.const(1), np.float32)
    bias = n.const(2) if len(n.node.input) > 2 and n.node.input[2] else None
    if list(scale.shape) != normalized and scale.size != math.prod(normalized):
        n.refuse(f"a scale of shape {list(scale.shape)} for sizes {normalized}")
    n.weights.update(weight=scale.reshape(normalized))
    if bias is not None:
        n.weights.update(bias=np.asarray(bias, np.float32).reshape(normalized))
    return dict(shape=normalized, eps=float(n.attrs.get("epsilon", 1e-5)), affine=True, bias=bias is not None)


register(BlockSpec(
    "layernorm", "LayerNorm", "Normalisation", short="LN",
    params=(Param("shape", "data", [15], "The last sizes it normalises over", check=_ints(1, "shape"),
                  describe=lambda v: "x".join(map(str, v))),
            Param("eps", "float", 1e-5, "Added to the variance for stability", min=1e-12, max=1.0),
            Param("affine", "bool", True, "Learn a scale (and a shift) per normalised value"),
            Param("bias", "bool", True, "With the scale, learn a shift")),
    shape=_norm_shape,
    cost=lambda p, ins, out: Cost(math.prod(p["shape"]) * (1 + bool(p["bias"])) if p["affine"] else 0, 0),
    torch=TorchCall("nn.LayerNorm", lambda p, i, o: [(None, Sizes(p["shape"]), None), ("eps", float(p["eps"]), 1e-5),
                                                    ("elementwise_affine", p["affine"], True),
                                                    ("bias", p["bias"], True)]),
    from_torch=FromTorch(("torch.nn.LayerNorm",), _norm_from_torch, ("torch.nn.functional.layer_norm",), _norm_call),
    from_onnx=(FromOnnx("LayerNormalization", _norm_from_onnx),),
    keeps_width=True, in_palette=False, in_table=False,
    description="Normalises each sample over its last sizes (transformers' and ConvNeXt's channels-last norm)."))


# ------------------------------------------------------------------------------------------------ slice

END = 1 << 30  # "to the end" of a slice


def _slice_shape(p, ins):
    rank = len(ins[0]) + 1
    d = p["dim"]
    if not 1 <= d < rank:
        raise BlockError(f"a slice along dim {d} of a batch of {fmt_shape(ins[0])} (dims 1..{rank - 1})", "invalid")
    n = len(range(*slice(p["start"], p["stop"], p["step"]).indices(ins[0][d - 1])))
    if n < 1:
        raise BlockError(f"the slice {p['start']}:{p['stop']}:{p['step']} of {ins[0][d - 1]} positions is empty",
                         "invalid")
    return tuple(n if i == d - 1 else s for i, s in enumerate(ins[0]))


def _slices(shape, index):
    """``[(kind, params)]`` of ``x[index]`` for a tuple of slices (and an Ellipsis) that keeps the batch whole;
    None when the index is anything else."""
    index = index if isinstance(index, tuple) else (index,)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) + 1 - (len(index) - 1)) + index[at + 1:]
    if not index or len(index) > len(shape) + 1 or not all(isinstance(i, slice) for i in index) or \
            index[0] != slice(None):
        return None
    steps = []
    for d, s in enumerate(index[1:], start=1):
        if s == slice(None):
            continue
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (s.start, s.stop, s.step)) \
                or (s.step or 1) < 1:
            return None
        start, stop, step = s.start or 0, END if s.stop is None else s.stop, s.step or 1
        if d == 1 and step == 1:
            lo, hi, _ = slice(start, stop).indices(shape[0])
            steps.append(("channel_slice", dict(start=lo, stop=hi)))
        else:
            steps.append(("slice", dict(dim=d, start=start, stop=min(stop, END), step=step)))
    return steps or None


def _getitem_call(c):
    x = c.args[0]
    shape = c.shape(x) if c.tensors and c.tensors[0] == x else None
    steps = _slices(shape, c.args[1]) if shape is not None else None
    if not steps:
        return "indexing other than slices (the batch kept whole) has no block"
    if len(steps) > 1:
        return Chain(steps)  # x[:, 2:7, 1:-1:2]: one slice after the other
    kind, params = steps[0]
    return Made(params, [x], kind)


register(BlockSpec(
    "slice", "Slice", "Reshape",
    params=(Param("dim", "int", 2, "The dim sliced (1 is the first after the batch)", min=1, max=MAX_RANK),
            Param("start", "int", 0, "The first position (negative: from the end)", min=-END, max=END),
            Param("stop", "int", END, "One past the last position (negative: from the end)", min=-END, max=END),
            Param("step", "int", 1, "Every step-th position", min=1, max=1 << 20)),
    shape=_slice_shape, cost=lambda p, ins, out: ZERO,
    summary=lambda p: f"dim {p['dim']}: {p['start']}:{'' if p['stop'] >= END else p['stop']}"
                      f"{'' if p['step'] == 1 else ':' + str(p['step'])}",
    torch=TorchCall("Slice", lambda p, i, o: [(None, p["dim"], None), (None, p["start"], None),
                                             (None, p["stop"], None), ("step", p["step"], 1)]),
    from_torch=FromTorch(functions=("operator.getitem",), call=_getitem_call),
    alias="view", in_table=False, in_palette=False,
    description="Every step-th position from start to stop along one dim (a view: x[:, :, 2:-2])."))


def slice_from_onnx(n, shape):
    """ONNX's Slice of any axes but the batch's, as slices one after the other; None when it is not one."""
    starts, ends = n.const(1), n.const(2)
    axes = n.const(3) if len(n.node.input) > 3 and n.node.input[3] else list(range(len(starts)))
    steps = n.const(4) if len(n.node.input) > 4 and n.node.input[4] else [1] * len(starts)
    rank = len(shape) + 1
    index = [slice(None)] * rank
    for a, s, e, st in zip(axes, starts, ends, steps):
        a = int(a) % rank
        e = END if int(e) >= END else (-END if int(e) <= -END else int(e))
        index[a] = slice(int(s), e, int(st))
    return _slices(shape, tuple(index))


# ------------------------------------------------------------------------------------------------ concat

def _cat_shape(p, ins):
    rank = len(ins[0]) + 1
    d = p["dim"] % rank if -rank <= p["dim"] < rank else 0
    if d == 0 or any(len(s) != len(ins[0]) for s in ins):
        raise BlockError(f"a join along dim {p['dim']} of {', '.join(fmt_shape(s) for s in ins)} (dims 1..rank-1, "
                         "inputs of one rank)", "shape")
    if any(s[:d - 1] + s[d:] != ins[0][:d - 1] + ins[0][d:] for s in ins):
        raise BlockError(f"a join along dim {d} needs the other sizes equal: {', '.join(fmt_shape(s) for s in ins)}",
                         "shape_mismatch")
    return ins[0][:d - 1] + (sum(s[d - 1] for s in ins),) + ins[0][d:]


register(BlockSpec(
    "concat_axis", "Concat (any dim)", "Merge", ports=(), variadic=True, min_inputs=1,
    params=(Param("dim", "int", 2, "The dim joined along (1 is the channels': the Concat block)", min=-MAX_RANK,
                  max=MAX_RANK),),
    shape=_cat_shape, cost=lambda p, ins, out: ZERO, summary=lambda p: f"along dim {p['dim']}",
    torch=TorchCall("Cat", lambda p, i, o: [(None, p["dim"], None)]), in_table=False, in_palette=False,
    description="Joins its inputs along a dim other than the channels (a sequence's positions, a map's rows)."))
