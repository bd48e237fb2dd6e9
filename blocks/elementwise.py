"""Elementwise operations with constants, as imported models have them: a number (``x * 0.17`` in
Inception-ResNet's residual scaling, ``x / 6``), a range (``clamp``: ONNX's Clip, ``F.hardtanh``) and a learned
number per channel (ConvNeXt's layer scale; an ONNX file's per-channel constant)."""
from __future__ import annotations

import numpy as np

from .imports import FromOnnx, FromTorch, Made
from .spec import BlockError, BlockSpec, Cost, Param, TorchCall, fmt_shape, register

ZERO = Cost(0, 0)
OPS = ("add", "sub", "rsub", "mul", "div", "rdiv", "pow")
SIGN = {"add": "x + {}", "sub": "x - {}", "rsub": "{} - x", "mul": "x * {}", "div": "x / {}", "rdiv": "{} / x",
        "pow": "x ** {}"}
FLOAT_MAX = 3.4028234663852886e38  # float32's largest: a clamp without that bound
BINARY = ("sub", "div", "pow", "max", "min")


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def scalar_call(op: str):
    """A torch rule for ``x op number`` / ``number op x`` (``operator.sub``, ``torch.div``, ...); two tensors are
    the binary kind's."""
    def rule(c):
        a, b = c.opt(0, "input"), c.opt(1, "other")
        if len(c.tensors) == 2 and c.tensors == [a, b] and op in BINARY:
            return Made(dict(op=op), [a, b], "binary")
        if c.kwargs.get("alpha", 1) != 1 or c.kwargs.get("rounding_mode") is not None:
            return f"{op} with alpha or a rounding mode has no block"
        if c.tensors == [a] and _number(b):
            return Made(dict(op=op, value=float(b)), [a], "scalar_op")
        if c.tensors == [b] and _number(a):
            flipped = {"sub": "rsub", "div": "rdiv"}.get(op, op)
            if flipped == "pow":
                return "a number to the power of a tensor has no block"
            return Made(dict(op=flipped, value=float(a)), [b], "scalar_op")
        return f"{op} of {len(c.tensors)} tensors and constants has no block"
    return rule


def scalar_from_onnx(op: str):
    """An ONNX rule for Add/Sub/Mul/Div/Pow with one constant operand: one number, or one per channel (a
    ``C x 1 x 1`` constant: a learned per-channel scale or bias, its values the weights)."""
    def read(n):
        consts = [i for i in range(2) if n.is_constant(i)]
        if not consts and op in BINARY and len(n.node.input) == 2:
            return Made(dict(op=op), [n.x(0), n.x(1)], "binary")
        if len(consts) != 1:
            n.refuse("needs one tensor and one constant operand")
        value = np.asarray(n.const(consts[0]), dtype=np.float32)
        x = n.x(1 - consts[0])
        if value.size == 1:
            name = op if consts[0] == 1 else {"sub": "rsub", "div": "rdiv"}.get(op, op)
            if name == "pow" and consts[0] == 0:
                n.refuse("a number to the power of a tensor has no block")
            return Made(dict(op=name, value=float(value.reshape(()))), [x], "scalar_op")
        c = n.channels(x)
        if op in ("mul", "add") and value.size == c and value.squeeze().shape == (c,) and \
                value.ndim >= 3 and value.shape[-2:] == (1, 1):
            n.weights.update(weight=value.reshape(c, 1, 1))
            return Made(dict(op=op), [x], "channel_affine")
        n.refuse(f"with a constant of shape {list(value.shape)} (one number, or one per channel, has a block)")
    return read


register(BlockSpec(
    "scalar_op", "Constant operation", "Activation",
    params=(Param("op", "choice", "mul", "The operation: x + v, x - v, v - x, x * v, x / v, v / x, x ** v",
                  choices=OPS),
            Param("value", "float", 1.0, "The constant v")),
    shape=lambda p, ins: ins[0], cost=lambda p, ins, out: ZERO,
    summary=lambda p: SIGN[p["op"]].format(f"{p['value']:g}"),
    torch=TorchCall("ScalarOp", lambda p, i, o: [(None, p["op"], None), (None, float(p["value"]), None)]),
    keeps_width=True, in_table=False,
    from_torch=FromTorch(functions=("operator.sub", "torch.sub", "Tensor.sub", "operator.truediv", "torch.div",
                                    "Tensor.div", "operator.pow", "torch.pow", "Tensor.pow"),
                         call=lambda c: scalar_call({"sub": "sub", "truediv": "div", "div": "div", "pow": "pow"}
                                                    [c.name.rsplit(".", 1)[-1]])(c)),
    from_onnx=(FromOnnx("Sub", scalar_from_onnx("sub")), FromOnnx("Div", scalar_from_onnx("div")),
               FromOnnx("Pow", scalar_from_onnx("pow"))),
    description="The input and a constant number, elementwise (Inception-ResNet's residual scaling x * 0.17)."))


def _clamp_shape(p, ins):
    if p["low"] > p["high"]:
        raise BlockError(f"the range [{p['low']:g}, {p['high']:g}] is empty: low must not exceed high", "invalid")
    return ins[0]


def clamp_range(lo, hi):
    """The block for ``clamp(x, lo, hi)`` (None: no bound): ReLU, ReLU6 or a clamp."""
    if lo == 0 and hi is None:
        return "relu", {"inplace": False}
    if lo == 0 and hi == 6:
        return "relu6", {"inplace": False}
    return "clamp", {"low": -FLOAT_MAX if lo is None else float(lo), "high": FLOAT_MAX if hi is None else float(hi)}


def _clamp_call(c):
    lo, hi = c.opt(1, "min"), c.opt(2, "max")
    if c.name.endswith("hardtanh"):
        lo, hi = c.opt(1, "min_val", -1.0), c.opt(2, "max_val", 1.0)
    if not all(v is None or _number(v) for v in (lo, hi)) or (lo is None and hi is None):
        return "a clamp to tensors, or to no bound, has no block"
    kind, params = clamp_range(lo, hi)
    return Made(params, [c.tensors[0]], kind)


def _bound(v):
    return "none" if abs(v) >= FLOAT_MAX else f"{v:g}"


register(BlockSpec(
    "clamp", "Clamp", "Activation",
    params=(Param("low", "float", -1.0, "The smallest output (-3.4e38: none)", min=-FLOAT_MAX, max=FLOAT_MAX),
            Param("high", "float", 1.0, "The largest output (3.4e38: none)", min=-FLOAT_MAX, max=FLOAT_MAX)),
    shape=_clamp_shape, cost=lambda p, ins, out: ZERO,
    summary=lambda p: f"[{_bound(p['low'])}, {_bound(p['high'])}]",
    torch=TorchCall("nn.Hardtanh", lambda p, i, o: [("min_val", float(p["low"]), -1.0),
                                                   ("max_val", float(p["high"]), 1.0)]),
    keeps_width=True, in_table=False,
    from_torch=FromTorch(("torch.nn.Hardtanh",), lambda m: dict(low=m.min_val, high=m.max_val),
                         ("torch.clamp", "Tensor.clamp", "torch.clip", "Tensor.clip",
                          "torch.nn.functional.hardtanh"), _clamp_call),
    description="Limits every value to [low, high] (ONNX's Clip; ReLU and ReLU6 are its cases [0, none], [0, 6])."))


def _affine_shape(p, ins):
    if len(ins[0]) != 3:
        raise BlockError(f"a per-channel {p['op']} needs a CxHxW input, got {'x'.join(map(str, ins[0]))}", "shape")
    return ins[0]


register(BlockSpec(
    "channel_affine", "Per-channel scale", "Normalisation",
    params=(Param("op", "choice", "mul", "Multiply by (a layer scale) or add (a bias) a learned number per channel",
                  choices=("mul", "add")),),
    shape=_affine_shape, cost=lambda p, ins, out: Cost(out[0], 0),
    summary=lambda p: "x * w[c]" if p["op"] == "mul" else "x + b[c]",
    torch=TorchCall("ChannelAffine", lambda p, i, o: [(None, i, None), ("op", p["op"], "mul")]),
    keeps_width=True, in_table=False,
    description="A learned number per channel times (or plus) the map: ConvNeXt's layer scale."))


def _broadcast(p, ins):
    a, b = (tuple(s) for s in ins)
    if len(a) != len(b):
        raise BlockError(f"{p['op']} of {fmt_shape(a)} and {fmt_shape(b)}: the same number of dims is needed",
                         "shape")
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise BlockError(f"{p['op']} of {fmt_shape(a)} and {fmt_shape(b)}: sizes must match or be 1", "shape")
        out.append(max(x, y))
    return tuple(out)


def _minmax_call(c):
    if len(c.tensors) != 2:
        return f"{c.name.rsplit('.', 1)[-1]} of {len(c.tensors)} tensors has no block"
    return Made(dict(op="max" if "max" in c.name else "min"), c.tensors, "binary")


def _minmax_from_onnx(op):
    def read(n):
        if len(n.node.input) != 2 or any(n.is_constant(i) for i in range(2)):
            n.refuse(f"{op} of other than two tensors has no block")
        return Made(dict(op=op), [n.x(0), n.x(1)])
    return read


register(BlockSpec(
    "binary", "Elementwise (two tensors)", "Merge", ports=("a", "b"), min_inputs=2,
    params=(Param("op", "choice", "sub", "a - b, a / b, a ** b, the larger or the smaller", choices=BINARY),),
    shape=_broadcast, cost=lambda p, ins, out: ZERO, in_table=False,
    summary=lambda p: {"sub": "a - b", "div": "a / b", "pow": "a ** b", "max": "max(a, b)",
                       "min": "min(a, b)"}[p["op"]],
    torch=TorchCall("Binary", lambda p, i, o: [(None, p["op"], None)]),
    from_torch=FromTorch(functions=("torch.maximum", "Tensor.maximum", "torch.minimum", "Tensor.minimum"),
                         call=_minmax_call),
    from_onnx=(FromOnnx("Max", _minmax_from_onnx("max")), FromOnnx("Min", _minmax_from_onnx("min"))),
    description="Two tensors elementwise with broadcasting: a difference, a ratio, a power, the larger or the "
                "smaller (the sum and the product are Add and Multiply)."))
