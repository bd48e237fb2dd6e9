"""Exported composite classes are built from their arguments: instantiated with other widths, they equal
torchvision's modules with the same widths (names, shapes, outputs), and one class serves every instance of a
kind and structure, whatever its widths."""
import importlib
import re

import pytest
import torch

import templates
from builder.core.graph import Graph
from exports.pytorch import generate
from helpers import load_module

tv_googlenet = importlib.import_module("torchvision.models.googlenet")  # the module, not the function
tv_inception = importlib.import_module("torchvision.models.inception")


def load(src, tmp_path, name):
    path = tmp_path / f"{name}.py"
    path.write_text(src)
    return load_module(path, name)


@pytest.fixture(scope="module")
def v3(tmp_path_factory):
    return load(generate(templates.build("inception_v3")), tmp_path_factory.mktemp("v3"), "v3")


@pytest.fixture(scope="module")
def googlenet(tmp_path_factory):
    return load(generate(templates.build("googlenet")), tmp_path_factory.mktemp("g"), "g")


def same_module(ours, ref, in_shape):
    """Same parameter and buffer names and shapes; same outputs once ours has ref's weights."""
    a, b = ours.state_dict(), ref.state_dict()
    assert {k: tuple(v.shape) for k, v in a.items()} == {k: tuple(v.shape) for k, v in b.items()}
    ours.load_state_dict(b, strict=True)
    ours.eval(), ref.eval()
    x = torch.randn(2, *in_shape)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


# torchvision's modules at widths other than the template's (the Inception-v3 paper's and torchvision's
# own other instances, and made-up ones), beside the same call of the exported class
V3_CASES = [
    ("InceptionA", dict(in_channels=192, pool_features=64), lambda: tv_inception.InceptionA(192, pool_features=64),
     (192, 35, 35)),
    ("InceptionA", dict(in_channels=100, pool_features=7), lambda: tv_inception.InceptionA(100, pool_features=7),
     (100, 9, 9)),
    ("InceptionB", dict(in_channels=120), lambda: tv_inception.InceptionB(120), (120, 17, 17)),
    ("InceptionC", dict(in_channels=768, channels_7x7=160), lambda: tv_inception.InceptionC(768, channels_7x7=160),
     (768, 9, 9)),
    ("InceptionC", dict(in_channels=50, channels_7x7=20), lambda: tv_inception.InceptionC(50, channels_7x7=20),
     (50, 9, 9)),
    ("InceptionD", dict(in_channels=300), lambda: tv_inception.InceptionD(300), (300, 17, 17)),
    ("InceptionE", dict(in_channels=1000), lambda: tv_inception.InceptionE(1000), (1000, 8, 8)),
    ("InceptionAuxV3", dict(in_channels=500, num_classes=10), lambda: tv_inception.InceptionAux(500, 10),
     (500, 17, 17)),
]


@pytest.mark.parametrize("cls,kwargs,make,shape", V3_CASES)
def test_inception_v3_classes_equal_torchvision_at_other_widths(v3, cls, kwargs, make, shape):
    kwargs = dict(kwargs)
    ours = getattr(v3, cls)(kwargs.pop("in_channels"), **kwargs)
    same_module(ours, make(), shape)


@pytest.mark.parametrize("row", [(192, 64, 96, 128, 16, 32, 32), (480, 192, 96, 208, 16, 48, 64),
                                 (832, 384, 192, 384, 48, 128, 128), (10, 3, 4, 5, 6, 7, 8)])
def test_googlenet_inception_equals_torchvision_for_any_row_of_table_1(googlenet, row):
    ours = googlenet.Inception(*row)
    same_module(ours, tv_googlenet.Inception(*row, conv_block=None), (row[0], 14, 14))


def test_googlenet_aux_equals_torchvision(googlenet):
    ours = googlenet.InceptionAux(528, num_classes=10)
    same_module(ours, tv_googlenet.InceptionAux(528, 10, dropout=0.7), (528, 14, 14))


def test_each_width_is_written_as_the_parameter_it_came_from(v3):
    """All of ch1x1, ch5x5 and dblred are 64 in Inception-v3: the exporter once bound the wrong one."""
    m = v3.InceptionA(192, ch1x1=80)
    assert m.branch1x1.conv.out_channels == 80
    assert m.branch5x5_2.conv.out_channels == 64 and m.branch3x3dbl_1.conv.in_channels == 192
    assert m.branch3x3dbl_1.conv.out_channels == 64 and m.branch5x5_2.conv.in_channels == 48
    src = generate(templates.build("inception_v3"))
    assert "self.branch5x5_2 = BasicConv2d(ch5x5red, ch5x5, " in src
    assert "self.branch3x3dbl_1 = BasicConv2d(in_channels, dblred, kernel_size=1)" in src
    aux = src[src.index("class InceptionAuxV3"):]
    assert "BasicConv2d(128, 768, kernel_size=5)" in aux and "nn.Linear(768, num_classes)" in aux  # fixed widths


def test_a_grouped_composite_used_16_times_with_4_widths_is_one_class(tmp_path):
    """ResNeXt bottlenecks (groups=32, 4 per stage, planes 64..512): one class, four widths as arguments."""
    g = Graph("resnext stack")
    prev = g.add_block("input", {"channels": 64, "height": 16, "width": 16}, "input")
    for stage, planes in enumerate((64, 128, 256, 512)):
        for i in range(4):
            bid = g.add_block("resnet_bottleneck", {"planes": planes, "groups": 32, "base_width": 4,
                                                    "shortcut": "projection"}, f"layer{stage + 1}.{i}")
            g.connect(prev, bid)
            prev = bid
    g.add_block("classifier_head", {"num_classes": 10, "dropout": 0.0}, "head")
    g.add_block("output", {}, "out")
    g.connect(prev, "head")
    g.connect("head", "out")
    src = generate(g)
    assert src.count("class Bottleneck") == 1
    assert len(re.findall(r"Bottleneck\(\d+, planes=\d+", src)) == 16
    assert "groups=groups" in src and "width = planes * base_width // 64 * groups" in src
    mod = load(src, tmp_path, "resnext")
    from builder.backend.compiler import compile_graph
    net = compile_graph(g).eval()
    model = mod.build_model().eval()
    model.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))
    tv = torchvision_bottleneck(256, 128)
    same_module(mod.Bottleneck(256, planes=128, groups=32, base_width=4, downsample=True), tv, (256, 8, 8))


def torchvision_bottleneck(inplanes, planes):
    from torch import nn
    from torchvision.models.resnet import Bottleneck
    down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))
    return Bottleneck(inplanes, planes, downsample=down, groups=32, base_width=4)


@pytest.mark.parametrize("name,cls", [("resnet18", "BasicBlock"), ("resnet50", "Bottleneck"),
                                      ("resnext50_32x4d", "Bottleneck")])
def test_resnets_write_one_block_class_with_an_optional_projection(tmp_path, name, cls):
    """As torchvision: one class per block kind; the projection shortcut is an argument (None without it)."""
    src = generate(templates.build(name))
    assert len(re.findall(rf"class {cls}\d*\(nn.Module\)", src)) == 1
    assert "downsample: bool = False" in src and "self.downsample = None" in src
    assert len(re.findall(r"downsample=True", src)) == (3 if name == "resnet18" else 4)
    mod = load(src, tmp_path, name)
    from torch import nn
    from torchvision.models import resnet as tv
    block = getattr(tv, cls)
    extra = {"groups": 32, "base_width": 4} if name.startswith("resnext") else {}
    exp = 1 if cls == "BasicBlock" else 4
    plain = getattr(mod, cls)(256, planes=256 // exp, **extra)  # no projection
    same_module(plain, block(256, 256 // exp, **extra), (256, 8, 8))
    down = nn.Sequential(nn.Conv2d(64, 128 * exp, 1, stride=2, bias=False), nn.BatchNorm2d(128 * exp))
    projected = getattr(mod, cls)(64, planes=128, stride=2, downsample=True, **extra)
    same_module(projected, block(64, 128, stride=2, downsample=down, **extra), (64, 8, 8))


def test_efficientnets_blocks_share_a_class_per_structure_whatever_their_stochastic_depth(tmp_path):
    """Float parameters (stochastic depth, batch-norm eps) are constructor arguments, as torchvision's MBConv
    takes them, and a squeeze-and-excitation part is one class, not one per path: EfficientNet-B0's 16 MBConv
    blocks are three classes (no expansion; expansion; expansion with the residual), its SE parts two."""
    from torchvision.models import efficientnet_b0
    src = generate(templates.build("efficientnet_b0"))
    classes = re.findall(r"^class (\w+)\(", src, re.M)
    assert [c for c in classes if c.startswith("Mbconv")] == ["Mbconv", "Mbconv2", "Mbconv3"]
    assert len([c for c in classes if c.startswith("Block")]) == 2
    assert "stochastic_depth_prob: float = 0.0" in src and "self.stochastic_depth = StochasticDepth(" \
        "stochastic_depth_prob, 'row')" in src
    assert src.count("Mbconv3(") == 10 and "stochastic_depth_prob=0.1625" in src
    mod = load(src, tmp_path, "eff")
    ours, ref = mod.build_model(), efficientnet_b0()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)
    drops = [m.p for m in ours.modules() if type(m).__name__ == "StochasticDepth"]  # each instance its own
    assert drops == [m.stochastic_depth.p for m in ref.modules() if type(m).__name__ == "MBConv" and
                     m.use_res_connect] and len(set(drops)) == 9
