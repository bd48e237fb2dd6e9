"""Composites of the efficient CNNs: MobileNet's inverted residual and depthwise-separable convolution,
squeeze-and-excitation, SqueezeNet's Fire module, DenseNet's transition. Each inside uses torchvision's child names
(``conv.0.0``, ``fc1``, ``squeeze``, ``norm``), so these blocks load torchvision's weights unchanged."""
from __future__ import annotations

from .composite import IN, Subgraph
from .composites import CAT_RESIDUAL, ch, composite
from .imports import FromTorch, children
from .spec import MAX_CHANNELS, BlockError, Param

CAT_MOBILE = "Efficient nets"


def _conv_bn_act(g, prefix, src, out, kernel, stride=1, groups=1, act="relu6"):
    """torchvision's Conv2dNormActivation: conv (no bias), BN, activation, as children 0, 1, 2."""
    x = g.add(f"{prefix}.0", "conv2d", src, out_channels=out, kernel=kernel, stride=stride, padding=(kernel - 1) // 2,
              groups=groups, bias=False)
    x = g.add(f"{prefix}.1", "batchnorm2d", x)
    return g.add(f"{prefix}.2", act, x) if act else x


def _se(g, prefix, src, channels, squeeze, act="relu", gate="sigmoid"):
    """Squeeze-and-excitation on ``src``: global pool, 1x1 to ``squeeze``, activation, 1x1 back, gate, times src."""
    p = f"{prefix}." if prefix else ""
    x = g.add(f"{p}avgpool", "adaptive_avgpool2d", src, output_size=1)
    x = g.add(f"{p}fc1", "conv2d", x, out_channels=squeeze, kernel=1)
    x = g.add(f"{p}activation", act, x)
    x = g.add(f"{p}fc2", "conv2d", x, out_channels=channels, kernel=1)
    x = g.add(f"{p}scale_activation", gate, x)
    return g.add(f"{p}scale", "mul", [x, src])


def _squeeze_excitation(p, s):
    g = Subgraph()
    _se(g, "", IN, s[0], p["squeeze_channels"], p["activation"], p["gate"])
    return g


composite("squeeze_excitation", "Squeeze-and-excitation", CAT_MOBILE,
          [ch("squeeze_channels", 16, "channels of the bottleneck between the two 1x1 convs"),
           Param("activation", "choice", "relu", "Activation after the squeeze", choices=("relu", "silu")),
           Param("gate", "choice", "sigmoid", "Gate (MobileNetV3: hardsigmoid)", choices=("sigmoid", "hardsigmoid"))],
          _squeeze_excitation, "Channel attention: global average pool, 1x1 squeeze, 1x1 excite, a gate that scales "
          "every channel of the input (torchvision.ops.SqueezeExcitation).",
          lambda p: f"squeeze {p['squeeze_channels']}", short="SE")


def _inverted_residual(p, s):
    g, cin = Subgraph(), s[0]  # the input's channels (a symbol: exported classes take it as an argument)
    hidden = cin * p["expand_ratio"]
    x, i = IN, 0
    if p["expand_ratio"] != 1:
        x = _conv_bn_act(g, "conv.0", x, hidden, 1)
        i = 1
    x = _conv_bn_act(g, f"conv.{i}", x, hidden, 3, stride=p["stride"], groups=hidden)
    x = g.add(f"conv.{i + 1}", "conv2d", x, out_channels=p["out_channels"], kernel=1, bias=False)
    x = g.add(f"conv.{i + 2}", "batchnorm2d", x)
    if p["stride"] == 1 and cin == p["out_channels"]:
        x = g.add("add", "add", [IN, x])  # the residual only where shapes allow (torchvision's use_res_connect)
    g.output = x
    return g


def _inverted_residual_from_torch(m):
    first = m.conv[0][0]
    inp = first.in_channels
    hidden = first.out_channels if len(m.conv) == 4 else inp
    if hidden % inp:
        return f"an expansion of {hidden}/{inp} channels is not a whole ratio"
    return dict(out_channels=m.out_channels, stride=m.stride, expand_ratio=hidden // inp)


composite("inverted_residual", "Inverted residual (MobileNetV2)", CAT_MOBILE,
          [ch("out_channels", 24, "output channels"),
           Param("stride", "int", 1, "Stride of the depthwise 3x3 (1 or 2)", min=1, max=2),
           Param("expand_ratio", "int", 6, "Expansion of the 1x1 before the depthwise conv", min=1, max=16)],
          _inverted_residual, "1x1 expand (ReLU6), depthwise 3x3 (ReLU6), linear 1x1 projection, and the input "
          "added when stride 1 keeps the shape (torchvision's InvertedResidual).",
          lambda p: f"{p['out_channels']} x{p['expand_ratio']}" + (f"/{p['stride']}" if p["stride"] > 1 else ""),
          from_torch=FromTorch(("torchvision.models.mobilenetv2.InvertedResidual",), _inverted_residual_from_torch))


def _depthwise_separable(p, s):
    g, cin = Subgraph(), s[0]
    x = _conv_bn_act(g, "depthwise", IN, cin, p["kernel"], stride=p["stride"], groups=cin, act=p["activation"])
    _conv_bn_act(g, "pointwise", x, p["out_channels"], 1, act=p["activation"])
    return g


composite("depthwise_separable", "Depthwise-separable conv", CAT_MOBILE,
          [ch("out_channels", 64, "output channels of the pointwise 1x1"),
           Param("kernel", "int", 3, "Kernel of the depthwise conv (odd)", min=1, max=15),
           Param("stride", "int", 1, "Stride of the depthwise conv", min=1, max=4),
           Param("activation", "choice", "relu", "After each conv", choices=("relu", "relu6", "hardswish", "silu"))],
          _depthwise_separable, "A depthwise kxk conv and a pointwise 1x1, each with BN and an activation "
          "(MobileNetV1): a kxk conv's work at about 1/k^2 of its cost.",
          lambda p: f"{p['out_channels']}, dw {p['kernel']}x{p['kernel']}" + (f"/{p['stride']}" if p["stride"] > 1
                                                                             else ""))


def _fire(p, s):
    g = Subgraph()
    x = g.add("squeeze_activation", "relu", g.add("squeeze", "conv2d", IN, out_channels=p["squeeze"], kernel=1))
    e1 = g.add("expand1x1_activation", "relu", g.add("expand1x1", "conv2d", x, out_channels=p["expand1x1"],
                                                     kernel=1))
    e3 = g.add("expand3x3_activation", "relu", g.add("expand3x3", "conv2d", x, out_channels=p["expand3x3"],
                                                     kernel=3, padding=1))
    g.add("concat", "concat", [e1, e3])
    return g


composite("fire", "Fire module (SqueezeNet)", CAT_MOBILE,
          [ch("squeeze", 16, "1x1 squeeze filters"), ch("expand1x1", 64, "1x1 expand filters"),
           ch("expand3x3", 64, "3x3 expand filters")],
          _fire, "SqueezeNet's module: a 1x1 squeeze, then 1x1 and 3x3 expands side by side, concatenated "
          "(torchvision's Fire).", lambda p: f"{p['squeeze']}>{p['expand1x1']}|{p['expand3x3']}",
          from_torch=FromTorch(("torchvision.models.squeezenet.Fire",), children(dict(squeeze="squeeze", expand1x1="expand1x1",
                                                                         expand3x3="expand3x3"))))


def _transition(p, s):
    g = Subgraph()
    x = g.add("relu", "relu", g.add("norm", "batchnorm2d", IN))
    x = g.add("conv", "conv2d", x, out_channels=p["out_channels"], kernel=1, bias=False)
    g.add("pool", "avgpool2d", x, kernel=2, stride=2)
    return g


composite("dense_transition", "Dense transition (DenseNet)", CAT_RESIDUAL,
          [ch("out_channels", 128, "channels after the 1x1 (DenseNet: half the input's)")],
          _transition, "Between dense blocks: BN, ReLU, a 1x1 conv that compresses, a 2x2 average pool "
          "(torchvision's _Transition).", lambda p: f"{p['out_channels']} /2",
          from_torch=FromTorch(("torchvision.models.densenet._Transition",), children(dict(out_channels="conv"))))


def _dense_block(p, s):
    g, cin = Subgraph(), s[0]
    features = [IN]
    for i in range(p["layers"]):
        name = f"denselayer{i + 1}"
        x = features[0] if len(features) == 1 else g.add(f"{name}.cat", "concat", list(features))
        x = g.add(f"{name}.relu1", "relu", g.add(f"{name}.norm1", "batchnorm2d", x))
        x = g.add(f"{name}.conv1", "conv2d", x, out_channels=p["bn_size"] * p["growth_rate"], kernel=1, bias=False)
        x = g.add(f"{name}.relu2", "relu", g.add(f"{name}.norm2", "batchnorm2d", x))
        x = g.add(f"{name}.conv2", "conv2d", x, out_channels=p["growth_rate"], kernel=3, padding=1, bias=False)
        features.append(x)
    if cin + p["layers"] * p["growth_rate"] > MAX_CHANNELS:
        raise BlockError("the dense block's output would have too many channels", "invalid")
    g.add("concat", "concat", list(features))
    return g


def _dense_block_from_torch(m):
    first = m.denselayer1
    if first.drop_rate:
        return "dense layers with dropout have no block"
    growth = first.conv2.out_channels
    layers = 1
    while getattr(m, f"denselayer{layers + 1}", None) is not None:  # its children (not the concat it ends in)
        layers += 1
    return dict(layers=layers, growth_rate=growth, bn_size=first.conv1.out_channels // growth)


composite("dense_block", "Dense block (DenseNet)", CAT_RESIDUAL,
          [Param("layers", "int", 6, "Layers; each reads the concatenation of all before it", min=1, max=128),
           Param("growth_rate", "int", 32, "Channels each layer adds", min=1, max=1024),
           Param("bn_size", "int", 4, "Bottleneck width of each layer's 1x1, in growth rates", min=1, max=16)],
          _dense_block, "DenseNet's block: every layer (BN-ReLU-1x1-BN-ReLU-3x3) reads all the feature maps before "
          "it; the output concatenates them all (torchvision's _DenseBlock).",
          lambda p: f"{p['layers']} x +{p['growth_rate']}",
          from_torch=FromTorch(("torchvision.models.densenet._DenseBlock",), _dense_block_from_torch))


def _mbconv(p, s):
    g, cin = Subgraph(), s[0]
    bn = dict(eps=p["bn_eps"], momentum=p["bn_momentum"])
    act = p["activation"]

    def cna(index, src, out, kernel, stride=1, groups=1, with_act=True):
        x = g.add(f"block.{index}.0", "conv2d", src, out_channels=out, kernel=kernel, stride=stride,
                  padding=(kernel - 1) // 2, groups=groups, bias=False)
        x = g.add(f"block.{index}.1", "batchnorm2d", x, **bn)
        return g.add(f"block.{index}.2", act, x) if with_act else x
    expanded = p["expanded_channels"] or cin
    x, i = IN, 0
    if expanded != cin:
        x, i = cna(0, x, expanded, 1), 1
    x = cna(i, x, expanded, p["kernel"], stride=p["stride"], groups=expanded)
    i += 1
    if p["se_channels"]:
        x = _se(g, f"block.{i}", x, expanded, p["se_channels"], p["se_activation"], p["se_gate"])
        i += 1
    x = cna(i, x, p["out_channels"], 1, with_act=False)
    if p["stride"] == 1 and cin == p["out_channels"]:
        if p["stochastic_depth_prob"] > 0:
            x = g.add("stochastic_depth", "stochastic_depth", x, p=p["stochastic_depth_prob"], mode="row")
        x = g.add("add", "add", [x, IN])
    g.output = x
    return g


_ACTIVATIONS = {"SiLU": "silu", "Hardswish": "hardswish", "ReLU": "relu", "ReLU6": "relu6", "Sigmoid": "sigmoid",
                "Hardsigmoid": "hardsigmoid"}


def _mbconv_from_torch(m):
    """torchvision's MBConv (EfficientNet) and MobileNetV3's InvertedResidual: expand?, depthwise, SE?, project."""
    parts = list(m.block)
    cin = parts[0][0].in_channels
    expanded = parts[0][0].out_channels if parts[0][0].kernel_size == (1, 1) and len(parts) > 2 and \
        parts[1][0].groups > 1 else cin
    dw = parts[1] if expanded != cin else parts[0]
    se = next((p for p in parts if getattr(p, "fc1", None) is not None), None)  # the squeeze-and-excitation
    project = parts[-1]
    act = _ACTIVATIONS.get(type(dw[2]).__name__)
    sd = getattr(m, "stochastic_depth", None)
    if act is None or len(project) != 2:
        return "an inverted residual with another activation or projection has no block"
    params = dict(out_channels=project[0].out_channels, expanded_channels=expanded if expanded != cin else 0,
                  kernel=dw[0].kernel_size[0], stride=dw[0].stride[0], activation=act,
                  stochastic_depth_prob=sd.p if sd is not None and m.use_res_connect else 0.0,
                  bn_eps=dw[1].eps, bn_momentum=dw[1].momentum)
    if se is not None:
        se_act = _ACTIVATIONS.get(type(se.activation).__name__)
        gate = _ACTIVATIONS.get(type(se.scale_activation).__name__)
        if se_act not in ("silu", "relu") or gate not in ("sigmoid", "hardsigmoid"):
            return "a squeeze-and-excitation with other activations has no block"
        params.update(se_channels=se.fc1.out_channels, se_activation=se_act, se_gate=gate)
    return params


composite("mbconv", "MBConv / inverted residual with SE (EfficientNet, MobileNetV3)", CAT_MOBILE,
          [ch("out_channels", 24, "output channels"),
           Param("expanded_channels", "int", 0, "Channels after the 1x1 expansion (0 or the input's: no expansion)",
                 min=0, max=MAX_CHANNELS),
           Param("kernel", "int", 3, "Kernel of the depthwise conv (3 or 5)", min=1, max=15),
           Param("stride", "int", 1, "Stride of the depthwise conv", min=1, max=2),
           Param("activation", "choice", "silu", "After the expansion and the depthwise conv",
                 choices=("silu", "hardswish", "relu", "relu6")),
           Param("se_channels", "int", 0, "Squeeze channels of the squeeze-and-excitation (0: none)", min=0,
                 max=MAX_CHANNELS, zero="none"),
           Param("se_activation", "choice", "silu", "Inside the squeeze-and-excitation", choices=("silu", "relu")),
           Param("se_gate", "choice", "sigmoid", "The SE gate", choices=("sigmoid", "hardsigmoid")),
           Param("stochastic_depth_prob", "float", 0.0, "Dropping the residual branch in training", min=0.0,
                 max=1.0),
           Param("bn_eps", "float", 1e-5, "Batch norm epsilon (MobileNetV3: 0.001)", min=1e-12, max=1.0),
           Param("bn_momentum", "float", 0.1, "Batch norm momentum (MobileNetV3: 0.01)", min=0.0, max=1.0)],
          _mbconv, "Inverted residual with squeeze-and-excitation: 1x1 expand, depthwise kxk, SE, linear 1x1, "
          "stochastic depth and the input added when the shape allows (torchvision's MBConv and MobileNetV3 "
          "InvertedResidual).",
          lambda p: f"{p['out_channels']} k{p['kernel']}" + (f"/{p['stride']}" if p["stride"] > 1 else "")
          + (" SE" if p["se_channels"] else ""),
          from_torch=FromTorch(("torchvision.models.efficientnet.MBConv", "torchvision.models.mobilenetv3.InvertedResidual"), _mbconv_from_torch),
          short="MBConv")
