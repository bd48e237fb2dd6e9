"""A new block kind is one file (issue 21): a Mish activation added as blocks/mish.py, with no other file changed,
is on the palette, analysed, in the report, compiled, exported as PyTorch and ONNX, and imported from a torch
model and from ONNX files (torch's Softplus-Tanh-Mul form and ONNX's own Mish operator). The test runs a copy of the blocks package with the file added, in a fresh process (this process's
registry stays as shipped)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MISH = '''"""Mish, x * tanh(softplus(x)) (Misra, 2019): an activation kind in one file."""
from .imports import FromOnnx
from .spec import BlockSpec, Cost, TorchCall, register

register(BlockSpec(
    "mish", "Mish", "Activation", shape=lambda p, ins: ins[0], cost=lambda p, ins, out: Cost(0, 0),
    torch=TorchCall("nn.Mish"), keeps_width=True, in_table=False, description="x * tanh(softplus(x))",
    from_onnx=(FromOnnx("Mish"), FromOnnx(pattern=("Softplus", "Tanh", ("Mul", "x"))))))
'''

CHECK = r'''
import json, sys, tempfile
from pathlib import Path
import torch
import torch.nn.functional as F
from torch import nn
import blocks
assert Path(blocks.__file__).parent == Path(sys.argv[1]), blocks.__file__  # the copy with the new file
from blocks import REGISTRY
from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from builder.core.graph import Graph
from builder.importers import import_module
from builder.insight.report import block_rows
from exports import export_graph
out = {}
from PySide6.QtWidgets import QApplication
app = QApplication([])
from builder.ui.palette import Palette
palette = Palette()
out["palette"] = [it.text(0) for kind, it in palette.items.items() if kind == "mish"] if isinstance(palette.items, dict) else []
out["category"] = [s.type_id for s in REGISTRY.categories()["Activation"]]
g = Graph("mish net")
for kind, params, bid in (("input", {"channels": 3, "height": 16, "width": 16}, "inp"),
                          ("conv2d", {"out_channels": 8, "kernel": 3}, "conv"), ("mish", {}, "act"),
                          ("flatten", {}, "flat"), ("linear", {"out_features": 5}, "fc"), ("output", {}, "out")):
    g.add_block(kind, params, bid)
for a, b in (("inp", "conv"), ("conv", "act"), ("act", "flat"), ("flat", "fc"), ("fc", "out")):
    g.connect(a, b)
a = analyze(g)
out["shape"] = list(a.blocks["act"].out_shape)
out["report"] = [r["kind"] for r in block_rows(g, a)]
torch.manual_seed(0)
net = compile_graph(g).eval()
x = torch.randn(2, 3, 16, 16)
with torch.no_grad():
    want = net.fc(torch.flatten(F.mish(net.conv(x)), 1))
    out["compiled"] = float((net(x) - want).abs().max())
d = Path(tempfile.mkdtemp())
export_graph(g, "py", d / "m.py")
src = (d / "m.py").read_text()
out["exported_has"] = "self.act = nn.Mish()" in src
import importlib.util
spec = importlib.util.spec_from_file_location("m", d / "m.py"); mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
model = mod.build_model().eval(); model.load_state_dict(net.state_dict())
with torch.no_grad():
    out["exported"] = float((model(x) - want).abs().max())
export_graph(g, "onnx", d / "m.onnx", weights=net.state_dict())
import onnxruntime as ort
y = ort.InferenceSession(str(d / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
out["onnx"] = float((torch.from_numpy(y) - want).abs().max())
from builder.importers import import_source
for opset in (17, 18):  # torch writes Softplus, Tanh, Mul: the kind's pattern; ONNX's own Mish operator by hand
    export_graph(g, "onnx", d / f"m{opset}.onnx", weights=net.state_dict(), opset=opset)
    back = import_source(str(d / f"m{opset}.onnx"), contained=False)
    out[f"onnx_imported_kinds_{opset}"] = [b.type for b in back.graph.blocks()]
    m = compile_graph(back.graph).eval(); m.load_state_dict(back.state)
    with torch.no_grad():
        out[f"onnx_imported_{opset}"] = float((m(x) - want).abs().max())
import onnx
from onnx import helper
model_proto = onnx.load(str(d / "m18.onnx"))
nodes = list(model_proto.graph.node)
first = next(i for i, n in enumerate(nodes) if n.op_type == "Softplus")
mul = next(n for n in nodes[first:] if n.op_type == "Mul")
mish = helper.make_node("Mish", [nodes[first].input[0]], [mul.output[0]], name="/act/Mish")
rest = [n for n in nodes if n.op_type not in ("Softplus", "Tanh") and n is not mul]
del model_proto.graph.node[:]
model_proto.graph.node.extend(rest[:first] + [mish] + rest[first:])
onnx.save(model_proto, str(d / "mish_op.onnx"))
back = import_source(str(d / "mish_op.onnx"), contained=False)
out["onnx_op_kinds"] = [b.type for b in back.graph.blocks()]
class Source(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act, self.fc = nn.Conv2d(3, 8, 3), nn.Mish(), nn.Linear(8 * 14 * 14, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.act(self.conv(x)), 1))
src_model = Source().eval()
imported = import_module(src_model, (3, 16, 16))
out["imported_kinds"] = [b.type for b in imported.graph.blocks()]
back = compile_graph(imported.graph).eval(); back.load_state_dict(imported.state)
with torch.no_grad():
    out["imported"] = float((back(x) - src_model(x)).abs().max())
print(json.dumps(out))
'''


@pytest.mark.timeout(300)
def test_a_mish_kind_in_one_new_file_works_everywhere(tmp_path):
    copy = tmp_path / "blocks"
    # the package without the Mish it ships (blocks/mish.py), then the documented file added to it
    shutil.copytree(ROOT / "blocks", copy, ignore=shutil.ignore_patterns("__pycache__", "mish.py"))
    (copy / "mish.py").write_text(MISH)
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, "-c", CHECK, str(copy)], capture_output=True, text=True, timeout=280,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["palette"] == ["Mish"] and "mish" in got["category"] and got["category"][0] == "relu"
    assert got["shape"] == [8, 14, 14] and "mish" in got["report"]
    assert got["compiled"] < 1e-6 and got["exported"] < 1e-6 and got["exported_has"]
    assert got["onnx"] < 1e-4
    for opset in (17, 18):  # the ONNX importer reads the kind's pattern: one block, not three
        assert got[f"onnx_imported_kinds_{opset}"] == ["input", "conv2d", "mish", "flatten", "linear", "output"]
        assert got[f"onnx_imported_{opset}"] < 1e-5
    assert got["onnx_op_kinds"] == ["input", "conv2d", "mish", "flatten", "linear", "output"]
    assert got["imported_kinds"].count("mish") == 1 and "conv2d" in got["imported_kinds"]
    assert got["imported"] < 1e-6
