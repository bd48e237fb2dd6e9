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
