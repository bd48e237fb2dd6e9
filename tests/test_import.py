"""Importing torchvision's CNNs (issue 13): params and MACs equal torchvision's, composites recognised, the
compiled graph with the imported weights gives torchvision's outputs, and so does the exported code."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import models

from blocks import REGISTRY
from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from builder.core.errors import ModelImportError
from builder.core.ir import lower
from builder.importers import import_module, import_source
from conftest import flops_macs
from exports import export_graph
from helpers import assert_outputs_close, depth_of, load_module

ROOT = Path(__file__).resolve().parents[1]
ZOO = ["googlenet", "inception_v3", "resnet50", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_small",
       "squeezenet1_1", "densenet121", "efficientnet_b0", "shufflenet_v2_x1_0", "vgg16_bn", "alexnet",
       "regnet_y_400mf", "convnext_tiny"]
COMPOSITES = {"googlenet": {"inception_v1": 9, "aux_googlenet": 2, "basic_conv": 3},
              "inception_v3": {"inception_a": 3, "inception_b": 1, "inception_c": 4, "inception_d": 1,
                               "inception_e": 2, "aux_inception_v3": 1, "basic_conv": 5},
              "resnet50": {"resnet_bottleneck": 16}, "resnext50_32x4d": {"resnet_bottleneck": 16},
              "convnext_tiny": {"convnext_block": 18}, "mobilenet_v2": {"inverted_residual": 17},
              "squeezenet1_1": {"fire": 8}, "densenet121": {"dense_block": 4, "dense_transition": 3},
              "efficientnet_b0": {"mbconv": 16}, "mobilenet_v3_small": {"mbconv": 11}}


def _reference(name):
    kw = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
    model = models.get_model(name, weights=None, **kw)
    torch.manual_seed(0)
    with torch.no_grad():  # random statistics, so that BN is not the identity in eval
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ZOO)
def test_torchvision_models_import_exactly(name, tmp_path):
    ref = _reference(name)
    imported = import_module(ref, name=name)
    g = imported.graph
    a = analyze(g)
    assert not a.errors
    shape = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    assert a.blocks["input"].out_shape == shape
    assert a.training.params == sum(p.numel() for p in ref.parameters())
    ref.eval()
    x = torch.randn(2, *shape)
    assert a.inference.macs == flops_macs(ref, x[:1])
    kinds = Counter(b.type for b in g.blocks())
    for kind, n in COMPOSITES.get(name, {}).items():
        assert kinds[kind] == n, (kind, kinds)
    net = compile_graph(g).eval()
    renamed = g.meta.get("renamed_weights", {})
    assert list(net.state_dict()) == [renamed.get(k, k) for k in ref.state_dict()]  # torchvision's order
    net.load_state_dict(imported.state, strict=True)
    with torch.no_grad():
        want = ref(x)
        assert_outputs_close(net(x), want, depth_of(ref), "compiled vs torchvision")
    written = export_graph(g, "py", tmp_path / "model.py", weights=imported.state)  # ships the weights
    mod = load_module(written[0], f"exported_{name}")
    exported = mod.build_model(weights=str(written[1])).eval()
    assert list(exported.state_dict()) == list(net.state_dict())
    with torch.no_grad():
        assert_outputs_close(exported(x), want, depth_of(ref), "exported vs torchvision")


def test_module_paths_are_block_ids_and_the_keys_stay_torchvisions():
    imported = import_source("torchvision:resnet18")
    assert set(imported.state) == set(models.resnet18().state_dict())
    assert {"conv1", "bn1", "layer1.0", "layer4.1", "fc"} <= set(imported.graph.ids())
    regnet = import_source("torchvision:regnet_y_400mf")  # "block1-0" is no identifier: renamed, and said so
    renamed = regnet.graph.meta["renamed_weights"]
    assert renamed["trunk_output.block1.block1-0.f.a.0.weight"] == "trunk_output.block1.block1_0.f.a.0.weight"


class Spectral(nn.Module):
    def forward(self, x):
        return torch.fft.fft2(x).real


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.spectral = Spectral()
        self.pad = nn.ReflectionPad2d(1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = self.pad(self.spectral(self.conv(x)))
        x = torch.roll(x, 1, 2)
        return self.fc(x.mean((2, 3)))


def test_modules_and_calls_no_kind_stands_for_are_captured_exactly():
    """A module of no kind (an FFT, a reflection pad) is captured whole, a call of the model's own forward
    (``torch.roll``) on its own: the import keeps their weights and operators and is checked against the model."""
    model = Odd().eval()
    imported = import_module(model, (3, 16, 16))
    g = imported.graph
    kind = REGISTRY.capture_kind()
    captured = {b.id: b.params["label"] for b in g.blocks() if b.type == kind}
    assert captured == {"spectral": "Spectral", "roll": "roll"}
    assert [b.type for b in g.blocks()][:4] == ["input", "conv2d", kind, "pad2d"]  # a reflection: a kind's
    assert imported.notes == ["spectral: Spectral captured whole (test_import.Spectral)",
                              "roll: roll captured whole (torch.roll)"]
    net = compile_graph(g).eval()
    net.load_state_dict(imported.state)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x), rtol=1e-5, atol=1e-5)


def test_a_model_that_branches_on_values_says_why():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x
    with pytest.raises(ModelImportError) as e:
        import_module(Branchy(), (3, 8, 8))
    assert str(e.value) == ("Branchy cannot be imported (1 problem):\n  - control flow Branchy: its forward branches "
                            "on the values of a tensor (data-dependent control flow): no fixed graph computes it")


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "builder", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


@pytest.mark.timeout(600)
def test_cli_import_then_info_train_and_export(tmp_path):
    f = tmp_path / "resnet18.json"
    r = _cli("import", "torchvision:resnet18", "-o", str(f), "--input", "3x64x64", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    info = json.loads(_cli("info", str(f), "--json").stdout)
    assert report["inference"] == info["inference"] and info["inference"]["params"] == 11_689_512
    assert (tmp_path / "resnet18.safetensors").exists()
    from safetensors.torch import load_file
    before = load_file(str(tmp_path / "resnet18.safetensors"))
    r = _cli("train", str(f), "--dataset", "synthetic", "--synthetic-size", "16", "--batch-size", "8",
             "--max-steps", "1", "--epochs", "1", "--workers", "0", "--out", str(tmp_path / "run"),
             "--freeze", "conv1,layer1", "--json")
    assert r.returncode == 0, r.stderr
    start = next(json.loads(x) for x in r.stdout.splitlines() if '"start"' in x)
    assert start["weights"].endswith("resnet18.safetensors") and start["frozen"] == ["conv1", "layer1"]
    after = load_file(str(tmp_path / "run" / "last.safetensors"))
    assert torch.equal(after["conv1.weight"], before["conv1.weight"])  # frozen
    assert torch.equal(after["layer1.0.conv1.weight"], before["layer1.0.conv1.weight"])
    assert not torch.equal(after["fc.weight"], before["fc.weight"])  # trained from the imported weights
    r = _cli("export", str(f), "--format", "py", "-o", str(tmp_path / "r18.py"), "--weights",
             str(tmp_path / "resnet18.safetensors"))
    assert r.returncode == 0, r.stderr
    r = _cli("import", "torchvision:resnet18", "-o", str(tmp_path / "x.json"), "--input", "3x6x4x")
    assert r.returncode == 2 and "input size must be CxHxW" in r.stderr
    r = _cli("import", "torchvision:resnet18", "-o", str(tmp_path / "x.json"), "--input", "3x64")  # a sequence
    assert r.returncode == 2 and "conv1: Convolution needs a CxHxW input, got 3x64" in r.stderr
    r = _cli("import", "torchvision:resnet_nope", "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "torchvision has no classification model" in r.stderr
    (tmp_path / "oddnet.py").write_text("import torch\nfrom torch import nn\n\n\nclass Odd(nn.Module):\n"
                                        "    def forward(self, x):\n        return x if x.sum() > 0 else -x\n")
    r = _cli("import", "oddnet:Odd", "-o", str(tmp_path / "x.json"), "--input", "3x16x16", cwd=tmp_path)
    assert r.returncode == 2 and "control flow Odd: its forward branches on the values of a tensor" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.json").exists()
    (tmp_path / "rollnet.py").write_text("import torch\nfrom torch import nn\n\n\nclass Roll(nn.Module):\n"
                                         "    def forward(self, x):\n        return torch.roll(x, 1, 2)\n")
    r = _cli("import", "rollnet:Roll", "-o", str(tmp_path / "r.json"), "--input", "3x16x16", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-2:] == ["1 module no kind stands for, captured with their exact operators:",
                                          "  roll: roll captured whole (torch.roll)"]


ONNX_ZOO = ["googlenet", "inception_v3", "resnet50", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_small",
            "squeezenet1_1", "densenet121", "efficientnet_b0", "shufflenet_v2_x1_0", "vgg16_bn", "alexnet",
            "regnet_y_400mf", "convnext_tiny"]


def _onnx(name, tmp_path, preserve=True):
    ref = _reference(name).eval()
    shape = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    path = tmp_path / f"{name}.onnx"
    kw = {"training": torch.onnx.TrainingMode.PRESERVE} if preserve else {}  # PRESERVE: batch norms kept
    torch.onnx.export(ref, (torch.randn(1, *shape),), str(path), dynamo=False, input_names=["input"],
                      output_names=["logits"], **kw)
    return ref, shape, path


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ONNX_ZOO)
def test_onnx_files_import_with_torchvisions_counts_and_onnxruntimes_outputs(name, tmp_path):
    ref, shape, path = _onnx(name, tmp_path)
    imported = import_source(str(path), contained=False)
    a = analyze(imported.graph)
    from_torch = analyze(import_module(ref, name=name).graph)  # the eval graph has no aux heads
    assert a.inference.params == from_torch.inference.params
    x = torch.randn(1, *shape)
    assert a.inference.macs == flops_macs(ref, x)
    _same_as_onnxruntime(imported, path, x, depth_of(ref))


def _same_as_onnxruntime(imported, path, x, depth):
    """The imported network, with the imported weights, gives what onnxruntime gives for the file."""
    import onnxruntime as ort
    net = compile_graph(imported.graph).eval()
    net.load_state_dict(imported.state, strict=True)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert_outputs_close(net(x), torch.from_numpy(want), depth, "compiled vs onnxruntime")


def test_an_onnx_file_with_folded_batch_norms_imports_as_convolutions_with_bias(tmp_path):
    ref, shape, path = _onnx("resnet18", tmp_path, preserve=False)
    imported = import_source(str(path), contained=False)
    kinds = Counter(n.kind for n in lower(imported.graph).nodes)  # inside the groups of its basic blocks
    assert kinds["batchnorm2d"] == 0 and kinds["conv2d"] == 20
    x = torch.randn(1, *shape)
    assert analyze(imported.graph).inference.macs == flops_macs(ref, x)
    _same_as_onnxruntime(imported, path, x, depth_of(ref))


def test_onnx_operators_without_a_block_are_listed_once(tmp_path):
    class Odd(nn.Module):  # Erf, CumSum and Sin have no kind but are captured; Trilu and GatherElements neither
        def forward(self, x):
            x = torch.sin(torch.cumsum(torch.erf(x), 2))
            return torch.gather(torch.triu(x), 3, torch.zeros(1, 4, 28, 28, dtype=torch.long))
    odd = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReflectionPad2d(1), nn.Conv2d(4, 4, 3), nn.Upsample(scale_factor=2),
                        Odd(), nn.LogSoftmax(dim=1)).eval()
    path = tmp_path / "odd.onnx"
    torch.onnx.export(odd, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False)
    with pytest.raises(ModelImportError) as e:
        import_source(str(path), contained=False)
    ops = {p.why.split(":")[0] for p in e.value.problems}
    assert ops == {"Trilu", "GatherElements"}  # every operator that is neither a block nor captured, named
    assert all("no implementation of" in p.why or "no block kind" in p.why for p in e.value.problems)
    assert not any("is not the output of a block" in p.why for p in e.value.problems)  # no knock-on noise
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelImportError, match="bad.onnx: .*not a valid ONNX model"):
        import_source(str(bad), contained=False)


def test_import_makes_the_output_folder_and_refuses_a_file_in_its_way(tmp_path, capsys):
    from builder.cli import main as cli_main
    out = tmp_path / "new" / "deeper" / "sq.json"
    assert cli_main(["import", "torchvision:squeezenet1_1", "-o", str(out), "--no-weights"]) == 0
    assert out.is_file()
    (tmp_path / "afile").write_text("x")
    assert cli_main(["import", "torchvision:squeezenet1_1", "-o", str(tmp_path / "afile" / "sq.json")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert cli_main(["import", "torchvision:no_such_model", "-o", str(tmp_path / "never" / "x.json")]) == 2
    assert not (tmp_path / "never").exists()  # a failed import leaves nothing behind
