"""Hostile project names through every export (issue 23): a name made of quotes, newlines, line and paragraph
separators or code gives exported PyTorch and training packages that import, build and run the network, with
the name kept as text (PROJECT_NAME), never as code; diagrams and figures hold it escaped."""
import importlib.util
import subprocess
import sys

import pytest
import torch

import templates
from exports.api import export_graph

NAMES = [
    "it's \"quoted\"",                      # quotes of both kinds
    "line one\nline two\r\nthree",          # newlines
    "left\u2028right",                      # U+2028 (a line break to Python's str.splitlines, not to its parser)
    "para\u2029graph",                      # U+2029
    "__import__('os').system('exit 3')",    # code
    "x'''\nimport os\nos._exit(3)\n'''",    # code that closes a triple-quoted string
    "\"\"\"; raise SystemExit(3); \"\"\"",  # code that closes a docstring
    "class",                                # a keyword
    "123 go",                               # not an identifier
]


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", NAMES)
def test_a_hostile_project_name_gives_code_that_builds_and_keeps_the_name_as_text(tmp_path, name):
    g = templates.build("lenet5")
    g.name = name
    (py,) = export_graph(g, "py", tmp_path / "net.py")
    mod = _load(py, "hostile_net")
    assert mod.PROJECT_NAME == name
    model = mod.build_model().eval()
    assert type(model).__name__.isidentifier()
    with torch.no_grad():
        assert tuple(model(torch.zeros(2, 1, 32, 32)).shape) == (2, 10)
    # the training package: its model file is the same code, its script compiles and its package imports
    written = export_graph(g, "train", tmp_path / "pkg" / "train.py")
    assert {p.name for p in written} >= {"train.py", "model.py"}
    model_mod = _load(tmp_path / "pkg" / "model.py", "hostile_pkg_model")
    assert model_mod.PROJECT_NAME == name
    assert sum(p.numel() for p in model_mod.build_model().parameters()) == \
        sum(p.numel() for p in model.parameters()) == 61_706
    compile((tmp_path / "pkg" / "train.py").read_text(), "train.py", "exec")
    # the diagram's DOT: the name is one quoted label (graphviz reads it back as the same text)
    (dot,) = export_graph(g, "dot", tmp_path / "net.dot")
    import graphviz
    graphviz.Source(dot.read_text()).pipe(format="svg")  # dot parses it (a broken quote is a syntax error)


def test_the_exported_training_script_runs_with_a_hostile_name(tmp_path):
    g = templates.build("lenet5")
    g.name = NAMES[5]
    export_graph(g, "train", tmp_path / "pkg" / "train.py")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(tmp_path / "pkg" / "train.py"), "--dataset", "synthetic",
                           "--epochs", "1", "--max-steps", "2", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [e["step"] for e in events if e["event"] == "step"][:1] == [1]
    assert events[-1]["event"] == "done" and events[-1]["step"] == 2 and (out / "last.safetensors").exists()
