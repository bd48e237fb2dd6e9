"""Constructor expressions of the primitive blocks, as readable PyTorch source.

Each kind's arguments come from its BlockSpec's TorchCall. Channel arguments may be symbols (names of constructor
arguments) instead of numbers; every other value is written with ``repr()`` of an already validated number,
bool or choice, so no user text reaches the code.
"""
from __future__ import annotations


from blocks import REGISTRY
from blocks.spec import Sym


def ctor(type_id: str, p: dict, in_ch, out_sym=None) -> str:
    """Source of ``nn.X(...)`` for one primitive, from the kind's own torch description (the one the compiler
    builds the module from); ``in_ch``/``out_sym`` are numbers or names of constructor arguments."""
    spec = REGISTRY[type_id]
    if spec.torch is None:
        raise ValueError(f"block kind {type_id!r} has no torch module")
    as_sym = (lambda v: Sym(v) if isinstance(v, str) else v)
    return spec.torch.source(p, as_sym(in_ch), None if out_sym is None else as_sym(out_sym))


def width_param(type_id: str) -> str | None:
    """The parameter that sets a kind's output width (``out_channels``, ``out_features``), if any."""
    spec = REGISTRY.get(type_id)
    return spec.width_param if spec is not None else None


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
