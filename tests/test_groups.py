"""Collapsing a selection into a new composite block (a group): analysis, compile, export, expand, undo."""

import pytest
import torch

import templates
from builder.core import edits
from builder.core import project
from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from builder.core.errors import GraphEditError
from exports.pytorch import generate
from helpers import load_module


def test_group_a_selection_keeps_every_figure_and_round_trips(tmp_path):
    g = templates.build("lenet5")
    a0 = analyze(g)
    gid = edits.group(g, ["c3", "c3_act", "s4"], "Feature stage")
    assert gid == "Feature_stage" and g.block(gid).type == "group"
    assert [s for _, s in g.inputs(gid)] == ["s2"] and [v for v, _ in g.consumers(gid)] == ["c5"]
    a1 = analyze(g)
    assert a1.ok and (a1.inference.params, a1.inference.macs) == (a0.inference.params, a0.inference.macs)
    assert a1.blocks[gid].out_shape == (16, 5, 5)
    net = compile_graph(g).eval()
    assert "Feature_stage.c3.weight" in net.state_dict()
    src = generate(g)
    assert "class FeatureStage(nn.Module)" in src
    path = tmp_path / "m.py"
    path.write_text(src)
    mod = load_module(path, "grp")
    model = mod.build_model().eval()
    model.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))
    f = tmp_path / "g.json"
    project.save(g, f)
    assert project.load(f).signature() == g.signature()
    edits.expand(g, gid)
    assert analyze(g).inference.macs == a0.inference.macs
    edits.collapse(g, gid)
    assert g.block(gid).type == "group"


def test_group_refuses_selections_with_several_inputs_or_outputs():
    g = templates.build("googlenet")
    with pytest.raises(GraphEditError, match="one input"):
        edits.group(g, ["conv1", "conv3"])
    with pytest.raises(GraphEditError, match="Output"):
        edits.group(g, ["fc", "output"])
    with pytest.raises(GraphEditError, match="one output"):
        edits.group(g, ["inception4a", "aux1", "inception4b"])


def test_grouping_is_one_undoable_step():
    g = templates.build("googlenet")
    start = g.signature()
    steps = g.record(lambda gr: edits.group(gr, ["inception3a", "inception3b", "maxpool3"], "Stage 3"))
    assert analyze(g).ok
    for _, undo in reversed(steps):
        undo()
    assert g.signature() == start


def test_hostile_group_files_are_refused(tmp_path):
    import json
    doc = json.loads(project.dumps(templates.build("lenet5")))
    doc["blocks"].append({"id": "evil", "type": "group", "params": {"name": "x", "graph": {
        "nodes": [["a", "input", {}]], "edges": [], "output": "a"}}})
    f = tmp_path / "evil.json"
    f.write_text(json.dumps(doc))
    from builder.core.errors import ProjectError
    with pytest.raises(ProjectError, match="cannot hold"):
        project.load(f)


def test_a_refused_group_leaves_the_graph_exactly_as_it_was():
    """group() opens composites in the selection before it checks the selection: refused, it must put them
    back (inception3a stayed expanded: 39 blocks instead of 26), for any caller, journal or not."""
    g = templates.build("googlenet")
    before, n = g.signature(), len(g)
    with pytest.raises(GraphEditError, match="one input"):
        edits.group(g, ["inception3a", "conv3", "inception3b", "maxpool3", "aux1", "inception4b"], "Too much")
    assert len(g) == n and g.signature() == before
    assert g.journal is None


def test_a_transaction_is_all_or_nothing():
    g = templates.build("lenet5")
    before = g.signature()
    with pytest.raises(GraphEditError):
        with g.transaction():
            g.set_params("c1", {"out_channels": 9})
            g.remove_block("s2")
            edits.expand(g, "not_there")
    assert g.signature() == before
    with g.transaction() as steps:
        g.set_params("c1", {"out_channels": 9})
    assert g.block("c1").params["out_channels"] == 9 and len(steps) == 1
    for _, undo in reversed(steps):
        undo()
    assert g.signature() == before
