"""Nothing imported is silently wrong (issue 24, Done-when 5): every import runs the compiled project beside its
source on a seeded random input and is refused, with the measured difference and nothing written, when the
outputs differ by more than 1e-4 of the largest; the check's figures stay in the project's meta."""
import pytest
import torch

from builder.cli import main
from builder.core.errors import ModelImportError
from builder.importers import import_source, verify


def _onnx(path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()
    torch.onnx.export(net, torch.zeros(1, 3, 32, 32), str(path), dynamo=False)
    return net


@pytest.mark.parametrize("source", ["torchvision:resnet18", "torchvision:googlenet", "onnx"])
def test_every_import_is_compared_with_its_source(tmp_path, source):
    if source == "onnx":
        _onnx(tmp_path / "net.onnx")
        source = str(tmp_path / "net.onnx")
    imported = import_source(source, contained=False)
    check = imported.graph.meta["import_check"]
    assert check["reference"] in ("the PyTorch model", "onnxruntime")
    assert check["relative"] <= (0.0 if source.startswith("torchvision") else 1e-6)  # the same kernels: exact


def _off_by(monkeypatch, rel):
    """The compiled network's output moved by ``rel`` of its largest value (a converter that is slightly wrong)."""
    real = verify._compiled_output

    def shifted(graph, state, x, analysis=None):
        out = real(graph, state, x, analysis)
        return out + rel * out.abs().max()
    monkeypatch.setattr(verify, "_compiled_output", shifted)


def test_an_import_that_computes_something_else_is_refused_with_the_difference(tmp_path, monkeypatch, capsys):
    _onnx(tmp_path / "net.onnx")
    _off_by(monkeypatch, 1e-6)  # within 1e-4: accepted
    assert import_source(str(tmp_path / "net.onnx"), contained=False).graph.meta["import_check"]["relative"] < 1e-4
    _off_by(monkeypatch, 1e-3)
    for source in ("torchvision:resnet18", str(tmp_path / "net.onnx")):
        with pytest.raises(ModelImportError) as e:
            import_source(source, contained=False)
        [problem] = e.value.problems
        assert problem.kind == "outputs" and "over the 0.0001 allowed" in problem.why and "e-03 of the largest" in \
            problem.why, problem.why
    out = tmp_path / "r.json"
    assert main(["import", "torchvision:resnet18", "-o", str(out)]) == 2  # (torchvision imports in process)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "differs from the PyTorch model's" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "r.safetensors").exists()


def test_a_source_that_gives_no_finite_output_cannot_be_checked_and_is_refused(monkeypatch):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    with torch.no_grad():
        net[0].weight.fill_(3e38)  # finite weights whose sums overflow float32
    from builder.importers import import_module
    with pytest.raises(ModelImportError) as e:
        import_module(net, (3, 16, 16))
    assert "gives values that are not finite for a random input: nothing to compare with" in str(e.value)
