"""The general tensor operations CNNs use, as kinds of their own (issue 24): a constant operand (a number, or
one per channel), a clamp to any range, padding by any mode, a split along the channels, a resize by whole
factors. Each is checked against torch, then imported from a model through both paths: the PyTorch path makes
the kind's block (nothing captured) and the ONNX path the same blocks, with onnxruntime's outputs."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blocks import REGISTRY
from builder.backend.compiler import compile_graph
from builder.core.ir import lower
from builder.importers import import_module, import_source
from helpers import onnxruntime_output, single


def _through_onnx(model, shape, folder, name="model"):
    """``model`` written by torch.onnx (opset 17, any batch) and imported back: the import and the file."""
    f = folder / f"{name}.onnx"
    torch.onnx.export(model, torch.zeros(1, *shape), str(f), opset_version=17, dynamo=False,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    return import_source(str(f), shape, contained=False), f


def _runs_as(imported, x, want, rtol, atol):
    """The imported network with its weights gives ``want`` for ``x``."""
    net = compile_graph(imported.graph).eval()
    net.load_state_dict(imported.state)
    with torch.no_grad():
        torch.testing.assert_close(net(x), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("kind, params, fn", [
    ("scalar_op", {"op": "add", "value": 0.5}, lambda t: t + 0.5),
    ("scalar_op", {"op": "rsub", "value": 1.0}, lambda t: 1 - t),
    ("scalar_op", {"op": "div", "value": 6.0}, lambda t: t / 6),
    ("scalar_op", {"op": "rdiv", "value": 2.0}, lambda t: 2 / t),
    ("scalar_op", {"op": "pow", "value": 2.0}, lambda t: t ** 2),
    ("clamp", {"low": -0.5, "high": 2.0}, lambda t: t.clamp(-0.5, 2)),
    ("clamp", {"low": 1.0, "high": 3.4028234663852886e38}, lambda t: t.clamp(min=1)),
    ("pad2d", {"horizontal": [1, 2], "vertical": [0, 3], "mode": "reflect"},
     lambda t: F.pad(t, (1, 2, 0, 3), mode="reflect")),
    ("pad2d", {"horizontal": [2, 0], "vertical": [1, 1], "mode": "replicate"},
     lambda t: F.pad(t, (2, 0, 1, 1), mode="replicate")),
    ("pad2d", {"horizontal": [1, 1], "vertical": [2, 0], "mode": "constant", "value": -1.5},
     lambda t: F.pad(t, (1, 1, 2, 0), value=-1.5)),
])
def test_a_kind_computes_what_torch_does(kind, params, fn):
    net = compile_graph(single(kind, params, (3, 6, 5))).eval()
    x = torch.randn(2, 3, 6, 5) + 3
    with torch.no_grad():
        torch.testing.assert_close(net(x), fn(x))


def test_a_per_channel_scale_is_a_learned_weight():
    net = compile_graph(single("channel_affine", {"op": "mul"}, (3, 4, 4)))
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == [("blk.weight", (3, 1, 1))]
    with torch.no_grad():
        net.blk.weight.copy_(torch.tensor([1.0, 2.0, -1.0]).view(3, 1, 1))
        x = torch.randn(2, 3, 4, 4)
        torch.testing.assert_close(net(x), x * torch.tensor([1.0, 2.0, -1.0]).view(1, 3, 1, 1))


class Ops(nn.Module):
    """Every operation above in one network, as a model writes them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pad = nn.ReflectionPad2d((1, 0, 2, 1))
        self.unused = nn.Parameter(torch.ones(2))  # a tensor the forward never reads
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.conv(x) * 0.17 + 1.0
        x = torch.clamp(x, -1.0, 2.0) / 6
        a, b = torch.split(self.pad(x), [3, 5], dim=1)
        x = torch.cat([F.pad(b, (1, 1, 1, 1), mode="replicate"), F.pad(a, (1, 1, 1, 1))], 1)
        x = self.up(1 - x)
        return self.fc(x.mean((2, 3)))


def test_the_pytorch_path_makes_their_blocks():
    model = Ops().eval()
    imported = import_module(model, (3, 8, 8))
    kinds = [n.kind for n in lower(imported.graph).nodes]
    assert REGISTRY.capture_kind() not in kinds  # torch.split is a capture: everything else has a kind
    for kind in ("scalar_op", "clamp", "pad2d", "zeropad2d", "upsample", "channel_slice"):
        assert kind in kinds, kinds
    assert imported.notes == ["unused: not read by the model's forward, left out"]
    assert "unused" not in imported.state


def test_a_model_that_reads_its_own_tensor_is_captured_whole():
    """A parameter the model's own forward reads (no module holds it) has no block: the model is still imported
    exactly, as one captured block, and says why."""
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.gamma = nn.Parameter(torch.rand(4, 1, 1))

        def forward(self, x):
            return self.conv(x) * self.gamma
    model = Scaled().eval()
    imported = import_module(model, (3, 8, 8))
    assert [(b.id, b.type) for b in imported.graph.blocks()] == [("input", "input"), ("model", REGISTRY.capture_kind()),
                                                                ("output", "output")]
    assert imported.notes[0].startswith("the whole model is one captured block: gamma: a tensor attribute (gamma)")
    assert list(imported.state) == ["model.gamma", "model.conv.weight", "model.conv.bias"]


def test_the_onnx_path_makes_their_blocks_and_equals_onnxruntime(tmp_path):
    imported, f = _through_onnx(Ops().eval(), (3, 8, 8), tmp_path)
    kinds = [n.kind for n in lower(imported.graph).nodes]
    for kind, count in (("scalar_op", 4), ("clamp", 1), ("pad2d", 2), ("zeropad2d", 1), ("channel_slice", 2),
                        ("upsample", 1)):
        assert kinds.count(kind) == count, (kind, kinds)
    x = torch.randn(3, 3, 8, 8)
    _runs_as(imported, x, onnxruntime_output(f, x), 1e-4, 1e-5)


def test_an_onnx_constant_per_channel_becomes_a_learned_scale(tmp_path):
    class LayerScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.gamma = nn.Parameter(torch.tensor([0.5, 2.0, -1.0, 3.0]).view(4, 1, 1))

        def forward(self, x):
            return self.conv(x) * self.gamma + self.gamma
    f = tmp_path / "ls.onnx"
    torch.onnx.export(LayerScale().eval(), torch.zeros(1, 3, 4, 4), str(f), dynamo=False, input_names=["input"])
    imported = import_source(str(f), (3, 4, 4), contained=False)
    affine = [b for b in imported.graph.blocks() if b.type == "channel_affine"]
    assert [b.params["op"] for b in affine] == ["mul", "add"]
    assert imported.state[f"{affine[0].id}.weight"].flatten().tolist() == [0.5, 2.0, -1.0, 3.0]


class Activations(nn.Module):
    """The activations, normalisations and layouts of the second batch of kinds, in one network."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.prelu = nn.PReLU(16)
        self.norm = nn.InstanceNorm2d(16, affine=True)
        self.shuffle = nn.PixelShuffle(2)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(4, 6)

    def forward(self, x):
        x = F.elu(self.prelu(self.conv(x)), alpha=0.5)
        x = F.gelu(F.selu(F.celu(self.norm(x))), approximate="tanh")
        x = F.softplus(self.shuffle(x))
        x = torch.flatten(self.pool(x), 1) + x.amax((2, 3))
        return F.log_softmax(self.fc(x), dim=1)


KINDS = ("prelu", "elu", "celu", "selu", "gelu", "instancenorm2d", "pixel_shuffle", "softplus", "adaptive_maxpool2d",
         "log_softmax")


def _randomised_activations():
    torch.manual_seed(1)
    model = Activations().eval()
    with torch.no_grad():
        model.prelu.weight.uniform_(-0.5, 0.5)
        model.norm.weight.uniform_(0.5, 2)
        model.norm.bias.normal_()
    return model


def test_the_second_batch_imports_through_both_paths(tmp_path):
    model = _randomised_activations()
    imported = import_module(model, (3, 8, 8))
    kinds = [n.kind for n in lower(imported.graph).nodes]
    assert REGISTRY.capture_kind() not in kinds and all(k in kinds for k in KINDS), kinds
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        _runs_as(imported, x, model(x), 1e-5, 1e-6)
    back, f = _through_onnx(model, (3, 8, 8), tmp_path)
    kinds = [n.kind for n in lower(back.graph).nodes]
    # opset 17 writes the tanh GELU as its arithmetic (x * x * x, tanh, ...): those blocks, not a GELU
    assert all(k in kinds for k in KINDS if k != "gelu") and "tanh" in kinds, kinds
    _runs_as(back, x, onnxruntime_output(f, x), 1e-4, 1e-5)


LAYOUT = ("permute", "layernorm", "reshape", "softmax", "reduce_axes")


def test_layouts_and_reductions_import_through_both_paths(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.norm = nn.LayerNorm(8)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = self.norm(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            x = x.reshape(x.size(0), 8, 36).unsqueeze(1).squeeze(1)
            x = torch.softmax(x, dim=-1).sum(2) + x.mean(2)
            return self.fc(x)
    torch.manual_seed(0)
    model = Net().eval()
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 2)
    imported = import_module(model, (3, 6, 6))
    kinds = [n.kind for n in lower(imported.graph).nodes]
    assert REGISTRY.capture_kind() not in kinds and all(k in kinds for k in LAYOUT), kinds
    back, f = _through_onnx(model, (3, 6, 6), tmp_path)
    kinds = [n.kind for n in lower(back.graph).nodes]
    # the ONNX file's Transpose, LayerNormalization, Transpose is the channels' layer norm's pattern
    assert all(k in kinds for k in ("layernorm2d", "reshape", "softmax", "reduce_axes")), kinds
    x = torch.randn(3, 3, 6, 6)
    for path in (imported, back):
        _runs_as(path, x, onnxruntime_output(f, x), 1e-4, 1e-5)


def test_a_sequence_input_is_c_by_l(tmp_path):
    """An ONNX model of N x C x L sequences imports with a C x L input (its flatten's features are C x L); a
    C-vector model with a C input."""
    from builder.core.analysis import analyze
    seq = nn.Sequential(nn.Conv1d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8, 2)).eval()
    f = tmp_path / "seq.onnx"
    torch.onnx.export(seq, torch.zeros(1, 4, 10), str(f), dynamo=False, input_names=["input"])
    imported = import_source(str(f), contained=False)  # a 1-D convolution has no kind: captured, exactly
    assert [b.type for b in imported.graph.blocks()] == ["input", REGISTRY.capture_kind(), "relu", "flatten",
                                                          "linear", "output"]
    x = torch.randn(3, 4, 10)
    _runs_as(imported, x, seq(x), 1e-5, 1e-6)
    mlp = nn.Sequential(nn.Linear(5, 7), nn.ELU(), nn.Linear(7, 3), nn.LogSoftmax(1)).eval()
    f = tmp_path / "mlp.onnx"
    torch.onnx.export(mlp, torch.zeros(1, 5), str(f), dynamo=False, input_names=["input"])
    g = import_source(str(f), contained=False).graph
    assert analyze(g).blocks["input"].out_shape == (5,)
    assert [b.type for b in g.blocks()] == ["input", "linear", "elu", "linear", "log_softmax", "output"]


def test_resizing_to_any_size_imports_through_both_paths(tmp_path):
    class Net(nn.Module):
        def forward(self, x):
            a = F.interpolate(x, size=(7, 9), mode="bicubic", align_corners=False)
            b = F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)
            c = F.interpolate(x, scale_factor=1.5, mode="nearest")  # 5x6 to 7x9, mapped by 1.5, not 7/5
            return a + b + c
    model = Net().eval()
    imported = import_module(model, (2, 5, 6))
    resizes = [n.params for n in lower(imported.graph).nodes if n.kind == "resize"]
    assert [(p["size"], p["scale"], p["mode"], p["align_corners"]) for p in resizes] == [
        ([7, 9], [], "bicubic", False), ([7, 9], [], "bilinear", True), ([7, 9], [1.5, 1.5], "nearest", False)]
    x = torch.randn(2, 2, 5, 6)
    _runs_as(imported, x, model(x), 1.3e-6, 1e-5)  # float32's own tolerances
    back, f = _through_onnx(model, (2, 5, 6), tmp_path)
    assert sum(1 for n in lower(back.graph).nodes if n.kind == "resize") == 3
    _runs_as(back, x, onnxruntime_output(f, x), 1e-4, 1e-5)


def test_two_tensors_elementwise_import_through_both_paths(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)

        def forward(self, x):
            a, b = self.a(x), torch.sigmoid(self.b(x)) + 0.5
            return torch.maximum(a, b) - torch.minimum(a, b) / b
    torch.manual_seed(0)
    model = Net().eval()
    imported = import_module(model, (3, 8, 8))
    ops = [n.params["op"] for n in lower(imported.graph).nodes if n.kind == "binary"]
    assert ops == ["max", "min", "div", "sub"]
    back, _ = _through_onnx(model, (3, 8, 8), tmp_path)
    assert [n.params["op"] for n in lower(back.graph).nodes if n.kind == "binary"] == ["max", "min", "div", "sub"]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        for path in (imported, back):
            _runs_as(path, x, model(x), 1e-5, 1e-6)


def test_slices_of_any_dim_import_through_both_paths(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            x = self.conv(x)
            return x[:, :5] * x[:, 2:7, 1:-1:2, ::3].mean((2, 3), keepdim=True)
    model = Net().eval()
    imported = import_module(model, (3, 9, 9))
    kinds = [n.kind for n in lower(imported.graph).nodes]
    assert kinds.count("channel_slice") == 2 and kinds.count("slice") == 2, kinds
    back, _ = _through_onnx(model, (3, 9, 9), tmp_path)
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        for path in (imported, back):
            assert REGISTRY.capture_kind() not in [n.kind for n in lower(path.graph).nodes]
            _runs_as(path, x, model(x), 1e-5, 1e-6)


def test_joins_and_splits_along_other_dims_import_through_both_paths(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            x = self.conv(x)
            top, bottom = torch.split(x, [2, 4], dim=2)
            return torch.cat([bottom, top * 2], dim=2) + torch.cat([x[:, :, :, 3:], x[:, :, :, :3]], dim=-1)
    model = Net().eval()
    imported = import_module(model, (3, 6, 6))
    kinds = [n.kind for n in lower(imported.graph).nodes]
    assert kinds.count("concat_axis") == 2 and kinds.count("slice") == 4 and REGISTRY.capture_kind() not in kinds
    back, _ = _through_onnx(model, (3, 6, 6), tmp_path)
    assert [n.kind for n in lower(back.graph).nodes].count("concat_axis") == 2
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        for path in (imported, back):
            _runs_as(path, x, model(x), 1e-5, 1e-6)


def test_a_clip_input_is_c_by_d_by_h_by_w_and_a_video_cnn_imports_exactly():
    """torchvision's R3D-18 (3-D convolutions over a clip of frames) imports with a C x D x H x W input: what no kind
    stands for (Conv3d, BatchNorm3d, AdaptiveAvgPool3d) is captured, with torchvision's params, MACs and outputs."""
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.models.video import r3d_18

    from builder.core.analysis import analyze
    torch.manual_seed(0)
    model = r3d_18(num_classes=5).eval()
    imported = import_module(model, (3, 4, 32, 32))
    a = analyze(imported.graph)
    assert a.blocks["input"].out_shape == (3, 4, 32, 32) and imported.graph.block("input").params["depth"] == 4
    kinds = [b.type for b in imported.graph.blocks()]
    assert kinds.count(REGISTRY.capture_kind()) == 9 and kinds[-2:] == ["linear", "output"]  # 8 blocks, the pool
    assert [n.split(":")[0] for n in imported.notes] == ["stem.0", "stem.1"] + [
        f"layer{i}.{j}" for i in range(1, 5) for j in range(2)] + ["avgpool"]  # the stem's group listed too
    with FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 3, 4, 32, 32))
    assert a.inference.params == sum(p.numel() for p in model.parameters())
    assert a.inference.macs == fc.get_total_flops() // 2
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        _runs_as(imported, x, model(x), 1e-5, 1e-5)
