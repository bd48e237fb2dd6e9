"""The import structure: core (blocks, graph, analysis, compiler, project) <- templates, exports, training <- app
(cli, ui). A back-edge or any import cycle fails here (import-linter's contract in pyproject.toml, and a cycle
search over the whole import graph: function-level imports count too)."""
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("blocks", "builder", "templates", "exports")


def test_layers_contract_is_kept():
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(exe), "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 kept, 0 broken" in r.stdout


def import_graph() -> nx.DiGraph:
    g = grimp.build_graph(*PACKAGES, cache_dir=None)
    dg = nx.DiGraph()
    for module in g.modules:
        dg.add_node(module)
        for imported in g.find_modules_directly_imported_by(module):
            if imported.split(".")[0] in PACKAGES:
                dg.add_edge(module, imported)
    return dg


def test_there_is_no_import_cycle():
    dg = import_graph()
    # a module importing its own package (whose __init__ imports it) is a cycle too: no edge is dropped
    tangles = [sorted(c) for c in nx.strongly_connected_components(dg) if len(c) > 1]
    assert not tangles, "modules that import each other, directly or around a cycle: " + "; ".join(
        " <-> ".join(t) for t in tangles)
    assert nx.is_directed_acyclic_graph(dg)


def test_the_cycle_search_finds_a_cycle():
    """The check can fail: the same search over a graph with a back-edge reports it."""
    dg = import_graph()
    dg.add_edge("builder.core.graph", "builder.core.analysis")  # what graph.py used to do
    assert not nx.is_directed_acyclic_graph(dg)
    assert any({"builder.core.graph", "builder.core.analysis"} <= c for c in nx.strongly_connected_components(dg))
