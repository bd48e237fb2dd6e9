"""The primitive block kinds: one shape rule, one cost rule and one torch factory each.

MACs count multiply-accumulates of convolutions and linear layers only (the convention of
``torch.utils.flop_counter.FlopCounterMode``, which reports 2 x MACs); FLOPs are shown as 2 x MACs.
"""
from __future__ import annotations

import math

from . import fields, tables
from .imports import BATCH, Chain, FromOnnx, FromTorch, Made, Split, Sub, pair
from .spec import (MAX_CHANNELS, MAX_KERNEL, MAX_SPATIAL, BlockError, BlockSpec, Cost, Param, TorchCall, fmt_shape,
                   register, source_ref)

ZERO = Cost(0, 0)
SHOW = object()  # the "default" of an argument the source always writes

# ---------------------------------------------------------------- shared parameter definitions

def _kernel(default=3):
    return Param("kernel", "pair", [default, default], "Kernel size: n, or [height, width] for 1xn / nx1",
                 min=1, max=MAX_KERNEL)


def _stride(default=1):
    return Param("stride", "pair", [default, default], "Step between windows: n or [h, w]", min=1, max=MAX_KERNEL)


def _padding_pair(default=0):
    return Param("padding", "pair", [default, default], "Zero padding on each side: n or [h, w]",
                 min=0, max=MAX_KERNEL)


def _channels(name="out_channels", default=64, help_="Number of output channels (filters)"):
    return Param(name, "int", default, help_, min=1, max=MAX_CHANNELS)


# ---------------------------------------------------------------- shape helpers

def _need_chw(ins, what: str):
    s = ins[0]
    if len(s) != 3:
        raise BlockError(f"{what} needs a CxHxW input, got {fmt_shape(s)}"
                         + (" (a flat vector: remove the Flatten before it)" if len(s) == 1 else ""),
                         "shape_mismatch")
    return s


def conv_out(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def pool_out(n: int, k: int, s: int, p: int, ceil_mode: bool, d: int = 1) -> int:
    num = n + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-num // s) + 1
        if (out - 1) * s >= n + p:  # the last window must start inside the input or left padding
            out -= 1
        return out
    return num // s + 1


def _check_window(kind: str, h: int, w: int, k, s, p, d=(1, 1)):
    eff = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    if eff[0] > h + 2 * p[0] or eff[1] > w + 2 * p[1]:
        dil = f" (dilated to {eff[0]}x{eff[1]})" if tuple(d) != (1, 1) else ""
        raise BlockError(f"{kind} kernel {k[0]}x{k[1]}{dil} is larger than its padded input "
                         f"{h + 2 * p[0]}x{w + 2 * p[1]}", "kernel_too_large")


def _conv_padding(p, k, d) -> tuple[int, int] | str:
    if p == "valid":
        return (0, 0)
    if p == "same":
        return "same"
    return (p[0], p[1])


def _conv_shape(p, ins):
    c, h, w = _need_chw(ins, "Convolution")
    k, s, d, g = p["kernel"], p["stride"], p["dilation"], p["groups"]
    want = p.get("in_channels", 0)
    if want and want != c:
        raise BlockError(f"channel mismatch: expects {want} input channels, gets {c} (input {fmt_shape(ins[0])})",
                         "channel_mismatch")
    if c % g or p["out_channels"] % g:
        raise BlockError(f"groups={g} must divide the input channels ({c}) and output channels "
                         f"({p['out_channels']})", "channel_mismatch")
    pad = _conv_padding(p["padding"], k, d)
    if pad == "same":
        if tuple(s) != (1, 1):
            raise BlockError("padding 'same' needs stride 1 (torch refuses it otherwise)", "invalid")
        return (p["out_channels"], h, w)
    _check_window("Convolution", h, w, k, s, pad, d)
    return (p["out_channels"], conv_out(h, k[0], s[0], pad[0], d[0]), conv_out(w, k[1], s[1], pad[1], d[1]))


def _conv_cost(p, ins, out, bias=None):
    cin = ins[0][0]
    k, g = p["kernel"], p["groups"]
    per_out = (cin // g) * k[0] * k[1]
    has_bias = p["bias"] if bias is None else bias
    params = p["out_channels"] * per_out + (p["out_channels"] if has_bias else 0)
    return Cost(params, out[0] * out[1] * out[2] * per_out)


def _flat_width(ch, ins):
    """Flatten's features: the channels times the grid or the length (the channels alone on a 1x1 map)."""
    hw = 1
    for d in ins[0][1:]:
        hw *= d
    return ch[0] if hw == 1 else ch[0] * hw


def _broadcast_width(ch):
    """A broadcasting merge's width: that of an input that is not 1 (a gate of 1 channel broadcasts)."""
    return next((c for c in ch if int(c) != 1), ch[0])


def _conv_summary(p):
    k, s = p["kernel"], p["stride"]
    txt = f"{p['out_channels']}, {k[0]}x{k[1]}"
    if tuple(s) != (1, 1):
        txt += f"/{s[0]}" if s[0] == s[1] else f"/{s[0]}x{s[1]}"
    return txt


def _width(out, p, name):
    return p[name] if out is None else out


def _conv_args(p, in_ch, out):
    return [(None, in_ch, None), (None, _width(out, p, "out_channels"), None), ("kernel_size", p["kernel"], SHOW),
            ("stride", p["stride"], [1, 1]), ("padding", p["padding"], [0, 0])]


CONV = TorchCall("nn.Conv2d", lambda p, i, o: _conv_args(p, i, o) + [
    ("dilation", p["dilation"], [1, 1]), ("groups", p["groups"], 1), ("bias", p["bias"], True)])
BASIC_CONV = TorchCall("BasicConv2d", lambda p, i, o: _conv_args(p, i, o) + [
    ("eps", p["eps"], 0.001), ("batch_norm", p["batch_norm"], True)])


def _conv_from_torch(m):
    if m.padding_mode != "zeros":
        return f"padding_mode {m.padding_mode!r} (only zero padding has a block)"
    return dict(out_channels=m.out_channels, kernel=pair(m.kernel_size), stride=pair(m.stride),
                padding=m.padding if isinstance(m.padding, str) else pair(m.padding), dilation=pair(m.dilation),
                groups=m.groups, bias=m.bias is not None)


def _conv_from_onnx(n):
    w, b = n.const(1), n.const(2)
    if w is None or w.ndim != 4:
        n.refuse("only 2-D convolutions with constant weights")
    if "kernel_shape" in n.attrs and list(n.attrs["kernel_shape"]) != list(w.shape[2:]):
        n.refuse(f"kernel_shape {list(n.attrs['kernel_shape'])} disagrees with its weight's {list(w.shape[2:])}")
    n.weights.update({"weight": w} | ({"bias": b} if b is not None else {}))
    return dict(out_channels=int(w.shape[0]), kernel=[int(d) for d in w.shape[2:]],
                stride=list(n.attrs.get("strides", [1, 1])), padding=n.pads(2),
                dilation=list(n.attrs.get("dilations", [1, 1])), groups=int(n.attrs.get("group", 1)),
                bias=b is not None)


def _basic_conv_from_onnx(n):
    """torchvision's BasicConv2d as torch.onnx writes it: Conv (scope ``P.conv``), BatchNormalization
    (``P.bn``), Relu (``P``); a file that does not name its nodes so gets the three blocks instead."""
    conv, *rest = n.nodes
    bn, relu = (rest[0] if len(rest) == 2 else None), rest[-1]
    outer = n.scope(relu)
    if not outer or n.scope(conv) != outer + ".conv" or (bn is not None and n.scope(bn) != outer + ".bn"):
        n.refuse("not a BasicConv2d")
    c = _conv_from_onnx(n)
    if c["groups"] != 1 or c["dilation"] != [1, 1] or isinstance(c["padding"], str) or c["bias"] == (bn is not None):
        n.refuse("not a BasicConv2d")
    weights = {f"conv.{k}": v for k, v in n.weights.items()}
    eps = 0.001
    if bn is not None:
        norm = n.sub(bn)
        eps = _bn_from_onnx(norm)["eps"]
        weights.update({f"bn.{k}": v for k, v in norm.weights.items()})
    n.weights.clear()
    n.weights.update(weights)
    return dict(out_channels=c["out_channels"], kernel=c["kernel"], stride=c["stride"], padding=c["padding"],
                eps=eps, batch_norm=bn is not None)


def _basic_conv_from_torch(m):
    conv = _conv_from_torch(m.conv)
    if isinstance(conv, str):
        return conv
    return dict(out_channels=conv["out_channels"], kernel=conv["kernel"], stride=conv["stride"],
                padding=conv["padding"], eps=m.bn.eps, batch_norm=True)


_CONV_PARAMS = (
    _channels(),
    _kernel(3),
    _stride(1),
    Param("padding", "padding", [0, 0], "Zero padding: n, [h, w], 'same' (stride 1 only) or 'valid'",
          min=0, max=MAX_KERNEL),
    Param("dilation", "pair", [1, 1], "Spacing between kernel taps", min=1, max=MAX_KERNEL),
    Param("groups", "int", 1, "Grouped convolution (AlexNet's two-GPU split is groups=2)", min=1, max=MAX_CHANNELS),
)

def _input_shape(p, ins):
    """C x H x W; C x D x H x W with a depth (a clip of frames, a volume); C x L with no width (a sequence); C
    with neither (a vector of features)."""
    c, d, h, w = p["channels"], p.get("depth", 0), p["height"], p["width"]
    if w and not h:
        raise BlockError("an input with a width needs a height (height 0 is a vector of channels)", "invalid")
    if d and not w:
        raise BlockError("an input with a depth needs a height and a width (a volume or a clip of images)",
                         "invalid")
    return (c,) if not h else (c, h) if not w else (c, h, w) if not d else (c, d, h, w)


def input_params(shape) -> dict:
    """The Input block's parameters for a shape without the batch dimension: C x H x W, C x D x H x W, C x L or
    C."""
    shape = tuple(int(d) for d in shape)
    if not 1 <= len(shape) <= 4:
        raise ValueError(f"an input is C, C x L, C x H x W or C x D x H x W, not {len(shape)} sizes")
    if len(shape) == 4:
        return dict(channels=shape[0], depth=shape[1], height=shape[2], width=shape[3])
    return dict(channels=shape[0], depth=0, height=shape[1] if len(shape) > 1 else 0,
                width=shape[2] if len(shape) > 2 else 0)


register(BlockSpec(
    "input", "Input", "Input & output", ports=(),
    params=(Param("channels", "int", 3, "Image channels", min=1, max=MAX_CHANNELS),
            Param("height", "int", 224, "Image height in pixels (a sequence's length)", min=0, max=MAX_SPATIAL,
                  zero="none: a vector of channels"),
            Param("width", "int", 224, "Image width in pixels", min=0, max=MAX_SPATIAL, zero="none: a sequence"),
            Param("depth", "int", 0, "Frames of a clip, or slices of a volume, before height and width", min=0,
                  max=MAX_SPATIAL, zero="none: an image")),
    shape=_input_shape,
    cost=lambda p, ins, out: ZERO,
    summary=lambda p: "x".join(str(v) for v in (p["channels"], p.get("depth", 0), p["height"], p["width"]) if v),
    in_table=False,
    description="The image that enters the network (channels x height x width; a clip or a volume has a depth "
                "before them, a sequence has no width, a vector of features neither)."))

AUX_LOSS_WEIGHT = 0.3  # GoogLeNet's auxiliary classifiers' share of the loss (Szegedy et al., 2014)


def _output_implies(p, updates):
    """An Output switched to aux takes the paper's 0.3 loss weight if it had the main one's 1.0; back to main,
    1.0 again, unless a weight is given with the switch."""
    role = updates.get("role", p["role"])
    if "loss_weight" not in updates and role != p["role"]:
        if role == "aux" and p["loss_weight"] == 1.0:
            updates = {**updates, "loss_weight": AUX_LOSS_WEIGHT}
        elif role == "main" and p["loss_weight"] == AUX_LOSS_WEIGHT:
            updates = {**updates, "loss_weight": 1.0}
    return updates


register(BlockSpec(
    "output", "Output", "Input & output", implies=_output_implies,
    params=(Param("role", "choice", "main", "The main classifier, or an auxiliary head (training only)",
                  choices=("main", "aux")),
            Param("loss_weight", "float", 1.0, "Weight of this output's loss (GoogLeNet's aux heads: 0.3)",
                  min=0.0, max=100.0)),
    shape=lambda p, ins: ins[0],
    cost=lambda p, ins, out: ZERO,
    summary=lambda p: p["role"] if p["role"] == "main" else f"aux x{p['loss_weight']:g}", in_table=False,
    keeps_width=True,
    description="A network output. One main output; auxiliary outputs are used in training only."))

register(BlockSpec(
    "conv2d", "Conv2d", "Convolution", short="Conv",
    advisor_role="convolution",
    report=tables.window("convolution"), weight_layers=1,
    receptive=fields.sliding,
    params=_CONV_PARAMS + (Param("bias", "bool", True, "Add a learned bias per output channel"),
                           Param("in_channels", "int", 0, "Expected input channels (0: take them from the input)",
                                 min=0, max=MAX_CHANNELS, zero="from the input")),
    shape=_conv_shape, cost=_conv_cost, torch=CONV, summary=_conv_summary, width_param="out_channels",
    from_torch=FromTorch(("torch.nn.Conv2d",), _conv_from_torch), from_onnx=(FromOnnx("Conv", _conv_from_onnx),),
    description="2-D convolution; asymmetric kernels (1xn, nx1), stride, padding, dilation, groups."))

register(BlockSpec(
    "basic_conv", "BasicConv (conv-BN-ReLU)", "Convolution", short="Conv",
    advisor_role="convolution",
    report=tables.window("convolution"), weight_layers=1,
    receptive=fields.sliding,
    params=_CONV_PARAMS[:4] + (
        Param("eps", "float", 0.001, "Batch-norm epsilon (torchvision's Inception models use 0.001)",
              min=1e-12, max=1.0),
        Param("batch_norm", "bool", True, "Batch norm after the convolution (off: conv with bias, then ReLU)"),
    ),
    shape=lambda p, ins: _conv_shape({**p, "dilation": [1, 1], "groups": 1}, ins),
    cost=lambda p, ins, out: _add_bn(p, _conv_cost({**p, "groups": 1}, ins, out, bias=not p["batch_norm"]), out),
    torch=BASIC_CONV, summary=_conv_summary, width_param="out_channels",
    from_torch=FromTorch(("torchvision.models.googlenet.BasicConv2d", "torchvision.models.inception.BasicConv2d"),
                         _basic_conv_from_torch),
    from_onnx=(FromOnnx(pattern=("Conv", "BatchNormalization", "Relu"), read=_basic_conv_from_onnx),
               FromOnnx(pattern=("Conv", "Relu"), read=_basic_conv_from_onnx)),
    description="Convolution, batch norm and ReLU in one block, as torchvision's BasicConv2d."))


def _add_bn(p, c: Cost, out) -> Cost:
    return Cost(c.params + (2 * out[0] if p["batch_norm"] else 0), c.macs)


def _bn_from_torch(m):
    if not m.track_running_stats or m.momentum is None:
        return "batch norm without running statistics (or with a cumulative average) has no block"
    return dict(eps=m.eps, momentum=m.momentum, affine=m.affine)


def _bn_act_from_torch(m):
    """timm's BatchNormAct2d (batch norm, then its ``drop`` and ``act`` children) as the blocks it is."""
    made = _bn_from_torch(m)
    return made if isinstance(made, str) else Chain([("batchnorm2d", made), Sub("drop"), Sub("act")])


def _bn_from_onnx(n):
    if len(n.node.output) > 1 and any(n.node.output[1:]) or int(n.attrs.get("training_mode", 0)):
        n.refuse("batch normalisation in training mode (export in eval mode)")
    scale, bias, mean, var = (n.const(i) for i in range(1, 5))
    n.weights.update(weight=scale, bias=bias, running_mean=mean, running_var=var,
                     num_batches_tracked=n.array(0, "int64"))
    return dict(eps=float(n.attrs.get("epsilon", 1e-5)), momentum=round(1.0 - float(n.attrs.get("momentum", 0.9)), 6))


register(BlockSpec(
    "batchnorm2d", "BatchNorm2d", "Normalisation", short="BN",
    params=(Param("eps", "float", 1e-5, "Added to the variance for stability", min=1e-12, max=1.0),
            Param("momentum", "float", 0.1, "Running statistics momentum", min=0.0, max=1.0),
            Param("affine", "bool", True, "Learn a scale and a shift per channel")),
    shape=lambda p, ins: _need_chw(ins, "BatchNorm2d"),
    cost=lambda p, ins, out: Cost(2 * out[0] if p["affine"] else 0, 0),
    torch=TorchCall("nn.BatchNorm2d", lambda p, i, o: [(None, i, None), ("eps", p["eps"], 1e-5),
                                                      ("momentum", p["momentum"], 0.1),
                                                      ("affine", p["affine"], True)]),
    from_torch=FromTorch(("torch.nn.BatchNorm2d", "timm.layers.norm_act.BatchNormAct2d"),
                         lambda m: _bn_act_from_torch(m) if hasattr(m, "act") else _bn_from_torch(m)),
    from_onnx=(FromOnnx("BatchNormalization", _bn_from_onnx),),
    keeps_width=True, in_table=False,
    description="Batch normalisation over the channels of a CxHxW tensor."))

register(BlockSpec(
    "lrn", "LocalResponseNorm", "Normalisation", short="LRN",
    report=tables.named("LocalRespNorm"),
    params=(Param("size", "int", 5, "Neighbouring channels to normalise over", min=1, max=MAX_CHANNELS),
            Param("alpha", "float", 1e-4, "Scale", min=0.0, max=10.0),
            Param("beta", "float", 0.75, "Exponent", min=0.0, max=10.0),
            Param("k", "float", 2.0, "Additive constant", min=0.0, max=100.0)),
    shape=lambda p, ins: _need_chw(ins, "LocalResponseNorm"),
    cost=lambda p, ins, out: ZERO,
    torch=TorchCall("nn.LocalResponseNorm", lambda p, i, o: [(None, p["size"], None), ("alpha", p["alpha"], SHOW),
                                                           ("beta", p["beta"], SHOW), ("k", p["k"], SHOW)]),
    summary=lambda p: f"size {p['size']}", keeps_width=True,
    from_onnx=(FromOnnx("LRN", lambda n: dict(size=int(n.attrs["size"]), alpha=float(n.attrs.get("alpha", 1e-4)),
                                              beta=float(n.attrs.get("beta", 0.75)),
                                              k=float(n.attrs.get("bias", 1.0)))),),
    description="AlexNet's local response normalisation across channels."))


def _activation(type_id, title, cls, desc, params=(), args=lambda p, i, o: [], **flags):
    """An elementwise activation: output shape = input shape, no parameters, no MACs, no table row."""
    register(BlockSpec(
        type_id, title, "Activation", params=params,
        shape=lambda p, ins: ins[0], cost=lambda p, ins, out: ZERO,
        torch=TorchCall(cls, args), keeps_width=True, in_table=False, description=desc, **flags))


_INPLACE = (Param("inplace", "bool", True, "Overwrite the input (only where no other block still reads it: the "
                  "compiler decides)"),)


def _inplace_arg(p, i, o):
    return [("inplace", p["inplace"], False)]


def _relu6_from_onnx(bounds_as_inputs):
    def read(n):
        if bounds_as_inputs:  # opset 11 on: optional inputs
            lo, hi = n.const(1), n.const(2)
        else:  # opsets 1-10: attributes
            lo, hi = n.attrs.get("min"), n.attrs.get("max")
        return _relu6_bounds(n, n.scalar(lo, "min"), n.scalar(hi, "max"))
    return read


def _relu6_bounds(n, lo, hi):
    if (lo, hi) == (0.0, 6.0):
        return {}
    from .elementwise import clamp_range  # any other range: ReLU's, or a clamp's
    kind, params = clamp_range(lo, hi)
    return Made(params, [n.x(0)], kind)


def _gelu_from_onnx(n):
    approximate = n.attrs.get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    if approximate not in ("none", "tanh"):
        n.refuse(f"GELU with the {approximate!r} approximation has no block")
    return dict(approximate=approximate)


def _gelu_erf(n):
    """x * 0.5 * (1 + erf(x / sqrt(2))), as torch.onnx writes GELU before opset 20 (the constants checked)."""
    div, _erf, add, _mul, half = n.nodes
    if not n.is_const(div, 2 ** 0.5) or not n.is_const(add, 1.0) \
            or not n.is_const(half, 0.5):
        n.refuse("not GELU's constants")
    return {}


_activation("relu", "ReLU", "nn.ReLU", "max(0, x)", _INPLACE, _inplace_arg, inplace=True, saves_output=True,
            from_torch=FromTorch(functions=("torch.nn.functional.relu", "torch.relu", "Tensor.relu")),
            from_onnx=(FromOnnx("Relu"),))
_activation("relu6", "ReLU6", "nn.ReLU6", "min(max(0, x), 6) (MobileNetV2)", _INPLACE, _inplace_arg, inplace=True,
            saves_output=True, from_torch=FromTorch(functions=("torch.nn.functional.relu6",)),
            from_onnx=(FromOnnx("Clip", _relu6_from_onnx(False)), FromOnnx("Clip", _relu6_from_onnx(True), since=11)))
_activation("sigmoid", "Sigmoid", "nn.Sigmoid", "1 / (1 + exp(-x)) (LeNet-5's squashing function)",
            saves_output=True,
            from_torch=FromTorch(functions=("torch.sigmoid", "torch.nn.functional.sigmoid", "Tensor.sigmoid")),
            from_onnx=(FromOnnx("Sigmoid"),))
_activation("tanh", "Tanh", "nn.Tanh", "Hyperbolic tangent", saves_output=True,
            from_torch=FromTorch(functions=("torch.tanh", "Tensor.tanh")), from_onnx=(FromOnnx("Tanh"),))
_activation("gelu", "GELU", "nn.GELU", "Gaussian error linear unit (exact, or its tanh approximation)",
            (Param("approximate", "choice", "none", "The exact function, or its tanh approximation",
                   choices=("none", "tanh")),),
            lambda p, i, o: [("approximate", p["approximate"], "none")],
            from_torch=FromTorch(("torch.nn.GELU",), lambda m: dict(approximate=m.approximate),
                                 functions=("torch.nn.functional.gelu",),
                                 call=lambda c: dict(approximate=c.opt(1, "approximate", "none"))),
            from_onnx=(FromOnnx("Gelu", _gelu_from_onnx),
                       FromOnnx(pattern=("Div", "Erf", "Add", ("Mul", "x"), "Mul"), read=_gelu_erf)))


def _pool_shape(kind):
    def rule(p, ins):
        c, h, w = _need_chw(ins, kind)
        k, s, pad = p["kernel"], p["stride"], p["padding"]
        if pad[0] * 2 > k[0] or pad[1] * 2 > k[1]:
            raise BlockError(f"{kind} padding {pad[0]}x{pad[1]} must be at most half the kernel {k[0]}x{k[1]}",
                             "invalid")
        oh, ow = pool_out(h, k[0], s[0], pad[0], p["ceil_mode"]), pool_out(w, k[1], s[1], pad[1], p["ceil_mode"])
        if oh < 1 or ow < 1:
            raise BlockError(f"{kind} kernel {k[0]}x{k[1]} is larger than its padded input "
                             f"{h + 2 * pad[0]}x{w + 2 * pad[1]}", "kernel_too_large")
        return (c, oh, ow)
    return rule


def _pool_summary(p):
    k, s = p["kernel"], p["stride"]
    return f"{k[0]}x{k[1]}/{s[0]}" + (" ceil" if p["ceil_mode"] else "")


def _pool_args(p):
    return [(None, p["kernel"], None), ("stride", p["stride"], SHOW), ("padding", p["padding"], [0, 0]),
            ("ceil_mode", p["ceil_mode"], False)]


def _pool_from_torch(m):
    if getattr(m, "dilation", 1) not in (1, (1, 1)) or getattr(m, "return_indices", False):
        return "dilated pools and pools that return indices have no block"
    if getattr(m, "divisor_override", None):
        return "avg pool with divisor_override has no block"
    p = dict(kernel=pair(m.kernel_size), stride=pair(m.stride if m.stride is not None else m.kernel_size),
             padding=pair(m.padding), ceil_mode=bool(m.ceil_mode))
    if hasattr(m, "count_include_pad"):
        p["count_include_pad"] = bool(m.count_include_pad)
    return p


def _pool_call(avg):
    def rule(c):
        k = c.opt(1, "kernel_size")
        p = dict(kernel=pair(k), stride=pair(c.opt(2, "stride") or k), padding=pair(c.opt(3, "padding", 0)),
                 ceil_mode=bool(c.opt(4 if avg else 5, "ceil_mode", False)))
        if avg:
            p["count_include_pad"] = bool(c.opt(5, "count_include_pad", True))
        elif c.opt(4, "dilation", 1) not in (1, (1, 1)):
            return "dilated max pool has no block"
        return p
    return rule


def _pool_from_onnx(avg):
    def read(n):
        if list(n.attrs.get("dilations", [1, 1])) != [1, 1]:
            n.refuse("dilated pooling")
        if not avg and len(n.node.output) > 1 and n.node.output[1]:
            n.refuse("max pool with indices")
        p = dict(kernel=list(n.attrs["kernel_shape"]), stride=list(n.attrs.get("strides", [1, 1])),
                 padding=n.pads(2), ceil_mode=bool(n.attrs.get("ceil_mode", 0)))
        if avg:
            p["count_include_pad"] = bool(n.attrs.get("count_include_pad", 0))
        return p
    return read


_POOL_PARAMS = (_kernel(3), _stride(2), _padding_pair(0),
                Param("ceil_mode", "bool", False, "Round the output size up (torchvision's GoogLeNet does)"))

register(BlockSpec(
    "maxpool2d", "MaxPool2d", "Pooling", params=_POOL_PARAMS, short="MaxPool",
    advisor_role="pool",
    report=tables.window("max pool"),
    receptive=fields.sliding,
    shape=_pool_shape("MaxPool2d"), cost=lambda p, ins, out: ZERO, summary=_pool_summary, keeps_width=True,
    torch=TorchCall("nn.MaxPool2d", lambda p, i, o: _pool_args(p)),
    from_torch=FromTorch(("torch.nn.MaxPool2d",), _pool_from_torch, ("torch.nn.functional.max_pool2d",),
                         _pool_call(False)),
    from_onnx=(FromOnnx("MaxPool", _pool_from_onnx(False)),),
    description="Maximum over each window; 3x3/2 windows overlap (AlexNet, GoogLeNet)."))

register(BlockSpec(
    "avgpool2d", "AvgPool2d", "Pooling", short="AvgPool",
    advisor_role="pool",
    report=tables.window("avg pool"),
    receptive=fields.sliding,
    params=_POOL_PARAMS + (Param("count_include_pad", "bool", True, "Count padded zeros in the average"),),
    shape=_pool_shape("AvgPool2d"), cost=lambda p, ins, out: ZERO, summary=_pool_summary, keeps_width=True,
    torch=TorchCall("nn.AvgPool2d", lambda p, i, o: _pool_args(p) + [
        ("count_include_pad", p["count_include_pad"], True)]),
    from_torch=FromTorch(("torch.nn.AvgPool2d",), _pool_from_torch, ("torch.nn.functional.avg_pool2d",),
                         _pool_call(True)),
    from_onnx=(FromOnnx("AveragePool", _pool_from_onnx(True)),),
    description="Average over each window (LeNet-5's subsampling, GoogLeNet's aux heads)."))

def _adaptive_from_torch(m):
    size = m.output_size
    if isinstance(size, (tuple, list)) and None in size:
        return "adaptive pool with a None size"
    return dict(output_size=pair(size))


def _mean_call(c):
    from .layout import reduce_call  # over H and W: global average pooling; over other dims: a reduction
    return reduce_call("mean", "adaptive_avgpool2d")(c)


def _reduce_mean_from_onnx(n):
    from .layout import reduce_from_onnx
    return reduce_from_onnx("mean", "adaptive_avgpool2d")(n)


register(BlockSpec(
    "adaptive_avgpool2d", "Global / adaptive avg pool", "Pooling", short="AvgPool",
    report=tables.adaptive("avg pool"),
    receptive=fields.adaptive,
    params=(Param("output_size", "pair", [1, 1], "Output grid (1x1: global average pooling)", min=1,
                  max=MAX_SPATIAL),),
    shape=lambda p, ins: (_need_chw(ins, "Adaptive average pool")[0],) + tuple(p["output_size"]),
    cost=lambda p, ins, out: ZERO,
    summary=lambda p: "global" if p["output_size"] == [1, 1] else f"to {p['output_size'][0]}x{p['output_size'][1]}",
    torch=TorchCall("nn.AdaptiveAvgPool2d", lambda p, i, o: [(None, p["output_size"], None)]), keeps_width=True,
    from_torch=FromTorch(("torch.nn.AdaptiveAvgPool2d",), _adaptive_from_torch,
                         ("torch.nn.functional.adaptive_avg_pool2d", "torch.mean", "Tensor.mean"),
                         lambda c: _mean_call(c) if c.name.endswith("mean") else
                         dict(output_size=pair(c.opt(1, "output_size", 1)))),
    from_onnx=(FromOnnx("GlobalAveragePool", lambda n: dict(output_size=[1, 1])),
               FromOnnx("ReduceMean", _reduce_mean_from_onnx)),
    legacy_ids=("global_avgpool",),
    description="Average to a fixed grid; 1x1 is NIN's and GoogLeNet's global average pooling."))

register(BlockSpec(
    "dropout", "Dropout", "Regularisation",
    report=lambda p, ins, bid: {"type": f"dropout ({p['p'] * 100:.0f}%)"},
    params=(Param("p", "float", 0.5, "Probability of zeroing an activation in training", min=0.0, max=1.0),),
    shape=lambda p, ins: ins[0], cost=lambda p, ins, out: ZERO, summary=lambda p: f"p={p['p']:g}",
    torch=TorchCall("nn.Dropout", lambda p, i, o: [("p", p["p"], SHOW)]),
    from_torch=FromTorch(functions=("torch.nn.functional.dropout",), call=lambda c: dict(p=float(c.opt(1, "p", 0.5)))),
    alias="view", keeps_width=True,  # in eval mode it returns its input itself
    description="Randomly zeroes activations while training (GoogLeNet: 40%, its aux heads: 70%)."))


def _flatten_call(c):
    if c.name in ("flatten", "Tensor.flatten", "torch.flatten"):
        if (c.opt(1, "start_dim", 0), c.opt(2, "end_dim", -1)) == (1, -1):
            return {}
        return "flatten that keeps more than the batch dimension has no block"
    shape = list(c.args[1]) if c.name.endswith("torch.reshape") else list(c.args[1:])
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = list(shape[0])
    if shape == [BATCH, -1]:
        return {}
    if len(shape) == 2 and shape[0] == -1 and c.tensors:  # x.view(-1, 16 * 5 * 5): a flatten when that is
        per_sample = c.shape(c.tensors[0])              # everything one sample holds
        if per_sample is not None and shape[1] == math.prod(per_sample):
            return {}
    from .layout import reshape_call  # any other shape that keeps the batch: a reshape
    return reshape_call(c)


def _flatten_from_onnx(n):
    if int(n.attrs.get("axis", 1)) != 1:
        n.refuse(f"flatten from axis {n.attrs.get('axis')}")
    return {}


def _flatten_from_reshape(n):
    target = n.const(1)
    if target is None or target.dtype.kind not in "iu":
        n.refuse("its shape is not a constant of integers" + (f" ({target.dtype})" if target is not None else ""))
    shape = [int(v) for v in target]
    if len(shape) == 2 and (shape[1] == -1 or shape[0] in (1, -1, 0)):
        return {}
    from .layout import reshape_from_onnx  # any other shape that keeps the batch: a reshape
    return reshape_from_onnx(n)


def _flatten_shape(p, ins):
    n = 1
    for d in ins[0]:
        n *= d
    return (n,)


register(BlockSpec(
    "flatten", "Flatten", "Reshape",
    receptive=fields.whole,
    shape=_flatten_shape, cost=lambda p, ins, out: ZERO, channel_rule=lambda p, ch, ins, out: _flat_width(ch, ins),
    torch=TorchCall("nn.Flatten", lambda p, i, o: [(None, 1, None)]),
    from_torch=FromTorch(("torch.nn.Flatten",), lambda m: {} if (m.start_dim, m.end_dim) == (1, -1) else
                         f"flatten({m.start_dim}, {m.end_dim})",
                         ("torch.flatten", "Tensor.flatten", "Tensor.view", "Tensor.reshape", "torch.reshape"),
                         _flatten_call),
    from_onnx=(FromOnnx("Flatten", _flatten_from_onnx), FromOnnx("Reshape", _flatten_from_reshape)),
    alias="view", in_table=False,
    keeps_width=True,  # for the class count of a head on a 1x1 map (the exporter checks the value)
    description="CxHxW -> a vector of C*H*W features, before a Linear layer."))


def _linear_shape(p, ins):
    s = ins[0]
    if len(s) != 1:
        raise BlockError(f"Linear needs a flat input, got {fmt_shape(s)}: add a Flatten before it",
                         "shape_mismatch")
    if p["in_features"] and p["in_features"] != s[0]:
        raise BlockError(f"feature mismatch: expects {p['in_features']} input features, gets {s[0]}",
                         "channel_mismatch")
    return (p["out_features"],)


def _gemm_from_onnx(n):
    w, b = n.const(1), n.const(2)
    a = n.attrs
    if w is None or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0 or int(a.get("transA", 0)):
        n.refuse("only y = x W^T + b with a constant W")
    if not int(a.get("transB", 0)):
        w = w.T
    if b is not None:  # ONNX broadcasts C to the output: one number, or one per feature (in a row or not)
        b = n.array(b, w.dtype)
        if b.size not in (1, w.shape[0]) or b.ndim > 2 or b.ndim == 2 and b.shape[0] != 1:
            n.refuse(f"a bias of shape {list(b.shape)} (one per feature has a block)")
        b = b.reshape(-1) if b.size == w.shape[0] else n.array([b.reshape(-1)[0]] * w.shape[0], w.dtype)
    n.weights.update({"weight": w} | ({"bias": b} if b is not None else {}))
    return dict(out_features=int(w.shape[0]), bias=b is not None)


register(BlockSpec(
    "linear", "Linear", "Dense", short="FC",
    report=tables.named("linear"), weight_layers=1,
    receptive=fields.whole,
    params=(Param("out_features", "int", 1000, "Output features (classes for the last layer)", min=1,
                  max=1 << 20),
            Param("bias", "bool", True, "Add a learned bias"),
            Param("in_features", "int", 0, "Expected input features (0: take them from the input)", min=0,
                  max=1 << 24, zero="from the input")),
    shape=_linear_shape,
    cost=lambda p, ins, out: Cost(ins[0][0] * out[0] + (out[0] if p["bias"] else 0), ins[0][0] * out[0]),
    torch=TorchCall("nn.Linear", lambda p, i, o: [(None, i, None), (None, _width(o, p, "out_features"), None),
                                                  ("bias", p["bias"], True)]),
    summary=lambda p: str(p["out_features"]), width_param="out_features",
    from_torch=FromTorch(("torch.nn.Linear", "timm.layers.linear.Linear"),  # timm's: nn.Linear for TorchScript
                         lambda m: dict(out_features=m.out_features, bias=m.bias is not None)),
    from_onnx=(FromOnnx("Gemm", _gemm_from_onnx),),
    description="Fully connected layer."))


def _describe_inputs(ins):
    """The inputs' shapes, each naming the block it comes from: a placeholder that analysis fills in with the
    source's id for the graph at hand (rule results are cached by shapes, so they must not hold names)."""
    return ", ".join(f"{fmt_shape(s)} (from {source_ref(i)})" for i, s in enumerate(ins))


def _concat_shape(p, ins):
    ranks = {len(s) for s in ins}
    if len(ranks) != 1:
        raise BlockError(f"Concat inputs have different ranks: {_describe_inputs(ins)}", "shape_mismatch")
    if len(ins[0]) == 3:
        hw = {(s[1], s[2]) for s in ins}
        if len(hw) != 1:
            raise BlockError(f"Concat inputs differ in spatial size: {_describe_inputs(ins)}; "
                             "every branch must keep the same HxW", "spatial_mismatch")
        return (sum(s[0] for s in ins), ins[0][1], ins[0][2])
    return (sum(s[0] for s in ins),) + tuple(ins[0][1:])


def _add_shape(p, ins):
    if len(set(ins)) != 1:
        raise BlockError(f"Add inputs differ: {_describe_inputs(ins)}; a shortcut needs a projection "
                         "(1x1 conv with stride) to match", "shape_mismatch")
    return ins[0]


def _cat_call(c):
    parts, dim = c.opt(0, "tensors"), c.opt(1, "dim", 0)
    shape = c.shape(parts[0]) if parts else None
    if shape is not None and dim % (len(shape) + 1) == 1:
        return Made({}, list(parts))
    if shape is None or dim % (len(shape) + 1) == 0:
        return f"torch.cat along dim {dim} (the batch's, or of unknown shape) has no block"
    return Made(dict(dim=int(dim)), list(parts), "concat_axis")  # another dim: the join along it


def _concat_from_onnx(n):
    axis = int(n.attrs.get("axis", 1))
    rank = len(n.shape(n.x(0))) + 1
    if not -rank <= axis < rank:
        n.refuse(f"concat along axis {axis}, out of range for {rank} dims")
    if axis % rank == 0:
        n.refuse(f"concat along axis {axis}, the batch's")
    inputs = [n.x(i) for i in range(len(n.node.input))]
    return Made({}, inputs) if axis % rank == 1 else Made(dict(dim=axis), inputs, "concat_axis")


def _merge_call(what, op):
    def rule(c):
        if len(c.tensors) == 2 and len(c.args) == 2 and not c.kwargs:
            return Made({}, c.tensors)
        if len(c.tensors) == 1:  # a tensor and a number: the constant operation's block
            from .elementwise import scalar_call
            return scalar_call(op)(c)
        return f"{what} of {len(c.tensors)} tensors and constants has no block"
    return rule


def _merge_from_onnx(op):
    def read(n):
        if any(n.is_constant(i) for i in range(len(n.node.input))):  # a number or a per-channel constant
            from .elementwise import scalar_from_onnx
            return scalar_from_onnx(op)(n)
        return Made({}, [n.x(0), n.x(1)])
    return read


register(BlockSpec(
    "concat", "Concat", "Merge", ports=(), variadic=True, min_inputs=1,
    shape=_concat_shape, cost=lambda p, ins, out: ZERO, in_table=False,
    forward=lambda args: f"torch.cat([{', '.join(args)}], 1)", channel_rule=lambda p, ch, ins, out: sum(ch[1:], ch[0]),
    from_torch=FromTorch(functions=("torch.cat",), call=_cat_call), from_onnx=(FromOnnx("Concat", _concat_from_onnx),),
    description="Joins branches along the channel axis, in port order (Inception's filter concatenation)."))

register(BlockSpec(
    "add", "Add", "Merge", ports=(), variadic=True, min_inputs=2, glyph="+",
    shape=_add_shape, cost=lambda p, ins, out: ZERO, in_table=False, forward=lambda args: " + ".join(args),
    channel_rule=lambda p, ch, ins, out: _broadcast_width(ch),
    from_torch=FromTorch(functions=("operator.add", "torch.add", "Tensor.add", "Tensor.__add__", "operator.iadd"),
                         call=_merge_call("a sum", "add")),
    from_onnx=(FromOnnx("Add", _merge_from_onnx("add")),),
    description="Element-wise sum (ResNet's shortcut); all inputs must have the same shape."))


# ---------------------------------------------------------------- the kinds torchvision's CNN zoo adds

def _torch_hardsigmoid(n, node=None):
    """torch's hardsigmoid is ONNX's HardSigmoid with alpha 1/6 and beta 1/2."""
    a = n.attributes(node) if node is not None else n.attrs
    if abs(float(a.get("alpha", 0.2)) - 1 / 6) > 1e-6 or abs(float(a.get("beta", 0.5)) - 0.5) > 1e-6:
        n.refuse("only torch's hardsigmoid (alpha 1/6, beta 1/2) has a block")
    return {}


_activation("hardswish", "Hardswish", "nn.Hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)",
            from_torch=FromTorch(functions=("torch.nn.functional.hardswish",)),
            from_onnx=(FromOnnx("HardSwish"),  # opset 14 on; before, torch writes x * HardSigmoid(x)
                       FromOnnx(pattern=("HardSigmoid", ("Mul", "x")), read=lambda n: _torch_hardsigmoid(n, n.nodes[0]))))
_activation("hardsigmoid", "Hardsigmoid", "nn.Hardsigmoid", "relu6(x + 3) / 6 (MobileNetV3's gates)",
            from_torch=FromTorch(functions=("torch.nn.functional.hardsigmoid",)),
            from_onnx=(FromOnnx("HardSigmoid", _torch_hardsigmoid),))
_activation("silu", "SiLU (swish)", "nn.SiLU", "x * sigmoid(x) (EfficientNet)",
            from_torch=FromTorch(functions=("torch.nn.functional.silu",)),
            from_onnx=(FromOnnx(pattern=("Sigmoid", ("Mul", "x"))),))
_activation("leaky_relu", "LeakyReLU", "nn.LeakyReLU", "x if x > 0 else slope * x",
            (Param("negative_slope", "float", 0.01, "Slope for negative inputs", min=0.0, max=1.0),),
            lambda p, i, o: [(None, p["negative_slope"], None)],
            from_onnx=(FromOnnx("LeakyRelu", lambda n: dict(negative_slope=float(n.attrs.get("alpha", 0.01)))),))

register(BlockSpec(
    "identity", "Identity", "Reshape",
    shape=lambda p, ins: ins[0], cost=lambda p, ins, out: ZERO,
    torch=TorchCall("nn.Identity"), alias="view", keeps_width=True, in_table=False, watches=True,
    from_torch=FromTorch(("torch.nn.Identity",)),
    description="Passes its input through unchanged (a placeholder, or a removed layer)."))


def _broadcast_shape(p, ins):
    ranks = {len(s) for s in ins}
    if len(ranks) != 1:
        raise BlockError(f"Multiply inputs have different ranks: {_describe_inputs(ins)}", "shape_mismatch")
    out = []
    for dims in zip(*ins):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise BlockError(f"Multiply inputs do not broadcast: {_describe_inputs(ins)}; each size must match "
                             "or be 1 (a gate of Cx1x1 scales a CxHxW map)", "shape_mismatch")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


register(BlockSpec(
    "mul", "Multiply", "Merge", ports=(), variadic=True, min_inputs=2, glyph="x",
    shape=_broadcast_shape, cost=lambda p, ins, out: ZERO, in_table=False, forward=lambda args: " * ".join(args),
    channel_rule=lambda p, ch, ins, out: _broadcast_width(ch),
    from_torch=FromTorch(functions=("operator.mul", "torch.mul", "Tensor.mul", "operator.imul"),
                         call=_merge_call("a product", "mul")),
    from_onnx=(FromOnnx("Mul", _merge_from_onnx("mul")),),
    description="Element-wise product with broadcasting (squeeze-and-excitation: the Cx1x1 gate times the map)."))


def _shuffle_shape(p, ins):
    c = _need_chw(ins, "Channel shuffle")[0]
    if c % p["groups"]:
        raise BlockError(f"channel shuffle: groups={p['groups']} must divide the {c} channels", "channel_mismatch")
    return ins[0]


def _shuffle_from_onnx(n):
    """Reshape to N x g x C/g x H x W, swap the two channel axes, reshape back: how torch.onnx writes a shuffle."""
    first, swap, back = n.nodes
    shape = [int(v) for v in n.const(1, first)]
    if len(shape) != 5 or list(n.attributes(swap).get("perm", [])) != [0, 2, 1, 3, 4] or \
            len(n.const(1, back)) != 4:
        n.refuse("not a channel shuffle")
    return dict(groups=shape[1])


register(BlockSpec(
    "channel_shuffle", "Channel shuffle", "Reshape",
    params=(Param("groups", "int", 2, "Groups whose channels are interleaved", min=1, max=MAX_CHANNELS),),
    shape=_shuffle_shape, cost=lambda p, ins, out: ZERO, summary=lambda p: f"groups {p['groups']}",
    torch=TorchCall("ChannelShuffle", lambda p, i, o: [(None, p["groups"], None)]), keeps_width=True,
    from_torch=FromTorch(("torch.nn.ChannelShuffle",), functions=("torchvision.models.shufflenetv2.channel_shuffle",),
                         call=lambda c: dict(groups=int(c.opt(1, "groups", 2))),
                         wrap=("torchvision.models.shufflenetv2.channel_shuffle",)),
    from_onnx=(FromOnnx(pattern=("Reshape", "Transpose", "Reshape"), read=_shuffle_from_onnx),),
    in_table=False, description="Interleaves the channels of its groups (ShuffleNet), so grouped convolutions mix."))

def _layernorm2d_from_onnx(n):
    """Transpose to channels-last, LayerNormalization over the last axis, transpose back (torchvision's
    LayerNorm2d as torch.onnx writes it)."""
    first, norm, back = n.nodes
    if list(n.attributes(first).get("perm", [])) != [0, 2, 3, 1] or \
            list(n.attributes(back).get("perm", [])) != [0, 3, 1, 2] or int(n.attributes(norm).get("axis", -1)) != -1:
        n.refuse("not a layer norm over channels")
    weight, bias = n.const(1, norm), n.const(2, norm)
    if weight is None or bias is None:
        n.refuse("a layer norm without a learned weight and bias has no block")
    n.weights.update(weight=weight, bias=bias)
    return dict(eps=float(n.attributes(norm).get("epsilon", 1e-5)))


register(BlockSpec(
    "layernorm2d", "LayerNorm (channels)", "Normalisation",
    params=(Param("eps", "float", 1e-6, "Added to the variance for stability", min=1e-12, max=1.0),),
    shape=lambda p, ins: _need_chw(ins, "LayerNorm2d"),
    cost=lambda p, ins, out: Cost(2 * out[0], 0),
    torch=TorchCall("LayerNorm2d", lambda p, i, o: [(None, i, None), ("eps", p["eps"], 1e-5)]),
    from_torch=FromTorch(("torchvision.models.convnext.LayerNorm2d", "timm.layers.norm.LayerNorm2d"),
                         lambda m: dict(eps=m.eps) if m.elementwise_affine and m.bias is not None else
                         "LayerNorm2d without a learned weight and bias"),
    from_onnx=(FromOnnx(pattern=("Transpose", "LayerNormalization", "Transpose"), read=_layernorm2d_from_onnx),),
    keeps_width=True, in_table=False,
    description="Layer normalisation over the channels at each position of a CxHxW map (ConvNeXt)."))

register(BlockSpec(
    "stochastic_depth", "Stochastic depth", "Regularisation",
    params=(Param("p", "float", 0.1, "Probability of dropping the branch in training", min=0.0, max=1.0),
            Param("mode", "choice", "row", "Drop per sample (row) or for the whole batch", choices=("row", "batch"))),
    shape=lambda p, ins: ins[0], cost=lambda p, ins, out: ZERO, summary=lambda p: f"p={p['p']:g}",
    torch=TorchCall("StochasticDepth", lambda p, i, o: [(None, p["p"], None), (None, p["mode"], None)]),
    from_torch=FromTorch(("torchvision.ops.StochasticDepth",)),
    alias="view", keeps_width=True, in_table=False,  # in eval it returns its input itself
    description="Randomly drops a residual branch per sample while training; identity in eval (EfficientNet)."))

register(BlockSpec(
    "dropout2d", "Dropout2d", "Regularisation",
    params=(Param("p", "float", 0.5, "Probability of zeroing a whole channel in training", min=0.0, max=1.0),),
    shape=lambda p, ins: _need_chw(ins, "Dropout2d"), cost=lambda p, ins, out: ZERO,
    summary=lambda p: f"p={p['p']:g}", torch=TorchCall("nn.Dropout2d", lambda p, i, o: [("p", p["p"], SHOW)]),
    alias="view", keeps_width=True,
    description="Zeroes whole channels while training."))


def _pad_shape(p, ins):
    c, h, w = _need_chw(ins, "ZeroPad2d")
    (left, right), (top, bottom) = p["horizontal"], p["vertical"]
    return (c, h + top + bottom, w + left + right)


register(BlockSpec(
    "zeropad2d", "ZeroPad2d", "Reshape",
    receptive=fields.shifted,
    params=(Param("horizontal", "pair", [1, 1], "Zero columns added: n, or [left, right]", min=0, max=MAX_SPATIAL),
            Param("vertical", "pair", [1, 1], "Zero rows added: n, or [top, bottom]", min=0, max=MAX_SPATIAL)),
    shape=_pad_shape, cost=lambda p, ins, out: ZERO,
    summary=lambda p: "pad " + ",".join(map(str, p["horizontal"] + p["vertical"])),
    torch=TorchCall("nn.ZeroPad2d", lambda p, i, o: [(None, p["horizontal"] + p["vertical"], None)]),
    from_torch=FromTorch(("torch.nn.ZeroPad2d",), lambda m: dict(horizontal=list(m.padding[:2]),
                                                                 vertical=list(m.padding[2:]))),
    keeps_width=True,
    in_table=False, description="Pads a map with zeros on each side."))


def _upsample_shape(p, ins):
    c, h, w = _need_chw(ins, "Upsample")
    s = p["scale_factor"]
    if h * s[0] > MAX_SPATIAL or w * s[1] > MAX_SPATIAL:
        raise BlockError(f"Upsample to {h * s[0]}x{w * s[1]} is larger than {MAX_SPATIAL}", "invalid")
    return (c, h * s[0], w * s[1])


def _upsample_from_torch(m):
    sf = m.scale_factor
    sf = sf if isinstance(sf, (tuple, list)) or sf is None else (sf, sf)
    if m.size is not None or any(float(v) != int(v) for v in sf) or m.mode not in ("nearest", "bilinear") or \
            (m.mode == "bilinear" and m.align_corners):
        from .resize import resized  # to a size, by a fraction, by another interpolation: a resize
        made = resized((1, 1, 1), m.size, sf, m.mode, m.align_corners) if m.size is not None else None
        if isinstance(made, str):
            return made
        return f"Upsample by {sf} with mode {m.mode!r} needs its input's size (F.interpolate has it)" \
            if made is None else Chain([("resize", made)])
    return dict(scale_factor=[int(v) for v in sf], mode=m.mode)


def _upsample_from_onnx(n):
    """ONNX's Resize (opset 11 on) or Upsample by whole factors of the height and width: nearest as torch
    writes it (asymmetric, floor), or bilinear without corner alignment (half-pixel)."""
    c, h, w = n.shape(n.x(0))
    mode = n.attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if n.node.op_type == "Upsample":
        scales = n.const(1) if len(n.node.input) > 1 else n.attrs.get("scales")
        transform, nearest = "asymmetric", "floor"
    else:
        scales = n.const(2) if len(n.node.input) > 2 and n.node.input[2] else None
        if scales is None or len(scales) == 0:
            sizes = n.const(3)
            scales = [float(sizes[2]) / h, float(sizes[3]) / w] if sizes is not None else None
            scales = [1.0, 1.0] + scales if scales else None
        transform = n.attrs.get("coordinate_transformation_mode", b"half_pixel")
        transform = transform.decode() if isinstance(transform, bytes) else transform
        nearest = n.attrs.get("nearest_mode", b"round_prefer_floor")
        nearest = nearest.decode() if isinstance(nearest, bytes) else nearest
    if scales is None or len(scales) != 4 or float(scales[0]) != 1 or float(scales[1]) != 1:
        n.refuse("resizing other than the height and width has no block")
    whole = all(float(v) == int(v) and v >= 1 for v in scales[2:])
    if whole and mode == "nearest" and (transform == "asymmetric" and nearest == "floor"):
        return dict(scale_factor=[int(scales[2]), int(scales[3])], mode="nearest")
    if whole and mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel"):
        return dict(scale_factor=[int(scales[2]), int(scales[3])], mode="bilinear")
    # any other: torch's interpolation whose coordinate rule is the file's, to its size by its scale
    torch_mode = {("nearest", "asymmetric", "floor"): "nearest",
                  ("nearest", "half_pixel", "round_prefer_ceil"): "nearest-exact",
                  ("linear", "half_pixel", ""): "bilinear", ("linear", "pytorch_half_pixel", ""): "bilinear",
                  ("linear", "align_corners", ""): "bilinear", ("cubic", "half_pixel", ""): "bicubic",
                  ("cubic", "pytorch_half_pixel", ""): "bicubic", ("cubic", "align_corners", ""): "bicubic"}.get(
        (mode, transform, nearest if mode == "nearest" else ""))
    cubic_a = float(n.attrs.get("cubic_coeff_a", -0.75))
    if torch_mode is None or (mode == "cubic" and (abs(cubic_a + 0.75) > 1e-6 or n.attrs.get("exclude_outside"))) \
            or n.attrs.get("antialias") or n.attrs.get("keep_aspect_ratio_policy", b"stretch") not in (b"stretch",
                                                                                                       "stretch"):
        n.refuse(f"resizing by {mode!r} with {transform!r} coordinates has no block")
    from .resize import resized
    given = len(n.node.input) > 3 and n.node.input[3] and n.const(3) is not None and len(n.const(3))
    made = resized((c, h, w), [int(v) for v in n.const(3)[2:]] if given else None,
                   None if given else [float(v) for v in scales[2:]], torch_mode, transform == "align_corners")
    if isinstance(made, str):
        n.refuse(made)
    return Made(made, [n.x(0)], "resize")


register(BlockSpec(
    "upsample", "Upsample", "Reshape",
    receptive=fields.upsampled(lambda p: p["scale_factor"]),
    params=(Param("scale_factor", "pair", [2, 2], "Times larger: n or [h, w]", min=1, max=64),
            Param("mode", "choice", "nearest", "Interpolation", choices=("nearest", "bilinear"))),
    shape=_upsample_shape, cost=lambda p, ins, out: ZERO,
    summary=lambda p: f"x{p['scale_factor'][0]} {p['mode']}",
    torch=TorchCall("nn.Upsample", lambda p, i, o: [("scale_factor", [float(v) for v in p["scale_factor"]], None),
                                                   ("mode", p["mode"], "nearest")]),
    from_torch=FromTorch(("torch.nn.Upsample",), _upsample_from_torch),
    from_onnx=(FromOnnx("Upsample", _upsample_from_onnx), FromOnnx("Resize", _upsample_from_onnx, since=11)),
    keeps_width=True, description="Enlarges a map by a whole factor (decoders of encoder-decoder nets)."))


def _deconv_shape(p, ins):
    c, h, w = _need_chw(ins, "ConvTranspose2d")
    k, s, pad, op, d, g = p["kernel"], p["stride"], p["padding"], p["output_padding"], p["dilation"], p["groups"]
    if c % g or p["out_channels"] % g:
        raise BlockError(f"groups={g} must divide the input channels ({c}) and output channels "
                         f"({p['out_channels']})", "channel_mismatch")
    if op[0] >= max(s[0], d[0]) or op[1] >= max(s[1], d[1]):
        raise BlockError(f"output padding {op[0]}x{op[1]} must be smaller than the stride or the dilation",
                         "invalid")
    oh = (h - 1) * s[0] - 2 * pad[0] + d[0] * (k[0] - 1) + op[0] + 1
    ow = (w - 1) * s[1] - 2 * pad[1] + d[1] * (k[1] - 1) + op[1] + 1
    if oh < 1 or ow < 1:
        raise BlockError(f"ConvTranspose2d output would be {oh}x{ow}: less padding", "kernel_too_large")
    return (p["out_channels"], oh, ow)


def _deconv_from_torch(m):
    if m.padding_mode != "zeros":
        return f"padding_mode {m.padding_mode!r}"
    return dict(out_channels=m.out_channels, kernel=pair(m.kernel_size), stride=pair(m.stride),
                padding=pair(m.padding), output_padding=pair(m.output_padding), dilation=pair(m.dilation),
                groups=m.groups, bias=m.bias is not None)


def _deconv_from_onnx(n):
    w, b = n.const(1), n.const(2)
    a = n.attrs
    if w is None or w.ndim != 4:
        n.refuse("only 2-D transposed convolutions with constant weights")
    if "output_shape" in a:
        n.refuse("output_shape is not supported (export with output_padding)")
    groups = int(a.get("group", 1))
    n.weights.update({"weight": w} | ({"bias": b} if b is not None else {}))
    return dict(out_channels=int(w.shape[1]) * groups, kernel=[int(d) for d in w.shape[2:]],
                stride=list(a.get("strides", [1, 1])), padding=n.pads(2),
                output_padding=list(a.get("output_padding", [0, 0])), dilation=list(a.get("dilations", [1, 1])),
                groups=groups, bias=b is not None)


def _deconv_cost(p, ins, out):
    c, h, w = ins[0]
    k, g = p["kernel"], p["groups"]
    weights = c * (p["out_channels"] // g) * k[0] * k[1]
    # FlopCounterMode counts a transposed convolution over its input positions
    return Cost(weights + (p["out_channels"] if p["bias"] else 0), h * w * weights)


register(BlockSpec(
    "conv_transpose2d", "ConvTranspose2d", "Convolution",
    receptive=fields.upsampled(lambda p: p["stride"], lambda p: p["kernel"]),
    params=(_channels(), _kernel(2), _stride(2), _padding_pair(0),
            Param("output_padding", "pair", [0, 0], "Extra rows/columns on one side of the output", min=0,
                  max=MAX_KERNEL),
            Param("dilation", "pair", [1, 1], "Spacing between kernel taps", min=1, max=MAX_KERNEL),
            Param("groups", "int", 1, "Grouped transposed convolution", min=1, max=MAX_CHANNELS),
            Param("bias", "bool", True, "Add a learned bias per output channel")),
    shape=_deconv_shape, cost=_deconv_cost, summary=_conv_summary, width_param="out_channels",
    torch=TorchCall("nn.ConvTranspose2d", lambda p, i, o: [
        (None, i, None), (None, _width(o, p, "out_channels"), None), ("kernel_size", p["kernel"], SHOW),
        ("stride", p["stride"], [1, 1]), ("padding", p["padding"], [0, 0]),
        ("output_padding", p["output_padding"], [0, 0]), ("groups", p["groups"], 1), ("bias", p["bias"], True),
        ("dilation", p["dilation"], [1, 1])]),
    from_torch=FromTorch(("torch.nn.ConvTranspose2d",), _deconv_from_torch),
    from_onnx=(FromOnnx("ConvTranspose", _deconv_from_onnx),),
    description="Transposed (fractionally strided) convolution: learned upsampling in decoders."))


def _slice_shape(p, ins):
    c, h, w = _need_chw(ins, "Channel slice")
    if not p["start"] < p["stop"] <= c:
        raise BlockError(f"channel slice {p['start']}:{p['stop']} must lie inside the {c} input channels and hold "
                         "at least one", "channel_mismatch")
    return (p["stop"] - p["start"], h, w)


def _chunk_call(c):
    n, dim, src = c.opt(1, "chunks"), c.opt(2, "dim", 0), c.args[0]
    ch = c.channels(src)
    if dim != 1 or ch is None or not n or ch % n:
        return f"chunk into {n} along dim {dim} (only equal channel chunks have a block)"
    return _parts(1, [ch // n] * n, "chunk")


def _parts(dim: int, sizes: list, name: str = "split") -> Split:
    """``sizes`` along ``dim`` as the blocks of a split: channel slices along dim 1, slices of another dim."""
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return Split([("channel_slice", dict(start=a, stop=a + k)) if dim == 1 else
                   ("slice", dict(dim=dim, start=a, stop=a + k, step=1)) for a, k in zip(starts, sizes)],
                 tuple(f"{name}{i}" for i in range(len(sizes))))


def _split_call(c):
    """``torch.split(x, sizes or size, dim)``: slices of that dim (channel slices along the channels)."""
    size, dim, src = c.opt(1, "split_size_or_sections", c.opt(1, "split_size")), c.opt(2, "dim", 0), c.args[0]
    shape = c.shape(src)
    if shape is None or not size or dim % (len(shape) + 1) == 0:
        return f"split along dim {dim} (the batch's, or of unknown shape) has no block"
    d = dim % (len(shape) + 1)
    ch = shape[d - 1]
    sizes = [int(v) for v in size] if isinstance(size, (list, tuple)) else \
        [min(int(size), ch - i) for i in range(0, ch, int(size))]
    if sum(sizes) != ch or min(sizes) < 1:
        return f"split of {ch} into {sizes}"
    return _parts(d, sizes)


def _slice_call(c):
    """``torch.chunk`` or ``torch.split`` along the channels."""
    return _split_call(c) if c.name.endswith("split") else _chunk_call(c)


def _split_from_onnx(n):
    """ONNX's Split along any axis but the batch's (sizes from its input, its attribute, or equal parts) as
    slices."""
    shape = n.shape(n.x(0))
    axis = int(n.attrs.get("axis", 0))
    if not -len(shape) - 1 <= axis <= len(shape):
        n.refuse(f"a split along axis {axis}, out of range for {len(shape) + 1} dims")
    if axis % (len(shape) + 1) == 0:
        n.refuse(f"a split along axis {axis}, the batch's")
    axis = axis % (len(shape) + 1)
    length = shape[axis - 1]
    if n.opset >= 13 and len(n.node.input) > 1 and n.node.input[1]:
        sizes = [int(v) for v in n.const(1)]
    elif n.attrs.get("split"):
        sizes = [int(v) for v in n.attrs["split"]]
    else:
        parts = int(n.attrs.get("num_outputs", len(n.node.output)))
        step = -(-length // parts)
        sizes = [min(step, length - i * step) for i in range(parts)]
    if sum(sizes) != length or min(sizes) < 1:
        n.refuse(f"parts of {sizes} do not make its {length}")
    return _parts(axis, sizes)


def _slice_from_onnx(n):
    starts, ends = n.const(1), n.const(2)
    axes = n.const(3) if len(n.node.input) > 3 and n.node.input[3] else list(range(len(starts)))
    steps = n.const(4) if len(n.node.input) > 4 and n.node.input[4] else [1] * len(starts)
    shape = n.shape(n.x(0))
    if len(shape) != 3 or [int(x) % 4 for x in axes] != [1] or int(steps[0]) != 1:
        from .layout import slice_from_onnx  # other axes, steps or shapes: slices
        made = slice_from_onnx(n, shape)
        if made is None:
            n.refuse("slicing the batch, or backwards, has no block")
        return Chain(made)
    channels = n.channels(n.x(0))
    start, stop = (max(0, min(channels, int(v) if v >= 0 else int(v) + channels)) for v in (starts[0], ends[0]))
    return dict(start=start, stop=stop)


register(BlockSpec(
    "channel_slice", "Channel slice", "Reshape",
    params=(Param("start", "int", 0, "First channel taken", min=0, max=MAX_CHANNELS),
            Param("stop", "int", 1, "One past the last channel taken", min=1, max=MAX_CHANNELS)),
    shape=_slice_shape, cost=lambda p, ins, out: ZERO, summary=lambda p: f"channels {p['start']}:{p['stop']}",
    channel_rule=lambda p, ch, ins, out: p["stop"] - p["start"],
    torch=TorchCall("ChannelSlice", lambda p, i, o: [(None, p["start"], None), (None, p["stop"], None)]),
    from_torch=FromTorch(functions=("torch.chunk", "Tensor.chunk", "torch.split", "Tensor.split"), call=_slice_call),
    from_onnx=(FromOnnx("Slice", _slice_from_onnx), FromOnnx("Split", _split_from_onnx)),
    alias="view", in_table=False,
    description="Channels start..stop-1 of its input (ShuffleNet's split: x.chunk(2, dim=1) is two slices)."))


def _convnext_from_onnx(n):
    """torchvision's CNBlock as torch.onnx writes it: the depthwise 7x7 conv, a channels-last section (LayerNorm,
    Linear, GELU, Linear), the layer scale and the residual sum; the weights renamed to CNBlock's children."""
    conv, first, norm, mm1, b1, _gelu, mm2, b2, back, scale, _add = n.nodes
    a = n.attributes(conv)
    w, bias = n.const(1, conv), n.const(2, conv)
    if w is None or bias is None or list(w.shape[1:]) != [1, 7, 7] or int(a.get("group", 1)) != w.shape[0] or \
            list(a.get("pads", [0] * 4)) != [3] * 4 or list(a.get("strides", [1, 1])) != [1, 1] or \
            list(n.attributes(first).get("perm", [])) != [0, 2, 3, 1] or \
            list(n.attributes(back).get("perm", [])) != [0, 3, 1, 2]:
        n.refuse("not a ConvNeXt block")
    w1, w2 = n.const(1, mm1), n.const(1, mm2)
    tensors = {"block.0.weight": w, "block.0.bias": bias, "block.2.weight": n.const(1, norm),
               "block.2.bias": n.const(2, norm), "block.3.weight": w1.T if w1 is not None else None,
               "block.3.bias": n.other_const(b1), "block.5.weight": w2.T if w2 is not None else None,
               "block.5.bias": n.other_const(b2), "layer_scale": n.other_const(scale)}
    if any(v is None for v in tensors.values()):
        n.refuse("a ConvNeXt block without constant weights")
    tensors["layer_scale"] = tensors["layer_scale"].reshape(-1, 1, 1)
    n.weights.update(tensors)
    return dict(eps=float(n.attributes(norm).get("epsilon", 1e-5)))


def _convnext_cost(p, ins, out):
    c, h, w = ins[0]
    params = c * 49 + c + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c) + c
    return Cost(params, h * w * (c * 49 + 8 * c * c))


register(BlockSpec(
    "convnext_block", "ConvNeXt block", "Residual & NIN",
    receptive=fields.fixed_window((7, 7), (1, 1), (3, 3)),
    params=(Param("layer_scale", "float", 1e-6, "Initial value of the learned per-channel scale", min=0.0,
                  max=10.0),
            Param("stochastic_depth_prob", "float", 0.0, "Probability of dropping the block in training", min=0.0,
                  max=1.0),
            Param("eps", "float", 1e-6, "LayerNorm epsilon", min=1e-12, max=1.0)),
    shape=lambda p, ins: _need_chw(ins, "ConvNeXt block"), cost=_convnext_cost,
    summary=lambda p: f"sd {p['stochastic_depth_prob']:g}" if p["stochastic_depth_prob"] else "",
    torch=TorchCall("ConvNeXtBlock", lambda p, i, o: [(None, i, None), ("layer_scale", p["layer_scale"], SHOW),
                                                     ("stochastic_depth_prob", p["stochastic_depth_prob"], 0.0),
                                                     ("eps", p["eps"], 1e-6)]),
    keeps_width=True,
    from_torch=FromTorch(("torchvision.models.convnext.CNBlock",),
                         lambda m: dict(layer_scale=1e-6, eps=m.block[2].eps,
                                        stochastic_depth_prob=m.stochastic_depth.p)),
    from_onnx=(FromOnnx(pattern=("Conv", "Transpose", "LayerNormalization", "MatMul", "Add", {"Gelu", "gelu"},
                                 "MatMul", "Add", "Transpose", "Mul", ("Add", "x")), read=_convnext_from_onnx),),
    description="ConvNeXt's block: 7x7 depthwise conv, LayerNorm, 4x MLP with GELU, layer scale, stochastic "
                "depth, plus the input (torchvision's CNBlock, weight for weight)."))
