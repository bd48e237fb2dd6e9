"""The ONNX importer's exact fallback: an operator no kind stands for (CumSum, MatMul with a weight, Abs, Sqrt) or
whose attributes no kind's rule reads becomes a captured block with the operator's exact computation. It keeps the
file's weights as trainable parameters under their own names, and it compiles, trains, round-trips through the
project file and exports (PyTorch and ONNX) like any block. What cannot be computed exactly for any batch is
refused with one message naming the node."""
from pathlib import Path

import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from blocks import REGISTRY
from builder.backend.compiler import compile_graph
from builder.core.analysis import analyze
from builder.core.errors import ModelImportError
from builder.importers import import_source
from builder.importers.onnx_model import import_onnx
from exports import export_graph
from helpers import load_module, onnxruntime_output, reloaded

KIND = REGISTRY.capture_kind()


class Odd(nn.Module):
    """Kinds (conv, relu, resize, slice) around operators no kind stands for: a running sum, a learned matrix
    product along the width, abs and sqrt."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.proj = nn.Parameter(torch.randn(12, 12) * 0.3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = torch.cumsum(x, 2) / 12
        x = F.interpolate(x, scale_factor=1.5, mode="bicubic", align_corners=False)
        x = x[:, :, :12, :12] @ self.proj
        return (x.abs() + 1e-3).sqrt()


def _model():
    torch.manual_seed(0)
    return Odd().eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    f = tmp_path_factory.mktemp("opaque") / "odd.onnx"
    torch.onnx.export(_model(), torch.zeros(1, 3, 8, 8), str(f), opset_version=17, dynamo=False,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    return f


@pytest.fixture(scope="module")
def imported(exported):
    return import_source(str(exported), (3, 8, 8), contained=False)


def test_operators_without_a_kind_become_captured_blocks_listed_in_the_notes(imported):
    kinds = {b.id: b.type for b in imported.graph.blocks()}
    assert [b for b, k in kinds.items() if k == KIND] == ["cumsum", "matmul", "abs", "sqrt"]
    assert kinds["conv"] == "conv2d" and kinds["resize"] == "resize"  # the kinds still map what they can
    assert imported.notes == [f"{b}: ONNX {op} captured (no block kind for this operator)"
                              for b, op in (("cumsum", "CumSum"), ("matmul", "MatMul"), ("abs", "Abs"),
                                            ("sqrt", "Sqrt"))]
    assert imported.graph.block("matmul").params["label"] == "MatMul"


def test_the_files_weight_is_a_trainable_parameter_under_its_own_name(imported):
    assert list(imported.state) == ["conv.weight", "conv.bias", "matmul.proj"]
    torch.testing.assert_close(imported.state["matmul.proj"], _model().proj.detach())
    net = compile_graph(imported.graph)
    params = dict(net.named_parameters())
    assert params["matmul.proj"].requires_grad and params["matmul.proj"].shape == (12, 12)


def test_outputs_params_and_macs_are_exact(imported, exported):
    net = compile_graph(imported.graph).eval()
    net.load_state_dict(imported.state)
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x), _model()(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net(x), onnxruntime_output(exported, x), rtol=1e-5, atol=1e-5)
    a = analyze(imported.graph)
    assert a.inference.params == sum(p.numel() for p in _model().parameters()) == 224 + 144
    assert a.blocks["matmul"].params == 144 and a.blocks["cumsum"].params == 0
    with FlopCounterMode(display=False) as fc:
        torch.zeros(1, 8, 12, 12) @ torch.zeros(12, 12)
    assert a.blocks["matmul"].macs == fc.get_total_flops() // 2 == 8 * 12 * 12 * 12


def test_it_trains_round_trips_and_exports_like_any_block(imported, tmp_path):
    g, net = reloaded(imported, tmp_path / "odd.json")
    model = _model()
    x = torch.randn(4, 3, 8, 8)
    net.train(), model.train()
    for m in (net, model):  # two steps of SGD: the same gradients through the captured operators
        opt = torch.optim.SGD(m.parameters(), lr=0.05)
        for step in range(2):
            opt.zero_grad()
            (m(x + step) ** 2).mean().backward()
            opt.step()
    got = net.state_dict()
    torch.testing.assert_close(got["matmul.proj"], model.proj.detach(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got["conv.weight"], model.conv.weight.detach(), rtol=1e-4, atol=1e-6)
    assert not torch.equal(got["matmul.proj"], _model().proj.detach())  # it did learn
    net.eval(), model.eval()
    files = export_graph(g, "py", tmp_path / "odd.py", weights=net.state_dict())
    text = files[0].read_text()
    assert "class MatMul(nn.Module):" in text and "class CumSum(nn.Module):" in text
    rebuilt = load_module(files[0], "exported_opaque").build_model(weights=str(files[1])).eval()
    onnx_file = export_graph(g, "onnx", tmp_path / "odd_again.onnx", weights=net.state_dict())[0]
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(onnxruntime_output(onnx_file, x), model(x), rtol=1e-4, atol=1e-5)


def _one_node(tmp_path: Path, op: str, shape, out_shape, inputs=(), initializers=(), **attrs) -> Path:
    """A file of one ``op`` node on an input of ``shape`` (any batch), its other inputs constants."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [f"d{i}" for i in range(len(shape) + 1)]
                                      if out_shape is None else list(out_shape))
    node = helper.make_node(op, ["x", *inputs], ["y"], name=f"/block/{op}", **attrs)
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], list(initializers)),
                              opset_imports=[helper.make_opsetid("", 17)])
    f = tmp_path / f"{op}.onnx"
    onnx.save(model, str(f))
    return f


def test_a_kinds_rule_that_cannot_read_the_attributes_falls_back_exactly(tmp_path):
    """Pooling with padding wider than half the kernel (no pooling kind's), and a 1-D average pool: captured."""
    f = _one_node(tmp_path, "MaxPool", (2, 9, 9), None, kernel_shape=[3, 3], pads=[2, 2, 2, 2], strides=[2, 2])
    imported = import_onnx(f, (2, 9, 9))
    assert [b.type for b in imported.graph.blocks()] == ["input", KIND, "output"]
    assert imported.notes == ["block: ONNX MaxPool captured (MaxPool2d padding 2x2 must be at most half the kernel "
                              "3x3)"]
    net = compile_graph(imported.graph).eval()
    x = torch.randn(3, 2, 9, 9)
    want = F.max_pool2d(F.pad(x, (2, 2, 2, 2), value=-float("inf")), 3, 2)
    torch.testing.assert_close(net(x), want)
    f = _one_node(tmp_path, "AveragePool", (4, 10), None, kernel_shape=[3], strides=[2], pads=[1, 1],
                  count_include_pad=1)
    net = compile_graph(import_onnx(f, (4, 10)).graph).eval()
    x = torch.randn(2, 4, 10)
    torch.testing.assert_close(net(x), F.avg_pool1d(x, 3, 2, 1, count_include_pad=True))


@pytest.mark.parametrize("op, attrs, why", [
    ("Transpose", {"perm": [1, 0, 2, 3]}, "its output's first dimension is not the batch"),
    ("Flatten", {"axis": 0}, "its output's first dimension is not the batch"),
])
def test_what_mixes_the_batch_is_refused_naming_the_node(tmp_path, op, attrs, why):
    f = _one_node(tmp_path, op, (2, 4, 4), None, **attrs)
    with pytest.raises(ModelImportError) as e:
        import_onnx(f, (2, 4, 4))
    text = str(e.value)
    assert f"block: {op}:" in text and "it cannot be captured either" in text and why in text


def test_dropout_in_training_mode_is_refused_as_random(tmp_path):
    ratio = helper.make_tensor("ratio", TensorProto.FLOAT, [], [0.3])
    training = helper.make_tensor("training", TensorProto.BOOL, [], [True])
    f = _one_node(tmp_path, "Dropout", (2, 4, 4), None, inputs=("ratio", "training"),
                  initializers=(ratio, training))
    with pytest.raises(ModelImportError) as e:
        import_onnx(f, (2, 4, 4))
    assert "dropout in training mode draws random numbers" in str(e.value)


def test_a_resize_too_large_to_capture_exactly_is_refused_before_it_allocates(tmp_path):
    sizes = helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 2, 4, 50_000_000])
    f = _one_node(tmp_path, "Resize", (2, 4, 4), None, inputs=("", "", "sizes"), initializers=(sizes,),
                  mode="cubic")
    with pytest.raises(ModelImportError) as e:
        import_onnx(f, (2, 4, 4))
    assert "resizing an axis of 4 to 50000000 needs a 50000000 x 4 matrix, over the 67,108,864 values" in \
        str(e.value)


def test_the_command_line_lists_the_captured_operators(exported, tmp_path, capsys):
    from builder.cli import main as cli
    assert cli(["import", str(exported), "-o", str(tmp_path / "odd.json"), "--input", "3x8x8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-5:] == ["4 ONNX operators no kind stands for, captured with their exact operators:",
                        "  cumsum: ONNX CumSum captured (no block kind for this operator)",
                        "  matmul: ONNX MatMul captured (no block kind for this operator)",
                        "  abs: ONNX Abs captured (no block kind for this operator)",
                        "  sqrt: ONNX Sqrt captured (no block kind for this operator)"]


def test_a_ceil_mode_average_pool_counts_its_padding_but_not_the_ceil_reach(tmp_path):
    """Padding at the end only, ceil mode, count_include_pad: the last window starts inside the input and its
    padding, the padding counts in the average and the reach past it does not (onnxruntime's output)."""
    f = _one_node(tmp_path, "AveragePool", (2, 6, 6), None, kernel_shape=[3, 3], strides=[3, 3], pads=[0, 0, 2, 2],
                  ceil_mode=1, count_include_pad=1)
    imported = import_onnx(f, (2, 6, 6))
    net = compile_graph(imported.graph).eval()
    x = torch.randn(3, 2, 6, 6)
    with torch.no_grad():
        got = net(x)
    want = onnxruntime_output(f, x, "x")
    assert got.shape == want.shape == (3, 2, 2, 2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
