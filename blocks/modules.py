"""Torch modules used by the block factories. Imported only when a graph is compiled."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicConv2d(nn.Module):
    """Conv -> BatchNorm -> ReLU, with torchvision's child names (``conv``, ``bn``) so weights load as-is.

    Without batch norm (the GoogLeNet paper) the convolution keeps its bias and there is no ``bn`` child.
    """

    def __init__(self, in_channels: int, out_channels: int, eps: float = 0.001, batch_norm: bool = True,
                 **conv_kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=not batch_norm, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True)


class LayerNorm2d(nn.LayerNorm):
    """Layer normalisation over the channels at each position of an NCHW map (torchvision's ConvNeXt
    LayerNorm2d: the same weight and bias as nn.LayerNorm(channels))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class StochasticDepth(nn.Module):
    """Drops its input (a residual branch) while training, per sample ("row") or for the whole batch, and scales
    what survives by 1 / (1 - p); the identity in eval (torchvision.ops.StochasticDepth)."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        if self.p < 1.0:
            noise.div_(1.0 - self.p)
        return x * noise


class ChannelSlice(nn.Module):
    """Channels ``start`` to ``stop - 1`` of an NCHW tensor (a view)."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]


class ChannelShuffle(nn.Module):
    """Interleaves the channels of ``groups`` groups (ShuffleNet), written with view and transpose as torchvision
    writes it, so ONNX and TorchScript take it (nn.ChannelShuffle has no ONNX export)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return x.view(n, c, h, w)


class Permute(nn.Module):
    """Reorders the dimensions (torchvision's Permute)."""

    def __init__(self, dims) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block with torchvision's children (CNBlock): a 7x7 depthwise conv, LayerNorm over the
    channels, Linear to 4x the channels, GELU, Linear back, a learned per-channel scale, stochastic depth, and
    the input added."""

    def __init__(self, dim: int, layer_scale: float = 1e-6, stochastic_depth_prob: float = 0.0,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim), Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=eps), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stochastic_depth(self.layer_scale * self.block(x)) + x


# Helper classes another one builds (exported files define them first)
NEEDS = {"ConvNeXtBlock": ("Permute", "StochasticDepth")}


class ScalarOp(nn.Module):
    """``x`` and a constant number: ``x + v``, ``x - v``, ``v - x``, ``x * v``, ``x / v``, ``v / x``, ``x ** v``."""

    def __init__(self, op: str, value: float) -> None:
        super().__init__()
        self.op, self.value = op, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.value
        if self.op == "add":
            return x + v
        if self.op == "sub":
            return x - v
        if self.op == "rsub":
            return v - x
        if self.op == "mul":
            return x * v
        if self.op == "div":
            return x / v
        if self.op == "rdiv":
            return v / x
        return x ** v

    def extra_repr(self) -> str:
        return f"op={self.op!r}, value={self.value}"


class ChannelAffine(nn.Module):
    """A learned number per channel, multiplied (a layer scale) or added (a bias) to an N x C x H x W tensor."""

    def __init__(self, channels: int, op: str = "mul") -> None:
        super().__init__()
        self.op = op
        self.weight = nn.Parameter(torch.ones(channels, 1, 1) if op == "mul" else torch.zeros(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight if self.op == "mul" else x + self.weight


class Pad2d(nn.Module):
    """Pads the last two axes by ``(left, right, top, bottom)``: a constant, the reflection or the edge."""

    def __init__(self, padding, mode: str = "constant", value: float = 0.0) -> None:
        super().__init__()
        self.padding, self.mode, self.value = tuple(padding), mode, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant":
            return F.pad(x, self.padding, value=self.value)
        return F.pad(x, self.padding, mode=self.mode)


class Reshape(nn.Module):
    """Each sample to ``shape`` (the batch dimension kept): ``x.reshape(x.shape[0], *shape)``."""

    def __init__(self, shape) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Reduce(nn.Module):
    """The mean, sum, largest or smallest value over dimensions ``dims`` (never the batch's)."""

    def __init__(self, op: str, dims, keepdim: bool = False) -> None:
        super().__init__()
        self.op, self.dims, self.keepdim = op, tuple(dims), keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "mean":
            return x.mean(self.dims, keepdim=self.keepdim)
        if self.op == "sum":
            return x.sum(self.dims, keepdim=self.keepdim)
        return (x.amax if self.op == "max" else x.amin)(self.dims, keepdim=self.keepdim)


class Binary(nn.Module):
    """Two tensors, elementwise (broadcast): ``a - b``, ``a / b``, ``a ** b``, the larger or the smaller."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.op == "sub":
            return a - b
        if self.op == "div":
            return a / b
        if self.op == "pow":
            return a ** b
        return torch.maximum(a, b) if self.op == "max" else torch.minimum(a, b)


class Slice(nn.Module):
    """Every ``step``-th position from ``start`` to ``stop`` along ``dim`` (a view): ``x[:, :, 1:7:2]``."""

    def __init__(self, dim: int, start: int, stop: int, step: int = 1) -> None:
        super().__init__()
        self.dim, self.start, self.stop, self.step = dim, start, stop, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[(slice(None),) * self.dim + (slice(self.start, self.stop, self.step),)]


class Cat(nn.Module):
    """Its inputs joined along ``dim`` (the channels' join is the concat block's ``torch.cat([...], 1)``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, self.dim)
