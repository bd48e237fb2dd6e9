"""The composites of the efficient CNNs (issue 13) equal torchvision's modules: the same children (weights load
with strict=True), the same outputs, the same parameter count; analysis's MACs are FlopCounterMode's; exported
code builds the same network."""

import pytest
import torch
from torchvision.models import densenet, efficientnet, mobilenetv2, mobilenetv3, squeezenet
from torchvision.ops import SqueezeExcitation

from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from conftest import flops_macs
from exports import export_graph
from helpers import load_module, single

CASES = [
    ("inverted_residual", dict(out_channels=24, stride=2, expand_ratio=6), (16, 14, 14),
     lambda: mobilenetv2.InvertedResidual(16, 24, 2, 6)),
    ("inverted_residual", dict(out_channels=16, stride=1, expand_ratio=1), (16, 14, 14),
     lambda: mobilenetv2.InvertedResidual(16, 16, 1, 1)),
    ("inverted_residual", dict(out_channels=16, stride=1, expand_ratio=6), (16, 9, 9),
     lambda: mobilenetv2.InvertedResidual(16, 16, 1, 6)),
    ("fire", dict(squeeze=16, expand1x1=64, expand3x3=64), (96, 13, 13), lambda: squeezenet.Fire(96, 16, 64, 64)),
    ("squeeze_excitation", dict(squeeze_channels=8), (32, 7, 7), lambda: SqueezeExcitation(32, 8)),
    ("squeeze_excitation", dict(squeeze_channels=8, activation="silu", gate="hardsigmoid"), (32, 5, 5),
     lambda: SqueezeExcitation(32, 8, torch.nn.SiLU, torch.nn.Hardsigmoid)),
    ("dense_transition", dict(out_channels=64), (128, 14, 14), lambda: densenet._Transition(128, 64)),
    ("dense_block", dict(layers=3, growth_rate=8, bn_size=4), (16, 8, 8),
     lambda: densenet._DenseBlock(3, 16, 4, 8, 0.0)),
    ("mbconv", dict(out_channels=24, expanded_channels=96, kernel=3, stride=2, se_channels=4), (16, 14, 14),
     lambda: efficientnet.MBConv(efficientnet.MBConvConfig(6, 3, 2, 16, 24, 1), 0.0125,
                                 __import__("functools").partial(torch.nn.BatchNorm2d, eps=1e-5))),
    ("mbconv", dict(out_channels=16, expanded_channels=96, kernel=5, stride=1, se_channels=4,
                    stochastic_depth_prob=0.2), (16, 9, 9),
     lambda: efficientnet.MBConv(efficientnet.MBConvConfig(6, 5, 1, 16, 16, 1), 0.2, torch.nn.BatchNorm2d)),
    ("mbconv", dict(out_channels=40, expanded_channels=96, kernel=5, stride=2, activation="hardswish",
                    se_channels=24, se_activation="relu", se_gate="hardsigmoid", bn_eps=0.001, bn_momentum=0.01),
     (24, 14, 14),
     lambda: mobilenetv3.InvertedResidual(mobilenetv3.InvertedResidualConfig(24, 5, 96, 40, True, "HS", 2, 1, 1),
                                          __import__("functools").partial(torch.nn.BatchNorm2d, eps=0.001,
                                                                          momentum=0.01))),
    ("mbconv", dict(out_channels=16, kernel=3, stride=2, activation="relu", se_channels=8, se_activation="relu",
                    se_gate="hardsigmoid", bn_eps=0.001, bn_momentum=0.01), (16, 14, 14),
     lambda: mobilenetv3.InvertedResidual(mobilenetv3.InvertedResidualConfig(16, 3, 16, 16, True, "RE", 2, 1, 1),
                                          __import__("functools").partial(torch.nn.BatchNorm2d, eps=0.001,
                                                                          momentum=0.01))),
]


@pytest.mark.parametrize("kind,params,shape,make", CASES)
def test_equals_torchvisions_module(kind, params, shape, make, tmp_path):
    ref = make().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    g = single(kind, params, shape)
    a = analyze(g)
    assert not a.errors, a.errors
    net = compile_graph(g).eval()
    net.blk.load_state_dict(ref.state_dict(), strict=True)  # torchvision's children, key for key
    x = torch.randn(2, *shape)
    with torch.no_grad():
        want = ref(x)
        torch.testing.assert_close(net(x), want)
    assert a.blocks["blk"].params == sum(p.numel() for p in ref.parameters())
    assert a.blocks["blk"].macs == flops_macs(ref, x[:1])
    export_graph(g, "py", tmp_path / "m.py")
    mod = load_module(tmp_path / "m.py", f"mobile_{kind}")
    model = mod.build_model().eval()
    model.load_state_dict(net.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), want)


def test_depthwise_separable_costs_about_one_over_k_squared():
    g = single("depthwise_separable", dict(out_channels=64, kernel=3), (32, 16, 16))
    dense = single("conv2d", dict(out_channels=64, kernel=3, padding=1, bias=False), (32, 16, 16))
    sep, full = analyze(g).blocks["blk"], analyze(dense).blocks["blk"]
    assert sep.out_shape == full.out_shape == (64, 16, 16)
    assert sep.macs == 16 * 16 * (32 * 9 + 32 * 64)  # depthwise + pointwise
    assert sep.macs / full.macs == pytest.approx(1 / 64 + 1 / 9)
    net = compile_graph(g).eval()
    assert sep.params == sum(p.numel() for p in net.parameters())
