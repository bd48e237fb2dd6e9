"""Every template and every imported torchvision CNN, exported as ONNX at opset 17 and at the newest opset the
exporter writes, re-imports as the same network (issue 21): the same parameter count, no more layers than it had
(SiLU, Hardswish, GELU, BasicConv2d, LayerNorm2d and ConvNeXt blocks recognised by their kinds' patterns, not
split into ONNX's primitives), the composite blocks it was drawn with (Inception modules, bottlenecks, MBConv with
its SE, Fire, dense blocks: recovered from the module paths) and outputs equal to onnxruntime's on the same
file."""
from collections import Counter

import onnx
import pytest
import torch

import templates
from builder.backend.compiler import compile_graph
from builder.core.analysis import analyze
from builder.core.ir import lower
from builder.importers import import_module, import_source
from exports import export_graph
from helpers import assert_outputs_close, depth_of, random_statistics

NEWEST = 23  # the newest opset torch.onnx's TorchScript exporter writes (24 is refused)
SMALL = {"lenet5", "alexnet", "alexnet_paper", "googlenet_paper", "vgg11", "vgg13", "vgg16", "vgg19"}  # own input size
IMPORTED = ["mobilenet_v3_small", "shufflenet_v2_x1_0", "convnext_tiny", "regnet_y_400mf", "mnasnet0_5"]


def _template(name):
    if name in SMALL:
        return templates.build(name, num_classes=10, aux=False)
    size = (3, 139, 139) if name.startswith("inception") else (3, 96, 96)
    return templates.build(name, num_classes=10, aux=False, input_size=size)


def _imported(name):
    from torchvision import models
    return import_module(models.get_model(name, weights=None), (3, 96, 96), name=name).graph


def _round_trip(g, opset, tmp_path):
    import onnxruntime as ort
    torch.manual_seed(0)
    net = random_statistics(compile_graph(g).eval())  # so that no batch norm is the identity
    path = tmp_path / f"net{opset}.onnx"
    export_graph(g, "onnx", path, weights=net.state_dict(), opset=opset)
    assert onnx.load(str(path)).opset_import[0].version == opset
    back = import_source(str(path), contained=False)
    before, after = analyze(g), analyze(back.graph)
    assert after.inference.params == before.inference.params
    layers = [n for n in lower(g).nodes if not n.training_only]
    assert len(lower(back.graph).nodes) <= len(layers)
    model = compile_graph(back.graph).eval()
    model.load_state_dict(back.state, strict=True)
    shape = next(n.shape for n in layers if n.kind == "input")
    x = torch.randn(2, *shape)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert_outputs_close(model(x), torch.from_numpy(want), depth_of(net), "re-imported vs onnxruntime")
    return back.graph


def _composites(g) -> Counter:
    """The composite blocks of the inference network whose kind a PyTorch module stands for (the ones a file's
    module paths can give back)."""
    a = analyze(g)
    return Counter(b.type for b in g.blocks() if b.spec.is_composite and b.spec.from_torch is not None
                   and a.blocks[b.id].inference)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("opset", [17, NEWEST])
@pytest.mark.parametrize("name", list(templates.TEMPLATES))
def test_every_template_round_trips_through_onnx(name, opset, tmp_path):
    g = _template(name)
    back = _round_trip(g, opset, tmp_path)
    assert _composites(back) == _composites(g)  # Inception modules, bottlenecks, MBConv, Fire, dense blocks
    kinds = Counter(n.kind for n in lower(back).nodes)
    if name == "efficientnet_b0":  # SiLU is Sigmoid and Mul in the file: one block again
        assert kinds["silu"] == 49 and kinds["sigmoid"] == 16  # the 16 SE gates stay sigmoids
    if name in ("googlenet", "inception_v3"):  # torchvision's BasicConv2d: conv, BN, ReLU in the file
        assert kinds["basic_conv"] == {"googlenet": 57, "inception_v3": 94}[name] and not kinds["batchnorm2d"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("opset", [17, NEWEST])
@pytest.mark.parametrize("name", IMPORTED)
def test_imported_torchvision_cnns_round_trip_through_onnx(name, opset, tmp_path):
    g = _imported(name)
    back = _round_trip(g, opset, tmp_path)
    assert _composites(back) == _composites(g)
    kinds = Counter(n.kind for n in lower(back).nodes)
    if name == "mobilenet_v3_small":  # HardSigmoid and Mul before opset 14, HardSwish after: one kind
        assert kinds["hardswish"] == 19 and _composites(back)["mbconv"] == 11
    if name == "convnext_tiny":  # GELU is Div, Erf, Add, Mul, Mul at 17, Gelu at 20 on: the block either way
        assert kinds["convnext_block"] == 18 and kinds["layernorm2d"] == 5  # stem, 3 downsamples, head
    if name == "shufflenet_v2_x1_0":
        assert kinds["channel_shuffle"] == 16


def test_an_onnx_file_whose_norms_were_folded_shows_the_models_modules_as_groups(tmp_path):
    """Issue 24: torch.onnx folds ResNet-18's batch norms into its convolutions, so no BasicBlock kind matches;
    its name scopes (``/layer1/layer1.0/conv1/Conv``) still give the 8 basic blocks, as groups in the model's
    order (a sequence, ``layer1``, is not one), and the network is onnxruntime's."""
    from torchvision import models
    model = models.resnet18(weights=None).eval()
    f = tmp_path / "resnet18.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 64, 64), str(f), opset_version=17, dynamo=False,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    g = import_source(str(f), (3, 64, 64), contained=False).graph
    assert [(b.id, b.params["name"] if b.type == "group" else b.type) for b in g.blocks()] == [
        ("input", "input"), ("conv1", "conv2d"), ("relu", "relu"), ("maxpool", "maxpool2d"),
        ("layer1.0", "Layer1"), ("layer1.1", "Layer1"), ("layer2.0", "Layer2"), ("layer2.1", "Layer2"),
        ("layer3.0", "Layer3"), ("layer3.1", "Layer3"), ("layer4.0", "Layer4"), ("layer4.1", "Layer4"),
        ("avgpool", "adaptive_avgpool2d"), ("flatten", "flatten"), ("fc", "linear"), ("output", "output")]
    assert g.meta["import_check"]["relative"] <= 1e-4  # compared with onnxruntime on the file
