"""Exported PyTorch code, ONNX, TorchScript and diagrams against the compiled module."""
import json
import re
import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import templates
from builder.core import edits
from builder.backend.compiler import compile_graph
from builder.core.graph import Graph, make_id
from exports import ExportError, export_graph
from exports.pytorch import generate
from helpers import assert_outputs_close, depth_of, feature_graph, load_module
from strategies import graphs


def check_equivalent(g, tmp_path, name="m"):
    path = tmp_path / f"{name}.py"
    export_graph(g, "py", path)
    mod = load_module(path, name)
    model = mod.build_model().eval()
    net = compile_graph(g).eval()
    assert list(model.state_dict()) == list(net.state_dict())  # one back end: the same keys in the same order
    model.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(2, *mod.INPUT_SHAPE)
    with torch.no_grad():
        assert_outputs_close(model(x), net(x), depth_of(net), "exported vs compiled")
    model.train()
    net.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(1)
    b = net(x)
    a, b = (a, b) if isinstance(b, tuple) else ((a,), (b,))
    assert isinstance(a, tuple) and len(a) == len(b)  # train mode returns (main, aux...) in both
    for got, want in zip(a, b):  # batch statistics, and the same dropout masks from the same seed
        assert_outputs_close(got, want, depth_of(net), "exported vs compiled in training mode")
    return mod, path.read_text()


@pytest.mark.parametrize("name", list(templates.TEMPLATES))
def test_every_template_exports_equivalent_code(tmp_path, name):
    g = templates.build(name, num_classes=10)
    mod, src = check_equivalent(g, tmp_path, name)
    compile(src, "x.py", "exec")
    assert "torch" in src and "import block" not in src.lower().replace("block builder", "")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(graphs())
def test_random_graphs_export_equivalent_code(tmp_path, g):
    check_equivalent(g, tmp_path, "rnd")


def test_googlenet_defines_its_inception_module_once(tmp_path):
    src = generate(templates.build("googlenet"))
    assert src.count("class Inception(nn.Module)") == 1
    assert len(re.findall(r"= Inception\(", src)) == 9
    assert src.count("class InceptionAux(nn.Module)") == 1 and len(re.findall(r"= InceptionAux\(", src)) == 2
    model = src[src.index("class GoogLeNet(nn.Module):"):src.index("def build_model")]
    modules = [b.id for b in templates.build("googlenet").blocks() if b.type not in ("input", "output")]
    # not a flat list of hundreds of layers: one attribute and one forward statement per diagram block
    assert re.findall(r"^\s+self\.(\w+) = (?!aux_logits)", model, re.M) == modules
    assert len(re.findall(r"^\s+\w+ = self\.\w+\(", model, re.M)) == len(modules)
    assert "# 832 x 7 x 7" in src  # shape comments in forward
    assert "def build_model(weights: str | None = None, **kwargs)" in src and "num_classes: int = 1000" in src
    mod = load_module(_write(tmp_path, src))
    m = mod.build_model(num_classes=7, aux_logits=False)
    assert not hasattr(m, "aux1") and m.eval()(torch.randn(1, 3, 224, 224)).shape == (1, 7)
    m = mod.build_model(num_classes=7).train()
    out = m(torch.randn(2, 3, 224, 224))
    assert [o.shape for o in out] == [(2, 7)] * 3


def test_inception_v3_and_resnet_read_like_torchvision():
    src = generate(templates.build("inception_v3"))
    for cls in ("InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE", "InceptionAuxV3"):
        assert src.count(f"class {cls}(nn.Module)") == 1
    assert len(re.findall(r"= InceptionC\(", src)) == 4
    src = generate(templates.build("resnet50"))
    assert "self.layer1 = nn.Sequential(" in src and src.count("class Bottleneck(nn.Module)") == 1


def _write(tmp_path, src, name="g.py"):
    p = tmp_path / name
    p.write_text(src)
    return p


HOSTILE = ["x'); __import__('os').system('touch PWNED'); ('", 'a"b', "line\nbreak\n__import__('os')", "class",
           "def", "ünïcødé ✓ 名前", "", "", "self", "torch", "nn", "__import__('os').system('touch PWNED')",
           "\\", "'''", '"""', "# comment", "None"]


def test_hostile_names_give_code_that_runs_only_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = tmp_path / "PWNED"
    g = Graph(name="__import__('os').system('touch PWNED')\n\"\"\"'''")
    taken = set()
    prev = g.add_block("input", {"channels": 3, "height": 16, "width": 16}, make_id(HOSTILE[0], taken, "input"),
                       label=HOSTILE[0])
    for i, name in enumerate(HOSTILE[1:]):
        bid = make_id(name, set(g.ids()), fallback="block")
        kind = ["conv2d", "relu", "batchnorm2d"][i % 3]
        g.add_block(kind, {"out_channels": 4, "kernel": 3, "padding": 1} if kind == "conv2d" else {}, bid, label=name)
        g.connect(prev, bid)
        prev = bid
    g.add_block("flatten", {}, make_id("flatten'); import os", set(g.ids())), label="flatten'); import os")
    fl = g.ids()[-1]
    g.connect(prev, fl)
    g.add_block("linear", {"out_features": 3}, make_id("fc\nos.system('x')", set(g.ids())), label="fc")
    g.connect(fl, g.ids()[-1])
    g.add_block("output", {}, "out", label="print('hi')")
    g.connect(g.ids()[-2], "out")
    mod, src = check_equivalent(g, tmp_path, "hostile")
    exec(compile(src, "hostile.py", "exec"), {"__name__": "not_main"})
    assert not payload.exists()
    assert "touch PWNED" not in src.replace(repr(g.name), "")  # the name appears only inside repr()
    for line in src.splitlines():
        assert "\n" not in line


def test_onnx_matches_torch_under_onnxruntime(tmp_path):
    import onnxruntime as ort
    g = templates.build("googlenet", num_classes=10)
    net = compile_graph(g).eval()
    weights = net.state_dict()
    path = tmp_path / "g.onnx"
    export_graph(g, "onnx", path, weights=weights)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    import onnx
    assert onnx.load(str(path)).opset_import[0].version >= 17
    x = torch.randn(2, 3, 224, 224)
    (y,) = sess.run(None, {"input": x.numpy()})
    with torch.no_grad():
        ref = net(x).numpy()
    assert_outputs_close(torch.from_numpy(y), torch.from_numpy(ref), depth_of(net), "onnxruntime vs compiled")


@pytest.mark.parametrize("which", ["features", "googlenet"])
def test_torchscript_reloads_and_matches(tmp_path, which):
    """The smallest graph that has every forward construct (concat, add, an aux head in the training-only
    section, flatten, linear), and one whole template with aux heads."""
    g = feature_graph() if which == "features" else templates.build("googlenet", num_classes=10, aux=True,
                                                                       input_size=(3, 96, 96))
    net = compile_graph(g).eval()
    path = tmp_path / "m.pt"
    export_graph(g, "torchscript", path, weights=net.state_dict())
    loaded = torch.jit.load(str(path))
    x = torch.randn(2, *net.input_shapes[0])
    with torch.no_grad():
        assert_outputs_close(loaded(x), net(x), depth_of(net), "TorchScript vs compiled")


def test_torch_export_program_reloads(tmp_path):
    g = templates.build("lenet5")
    net = compile_graph(g).eval()
    path = tmp_path / "l.pt2"
    export_graph(g, "export", path, weights=net.state_dict())
    ep = torch.export.load(str(path))
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), net(x))


def test_diagrams(tmp_path, monkeypatch):
    g = templates.build("googlenet")
    edits.expand(g, "inception3a")
    g.set_label("conv1", 'evil" -> x [label="pwn"]; }\ndigraph {')
    export_graph(g, "dot", tmp_path / "g.dot")
    dot = (tmp_path / "g.dot").read_text()
    assert "subgraph cluster_0" in dot and "inception3a" in dot and "64x112x112" in dot and "9.54K params" in dot
    assert [line for line in dot.splitlines() if line.startswith("digraph")] == ["digraph network {"]
    assert '\\"pwn\\"' in dot and "\\ndigraph {" in dot  # the label's quotes and newline stay escaped
    if shutil.which("dot"):
        export_graph(g, "svg", tmp_path / "g.svg")  # dot parses the file: the hostile label broke nothing
        assert (tmp_path / "g.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
        export_graph(g, "png", tmp_path / "g.png")
        assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ExportError, match="graphviz's 'dot' program"):
        export_graph(g, "svg", tmp_path / "x.svg")
    assert not (tmp_path / "x.svg").exists()
    export_graph(g, "dot", tmp_path / "again.dot")  # DOT text needs no binary


def test_exporting_a_broken_graph_says_why(tmp_path):
    g = templates.build("lenet5")
    g.set_params("c3", {"kernel": 20})
    with pytest.raises(ExportError, match="c3"):
        export_graph(g, "py", tmp_path / "x.py")
    assert not (tmp_path / "x.py").exists()


def test_cli_export_ships_trained_weights(tmp_path):
    import subprocess
    import sys
    from safetensors.torch import save_file
    g = templates.build("lenet5")
    net = compile_graph(g).eval()
    w = tmp_path / "trained.safetensors"
    save_file(net.state_dict(), str(w))
    out = tmp_path / "lenet.py"
    r = subprocess.run([sys.executable, "-m", "builder", "export", "lenet5", "--format", "py", "-o", str(out),
                        "--weights", str(w)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    mod = load_module(out, "shipped")
    model = mod.build_model(weights=str(out.with_suffix(".safetensors"))).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))
    for fmt, name in (("onnx", "l.onnx"), ("dot", "l.dot"), ("train", "train.py")):
        r = subprocess.run([sys.executable, "-m", "builder", "export", "lenet5", "--format", fmt, "-o",
                            str(tmp_path / name)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / name).exists()
    r = subprocess.run([sys.executable, "-m", "builder", "export", "lenet5", "--format", "py", "-o",
                        str(tmp_path / "x.py"), "--weights", str(tmp_path / "missing.safetensors")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "missing.safetensors: no such file" in r.stderr and "Traceback" not in r.stderr


def test_exported_script_runs_for_a_graph_with_two_inputs(tmp_path):
    """python model.py builds the model and runs it on random inputs of every input's shape."""
    import subprocess
    import sys
    g = Graph("two inputs")
    g.add_block("input", {"channels": 3, "height": 8, "width": 8}, "rgb")
    g.add_block("input", {"channels": 1, "height": 8, "width": 8}, "depth")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 1}, "c_rgb")
    g.add_block("conv2d", {"out_channels": 2, "kernel": 1}, "c_depth")
    g.add_block("concat", {}, "cat")
    g.add_block("flatten", {}, "flat")
    g.add_block("linear", {"out_features": 5}, "fc")
    g.add_block("output", {}, "out")
    for a, b in (("rgb", "c_rgb"), ("depth", "c_depth"), ("c_rgb", "cat"), ("c_depth", "cat"), ("cat", "flat"),
                 ("flat", "fc"), ("fc", "out")):
        g.connect(a, b)
    path = tmp_path / "two.py"
    export_graph(g, "py", path)
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:3] == ["TwoInputs", "(1,", "5)"]
    mod = load_module(path, "two")
    net = compile_graph(g).eval()
    model = mod.build_model().eval()
    model.load_state_dict(net.state_dict())
    x, d = torch.randn(2, 3, 8, 8), torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x, d), net(x, d))


def test_the_compiled_module_is_the_exported_code():
    """One back end: the compiled network's source is the exported file's classes and model, word for word."""
    for name in ("googlenet", "resnet50", "mobilenet_v2", "efficientnet_b0"):
        g = templates.build(name)
        src = generate(g)
        code = compile_graph(g).code
        assert code.strip() in src, name


def test_exported_forward_reads_like_torchvisions():
    """The argument is x; a chain is ``x = self.block(x)``; a value is named only where it is read twice or
    later (the input of an aux head); no ``del`` in a class, and in the network only where a named value would
    otherwise live to the end."""
    src = generate(templates.build("googlenet"))
    forward = src[src.index("    def forward(self, x: Tensor):\n        x = self.conv1(x)"):src.index("def build_model")]
    assert forward.splitlines()[1:4] == ["        x = self.conv1(x)  # 64 x 112 x 112",
                                         "        x = self.maxpool1(x)  # 64 x 56 x 56",
                                         "        x = self.conv2(x)  # 64 x 56 x 56"]
    assert "        inception4a = self.inception4a(x)  # 512 x 14 x 14\n" \
           "        x = self.inception4b(inception4a)  # 512 x 14 x 14\n" in forward
    assert "            aux1 = self.aux1(inception4a)  # 1000\n" in forward
    assert "            return fc, aux1, aux2\n        return fc\n" in forward
    assert not re.search(r"\bdel ", src) and "input" not in forward
    inception = src[src.index("class Inception("):src.index("class InceptionAux(")]
    assert inception.split("def forward(self, x: Tensor):\n")[1] == (
        "        branch1 = self.branch1(x)\n        branch2 = self.branch2(x)\n        branch3 = self.branch3(x)\n"
        "        branch4 = self.branch4(x)\n        return torch.cat([branch1, branch2, branch3, branch4], 1)\n\n\n")
    resnet = generate(templates.build("resnet50"))
    assert "        x = self.layer1(x)  # 256 x 56 x 56\n        x = self.layer2(x)  # 512 x 28 x 28\n" in resnet
    assert "        out = self.conv1(x)\n        out = self.bn1(out)\n" in resnet  # x still read by the shortcut
    # a value that would live to the end of the network's forward is freed after its last reader
    g = Graph("skip")
    g.add_block("input", {"channels": 3, "height": 8, "width": 8}, "inp")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 1}, "a")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 1}, "b")
    g.add_block("add", {}, "sum")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 1}, "c")
    g.add_block("output", {}, "out")
    for u, v in (("inp", "a"), ("a", "b"), ("a", "sum"), ("b", "sum"), ("sum", "c"), ("c", "out")):
        g.connect(u, v)
    body = generate(g).split("    def forward(self, x: Tensor):\n")[1].split("\n\n")[0]
    assert body.splitlines() == ["        a = self.a(x)  # 4 x 8 x 8", "        b = self.b(a)  # 4 x 8 x 8",
                                 "        x = a + b  # 4 x 8 x 8", "        del a, b", "        x = self.c(x)  # 4 x 8 x 8",
                                 "        return x"]


@pytest.mark.parametrize("graph_name,group_name", [("F", "INPUT_SHAPE"), ("torch", "LOSS_WEIGHTS"),
                                                   ("build_model", "BasicConv2d"), ("Tensor", "PROJECT_NAME"),
                                                   ("nn", "F")])
def test_graph_and_group_names_never_shadow_the_exported_files_own_names(tmp_path, graph_name, group_name):
    """A graph called F once shadowed torch.nn.functional; a group called INPUT_SHAPE the shape constant."""
    g = templates.build("lenet5")
    g.name = graph_name
    edits.group(g, ["c3", "c3_act"], group_name)
    mod, src = check_equivalent(g, tmp_path, f"names_{graph_name}")
    assert mod.INPUT_SHAPE == (1, 32, 32) and mod.LOSS_WEIGHTS == [1.0]
    assert f"class {graph_name}(" not in src and f"class {group_name}(" not in src


@pytest.mark.parametrize("name", ['a"b', "x'); import os; ('", "line1\nline2", "u\u2028v", "p\u2029q", "class",
                                  "123", "\\", "'''", '"""'])
def test_a_project_name_made_of_code_gives_exported_files_that_run(tmp_path, name):
    """Issue 23: the class name was derived two ways, so some names gave exported code failing with NameError."""
    import subprocess
    import sys
    from exports.api import export_graph
    g = templates.build("lenet5")
    g.name = name
    export_graph(g, "py", tmp_path / "model.py")
    export_graph(g, "train", tmp_path / "run" / "train.py")
    check = ("import json, sys, importlib.util as u\n"
             "for path in sys.argv[1:]:\n"
             "    spec = u.spec_from_file_location('m', path); m = u.module_from_spec(spec); spec.loader.exec_module(m)\n"
             "    net = m.build_model(); print(json.dumps([type(net).__name__, m.PROJECT_NAME]))\n")
    r = subprocess.run([sys.executable, "-c", check, str(tmp_path / "model.py"), str(tmp_path / "run" / "model.py")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (cls, got), again = [json.loads(line) for line in r.stdout.splitlines()]
    assert got == g.name and again == [cls, got] and cls.isidentifier()  # the name kept as text, as the project
    r = subprocess.run([sys.executable, str(tmp_path / "run" / "train.py"), "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
