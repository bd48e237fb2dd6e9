"""Every package a user-visible feature needs is a runtime requirement of the distribution (issue 16: ONNX export
once failed on a plain `pip install .` because onnx was only a test extra). Two checks: the imports written in the
code (lazy ones inside functions included), and the modules actually loaded while every feature runs in a fresh
interpreter (torch.onnx imports onnx itself, which no import statement of ours shows)."""
import ast
import importlib.metadata as md
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"builder", "blocks", "templates", "exports"}


def _requirement_name(req: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0].lower().replace("_", "-")

from exports.training import PACKAGE  # noqa: E402


def _runtime_closure() -> set:
    """The distribution's runtime requirements (no extras) and, recursively, theirs."""
    todo, seen = [_requirement_name(r) for r in md.requires("block-builder") if "extra ==" not in r], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue  # an optional dependency of a dependency that is not installed
        todo += [_requirement_name(r) for r in reqs if "extra ==" not in r]
    return seen


def _distributions(modules) -> dict:
    """{top-level module: its distribution names} for the third-party ones."""
    dists = md.packages_distributions()
    out = {}
    for m in modules:
        if m in OURS or m in sys.stdlib_module_names or m.startswith("_") or m == "__main__":
            continue
        if m == PACKAGE:  # an exported train.py's import of the training package written beside it
            continue
        names = dists.get(m)
        assert names, f"module {m!r} is imported but belongs to no installed distribution"
        out[m] = {n.lower().replace("_", "-") for n in names}
    return out


def _missing(modules) -> dict:
    closure = _runtime_closure()
    return {m: d for m, d in _distributions(modules).items() if not d & closure}


def test_every_import_in_the_code_is_a_runtime_requirement():
    modules = set()
    for package in OURS:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    assert {"torch", "networkx", "PySide6", "safetensors"} <= modules  # the walk saw the code
    assert not _missing(modules)


FEATURES = r"""
import json, sys, tempfile
from pathlib import Path
import templates
from builder.core import project
from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from builder.cli import main as cli_main
from exports import EXPORTS, FORMATS, export_graph
out = Path(tempfile.mkdtemp())
g = templates.build("lenet5")
project.save(g, out / "l.json")
analyze(project.load(out / "l.json"))
compile_graph(g)
for fmt in FORMATS:
    export_graph(g, fmt, out / f"model_{fmt}{EXPORTS[fmt].suffix}")
cli_main(["train", str(out / "l.json"), "--dataset", "synthetic", "--epochs", "1", "--max-steps", "1", "--batch-size", "4",
            "--synthetic-size", "8", "--out", str(out / "run"), "--device", "cpu"])
# modules loaded from files (not the ones extension modules create at run time, such as cython_runtime)
print("MODULES=" + json.dumps(sorted({m.split(".")[0] for m, mod in list(sys.modules.items())
                                      if getattr(mod, "__file__", None)})))
"""


def test_every_module_a_feature_loads_is_a_runtime_requirement():
    run = subprocess.run([sys.executable, "-c", FEATURES], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    modules = json.loads(run.stdout.rsplit("MODULES=", 1)[1])
    assert {"onnx", "torch", "safetensors"} <= set(modules)  # ONNX export and training ran
    assert not _missing(modules), "features load modules that only an extra installs"


@pytest.mark.timeout(240)
def test_the_wheel_builds_without_warnings_and_holds_the_zoo_and_every_package(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = proc.stdout + proc.stderr
    assert "absent from the `packages` configuration" not in said and "Package would be ignored" not in said, said
    (wheel,) = tmp_path.glob("block_builder-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    zoo = sorted(p.name for p in (ROOT / "templates" / "zoo").glob("*.json"))
    assert zoo and all(f"templates/zoo/{n}" in names for n in zoo), sorted(n for n in names if "zoo" in n)
    # every folder of Python code in the tree is in the wheel (a package left out would be missing when installed)
    for folder in ("builder", "blocks", "templates", "exports"):
        for py in (ROOT / folder).rglob("*.py"):
            rel = py.relative_to(ROOT).as_posix()
            assert "__pycache__" in rel or rel in names, rel
