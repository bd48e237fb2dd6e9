"""The importer on CNNs from outside torchvision: timm's families (pretrained=False, every statistic randomised).
Each imports exactly: its parameters and MACs equal timm's, its outputs equal timm's, and what no kind stands
for is captured (its share is asserted, so a kind that stops matching shows). The full 42-model corpus is
``python -m benchmarks import_corpus``."""
import pytest
import torch

from blocks import REGISTRY
from builder.backend.compiler import compile_graph
from builder.core.analysis import analyze
from builder.core.ir import lower
from benchmarks.bench_import_corpus import _model
from builder.importers import import_module
from conftest import flops_macs

# model -> (captured layers, the classes captured): a model's own modules that no kind stands for
CORPUS = {
    "mobilenetv3_small_050": (0, set()),
    "lcnet_050": (0, set()),
    "tf_mixnet_s": (13, {"Conv2dSame"}),  # same padding, computed from the input's shape
    "ghostnet_050": (0, set()),  # its ghost modules slice their channels: channel slices
    "convnext_atto": (12, {"ConvNeXtBlock"}),  # its blocks read their layer scale (gamma) themselves
    "regnetx_002": (0, set()),
    "skresnet18": (8, {"SelectiveKernel"}),
    "tf_efficientnet_b0": (5, {"Conv2dSame"}),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_a_timm_model_imports_exactly(name):
    model = _model(name)  # the benchmark's: pretrained=False, batch norm statistics randomised
    imported = import_module(model, (3, 96, 96), name)
    g = imported.graph
    a = analyze(g)
    assert not a.errors
    x = torch.randn(2, 3, 96, 96)
    assert a.inference.params == sum(p.numel() for p in model.parameters())
    assert a.inference.macs == flops_macs(model, x[:1])
    kind = REGISTRY.capture_kind()
    captured = [n for n in lower(g, a).nodes if n.kind == kind]
    assert (len(captured), {n.params["label"] for n in captured}) == CORPUS[name]
    net = compile_graph(g, a).eval()
    net.load_state_dict(imported.state, strict=True)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(net(x), want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
