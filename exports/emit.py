"""Constructor expressions of the primitive blocks, as readable PyTorch source.

Channel arguments may be symbols (names of constructor arguments) instead of numbers; every other value is
written with ``repr()`` of an already validated number, bool or choice, so no user text reaches the code.
"""
from __future__ import annotations


def _kw(name, value, default):
    if value == default:
        return None
    return f"{name}={_lit(value)}"


def _lit(v):
    if isinstance(v, list):
        if len(v) == 2 and v[0] == v[1]:
            return repr(int(v[0]))
        return repr(tuple(v))
    if isinstance(v, float):
        return repr(v)
    return repr(v)


def _args(*parts):
    return ", ".join(p for p in parts if p)


def _conv_args(p, in_ch, out) -> str:
    """The arguments every convolution shares: channels, kernel, stride, padding."""
    pad = p["padding"]
    return _args(str(in_ch), str(out or p["out_channels"]), "kernel_size=" + _lit(p["kernel"]),
                 _kw("stride", p["stride"], [1, 1]), None if pad == [0, 0] else "padding=" + _lit(pad))


def _more(*parts) -> str:
    rest = _args(*parts)
    return ", " + rest if rest else ""


def ctor(type_id: str, p: dict, in_ch, out_sym=None) -> str:
    """Source of ``nn.X(...)`` for one primitive; ``in_ch``/``out_sym`` are numbers or symbol names."""
    out = out_sym
    if type_id == "conv2d":
        return (f"nn.Conv2d({_conv_args(p, in_ch, out)}"
                f"{_more(_kw('dilation', p['dilation'], [1, 1]), _kw('groups', p['groups'], 1), _kw('bias', p['bias'], True))})")
    if type_id == "basic_conv":
        return (f"BasicConv2d({_conv_args(p, in_ch, out)}"
                f"{_more(_kw('eps', p['eps'], 0.001), _kw('batch_norm', p['batch_norm'], True))})")
    if type_id == "batchnorm2d":
        return f"nn.BatchNorm2d({_args(str(in_ch), _kw('eps', p['eps'], 1e-5), _kw('momentum', p['momentum'], 0.1), _kw('affine', p['affine'], True))})"
    if type_id == "lrn":
        return f"nn.LocalResponseNorm({_args(repr(p['size']), 'alpha=' + repr(p['alpha']), 'beta=' + repr(p['beta']), 'k=' + repr(p['k']))})"
    if type_id == "relu":
        return "nn.ReLU(inplace=True)" if p.get("inplace") else "nn.ReLU()"
    if type_id in ("sigmoid", "tanh", "gelu"):
        return {"sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()", "gelu": "nn.GELU()"}[type_id]
    if type_id in ("maxpool2d", "avgpool2d"):
        cls = "nn.MaxPool2d" if type_id == "maxpool2d" else "nn.AvgPool2d"
        extra = _kw("count_include_pad", p.get("count_include_pad", True), True) if type_id == "avgpool2d" else None
        return f"{cls}({_args(_lit(p['kernel']), 'stride=' + _lit(p['stride']), _kw('padding', p['padding'], [0, 0]), _kw('ceil_mode', p['ceil_mode'], False), extra)})"
    if type_id == "adaptive_avgpool2d":
        return f"nn.AdaptiveAvgPool2d({_lit(tuple(p['output_size']))})"
    if type_id == "dropout":
        return f"nn.Dropout(p={p['p']!r})"
    if type_id == "flatten":
        return "nn.Flatten(1)"
    if type_id == "linear":
        return f"nn.Linear({_args(str(in_ch), str(out or p['out_features']), _kw('bias', p['bias'], True))})"
    raise ValueError(f"no code emitter for block kind {type_id!r}")


OUT_PARAM = {"conv2d": "out_channels", "basic_conv": "out_channels", "linear": "out_features"}

BASIC_CONV_SOURCE = '''
class BasicConv2d(nn.Module):
    """Conv -> BatchNorm -> ReLU (torchvision's BasicConv2d); without batch norm the conv keeps its bias."""

    def __init__(self, in_channels: int, out_channels: int, eps: float = 0.001, batch_norm: bool = True,
                 **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=not batch_norm, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps) if batch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True)
'''
