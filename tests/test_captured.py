"""Captured blocks: a module no kind stands for keeps its weights and its exact operators through the import, the
project file, compilation, training and both exports; a project file's program is data, checked before anything
runs it."""
import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from blocks import REGISTRY, ParamError
from blocks.program import validate_program
from builder.core import project
from builder.core.errors import ProjectError
from builder.importers import import_module
from exports import export_graph
from helpers import load_module, onnxruntime_output, reloaded

KIND = REGISTRY.capture_kind()


class Gate(nn.Module):
    """A module of no kind: a norm with statistics, a gate made from the input's own mean, same padding
    computed from the input's shape (shape arithmetic, evaluated at the capture)."""

    def __init__(self, c):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.scale = nn.Parameter(torch.randn(1, c, 1, 1))
        self.register_buffer("kernel", torch.tensor([[1.0, 2.0, 1.0]]) / 4, persistent=False)

    def forward(self, x):
        h, w = x.shape[-2:]
        pad = max((-(-w // 2) - 1) * 2 + 3 - w, 0)
        x = F.pad(x, (pad // 2, pad - pad // 2, 0, 0))
        x = F.conv2d(x, self.kernel.expand(x.shape[1], 1, 1, 3), groups=x.shape[1], stride=(1, 2))
        x = self.bn(x)
        return x * torch.sigmoid(self.scale * x.mean((2, 3), keepdim=True))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gate = Gate(8)
        self.fc = nn.Linear(8 * 9 * 5, 4)

    def forward(self, x):
        x = self.gate(torch.relu(self.conv(x)))
        x = torch.roll(x, 1, 3)  # a call of the model's own forward that no kind stands for
        return self.fc(x.flatten(1))


def _model():
    torch.manual_seed(0)
    m = Net()
    with torch.no_grad():
        m.gate.bn.running_mean.normal_()
        m.gate.bn.running_var.uniform_(0.5, 2)
        m.gate.bn.weight.normal_()
    return m.eval()


@pytest.fixture(scope="module")
def imported():
    return import_module(_model(), (3, 9, 9))


def test_the_module_and_the_call_are_captured_with_their_weights(imported):
    g = imported.graph
    assert [(b.id, b.type) for b in g.blocks()] == [("input", "input"), ("conv", "conv2d"), ("relu", "relu"),
                                                  ("gate", KIND), ("roll", KIND), ("flatten", "flatten"),
                                                  ("fc", "linear"), ("output", "output")]
    gate = g.block("gate").params
    assert gate["label"] == "Gate" and gate["program"]["source"] == "test_captured.Gate"
    assert gate["program"]["inputs"] == [[8, 9, 9]] and gate["program"]["output"] == [8, 9, 5]
    assert [t["name"] for t in gate["program"]["tensors"]] == ["scale", "bn.weight", "bn.bias", "bn.running_mean",
                                                               "bn.running_var", "bn.num_batches_tracked", "kernel"]
    assert gate["program"]["eval"] is not None  # batch statistics in training, running ones in evaluation
    assert list(imported.state) == list(_model().state_dict())  # the source's keys, in its order
    assert imported.notes == ["gate: Gate captured whole (test_captured.Gate)", "roll: roll captured whole "
                                                                                "(torch.roll)"]


def test_params_and_macs_are_the_modules(imported):
    from builder.core.analysis import analyze
    from torch.utils.flop_counter import FlopCounterMode
    a = analyze(imported.graph)
    model = _model()
    with FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 3, 9, 9))
    assert a.blocks["gate"].params == 8 + 16 and a.inference.params == sum(p.numel() for p in model.parameters())
    assert a.inference.macs == fc.get_total_flops() // 2 and a.blocks["gate"].macs == 8 * 9 * 5 * 3


def test_a_project_file_round_trip_compiles_trains_and_exports_the_same(imported, tmp_path):
    g, net = reloaded(imported, tmp_path / "net.json")
    model = _model()
    x = torch.randn(4, 3, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), model(x), rtol=1e-5, atol=1e-6)
    # training: batch statistics, the running ones updated, the same gradients and steps
    net.train(), model.train()
    for m in (net, model):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        for step in range(2):
            opt.zero_grad()
            F.cross_entropy(m(x + step), torch.tensor([0, 1, 2, 3])).backward()
            opt.step()
    got, want = net.state_dict(), model.state_dict()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=k)
    assert int(got["gate.bn.num_batches_tracked"]) == 2
    # the exported file defines the captured class and equals the model
    net.eval(), model.eval()
    files = export_graph(g, "py", tmp_path / "model.py", weights=net.state_dict())
    text = files[0].read_text()
    assert "class Gate(nn.Module):" in text and "self.gate = Gate()" in text
    # the captured operators as PyTorch writes them: functions, methods and operators
    assert "batch_norm = torch.batch_norm(conv2d, self.bn.weight, self.bn.bias, self.bn.running_mean" in text
    assert "roll = x.roll([1], [3])" in text and "mean = batch_norm.mean([2, 3], True)" in text
    assert "torch.ops.aten" not in text
    exported = load_module(files[0], "exported_captured").build_model(weights=str(files[1])).eval()
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model(x), rtol=1e-5, atol=1e-6)
    onnx = export_graph(g, "onnx", tmp_path / "model.onnx", weights=net.state_dict())[0]
    torch.testing.assert_close(onnxruntime_output(onnx, x), model(x).detach(), rtol=1e-4, atol=1e-5)


def test_another_input_shape_is_an_error_on_the_block(imported):
    from builder.core.analysis import analyze
    g = imported.graph.copy()
    g.set_params("input", {"height": 11})
    errors = analyze(g).blocks["gate"].errors
    assert [e.message for e in errors] == ["Gate was captured for input 8x9x9, gets 8x11x9 from relu: re-import "
                                           "the model, or put blocks of known kinds in its place"]


HOSTILE = [
    ({"nodes": [["y", "builtins.eval", [], {}]], "result": "y"}, "is not an ATen operator"),
    ({"nodes": [["y", "aten.from_file.default", ["/etc/passwd"], {}]], "result": "y"}, "is not an ATen operator"),
    ({"nodes": [["__import__", "aten.relu.default", [{"ref": "x"}], {}]], "result": "__import__"},
     "is not a free lower-case name"),
    ({"nodes": [["self", "aten.relu.default", [{"ref": "x"}], {}]], "result": "self"}, "is not a free lower-case"),
    ({"nodes": [["y", "aten.relu.default", [{"ref": "os"}], {}]], "result": "y"}, "is not a known value"),
    ({"nodes": [["y", "aten.relu.default", [{"self": "weight.__class__"}], {}]], "result": "y"},
     "is not a known value"),
    ({"nodes": [["y", "aten.to.device", [{"ref": "x"}, {"device": "cuda"}], {}]], "result": "y"},
     "is not a known value"),
    ({"nodes": [["y", "aten.relu.default", [{"ref": "x"}], {"a; import os": 1}]], "result": "y"},
     "a keyword that is not a name"),
    ({"nodes": [["y", "operator.getitem", [{"ref": "x"}], {}]], "result": "y"}, "takes 2 arguments"),
    ({"nodes": [["y", "aten.relu.default", [{"ref": "x"}], {}]], "result": "z"}, "is not one of its values"),
]


def test_a_tensor_may_not_replace_a_modules_own_attribute():
    program = copy.deepcopy(REGISTRY[KIND].param("program").default)
    for name in ("training", "forward", "conv._parameters", "__class__"):
        program["tensors"][0]["name"] = name
        with pytest.raises(ParamError, match="is not a dotted path of names"):
            validate_program(program)


@pytest.mark.parametrize("train, why", HOSTILE)
def test_a_program_that_could_run_anything_else_is_refused(train, why):
    program = copy.deepcopy(REGISTRY[KIND].param("program").default)
    program["train"] = train
    with pytest.raises(ParamError, match="program: ") as e:
        validate_program(program)
    assert why in str(e.value)


def test_a_string_argument_reaches_the_code_only_through_repr():
    program = copy.deepcopy(REGISTRY[KIND].param("program").default)
    program["train"] = {"nodes": [["y", "aten.gelu.default", [{"ref": "x"}], {"approximate": "')\nimport os#"}]],
                        "result": "y"}
    from blocks.program import class_source
    text = class_source(validate_program(program), "Gelu", "gelu")
    hostile = "')\nimport os#"
    assert f"approximate={hostile!r})" in text and "\nimport os" not in text


def test_a_project_file_with_a_hostile_program_says_where(tmp_path, imported):
    doc = project.to_dict(imported.graph)
    block = next(b for b in doc["blocks"] if b["id"] == "gate")
    block["params"]["program"]["train"]["nodes"][0][1] = "builtins.exec"
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(ProjectError) as e:
        project.load(f)
    assert "gate" in str(e.value) and "'builtins.exec' is not an ATen operator" in str(e.value)


def test_a_palette_does_not_offer_it():
    assert not REGISTRY[KIND].in_palette


def test_data_dependent_control_flow_in_a_module_is_one_message_naming_it(capfd):
    from builder.core.errors import ModelImportError

    class Gate(nn.Module):
        def forward(self, x):
            return x if x.mean() > 0 else -x

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.block = nn.Sequential(nn.ReLU(), Gate())

        def forward(self, x):
            return self.block(self.conv(x))
    capfd.readouterr()
    with pytest.raises(ModelImportError) as e:
        import_module(Branchy().eval(), (3, 8, 8))
    assert str(e.value) == ("Branchy cannot be imported (1 problem):\n  - control flow block.1: Gate: its forward "
                            "branches on the values of a tensor (data-dependent control flow): no fixed graph "
                            "computes it")
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # torch.export's dump of the graph it could not finish is not shown
