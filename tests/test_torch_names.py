"""Block ids become attributes of torch modules: names nn.Module (or the compiled and exported networks) already
use are refused at edit time with a free name suggested, and files that have them load with those blocks
renamed (never a traceback later in compile or export)."""
import json

import pytest
import torch
from torch import nn

from builder.core import project
from builder.backend.compiler import compile_graph
from builder.core.errors import GraphEditError, InvalidIdError
from builder.core.graph import TORCH_ATTRIBUTES, Graph, check_id, make_id, torch_name_clash
from exports import export_graph
from helpers import load_module

CLASHES = ["double", "float", "training", "forward", "parameters", "modules", "apply", "cuda", "type", "zero_grad",
           "train", "to", "_parameters", "_modules", "code", "loss_weights"]


def test_the_list_covers_every_attribute_of_the_installed_torch():
    names = {n for n in dir(nn.Module) if not (n.startswith("__") and n.endswith("__"))} | set(vars(nn.Module()))
    assert not [n for n in names if not torch_name_clash(n)], "nn.Module gained attributes: add them"
    compiled = compile_graph(_chain("c1"))
    own = set(vars(compiled)) - set(vars(nn.Module()))
    assert own <= TORCH_ATTRIBUTES | {n for n in own if n.startswith("_")}


@pytest.mark.parametrize("name", CLASHES + ["fc.train", "block.double"])
def test_clashing_ids_are_refused_with_a_free_name(name):
    g = Graph()
    with pytest.raises(InvalidIdError, match="torch module's own attribute") as e:
        g.add_block("relu", {}, name)
    suggestion = str(e.value).rsplit("try ", 1)[1].strip("'")
    assert not torch_name_clash(suggestion)
    assert "Traceback" not in str(e.value)


def test_a_trailing_newline_is_not_part_of_a_name():
    with pytest.raises(InvalidIdError):
        check_id("x\n")


def test_make_id_never_makes_a_clashing_id():
    for name in CLASHES:
        new = make_id(name, set())
        assert not any(torch_name_clash(p) for p in new.split(".")), new


def _chain(mid):
    g = Graph("clash")
    g.add_block("input", {"channels": 3, "height": 8, "width": 8}, "input")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 3, "padding": 1}, mid)
    g.add_block("relu", {}, "act")
    g.add_block("flatten", {}, "flat")
    g.add_block("linear", {"out_features": 5}, "fc")
    g.add_block("output", {}, "output")
    for a, b in (("input", mid), (mid, "act"), ("act", "flat"), ("flat", "fc"), ("fc", "output")):
        g.connect(a, b)
    return g


def _exported_matches(g, net, tmp_path):
    """The exported code of ``g`` loads ``net``'s weights and gives its outputs."""
    export_graph(g, "py", tmp_path / "m.py")
    mod = load_module(tmp_path / "m.py", "clash_export")
    model = mod.build_model().eval()
    model.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))


@pytest.mark.parametrize("name", CLASHES)
def test_old_files_with_clashing_ids_load_renamed_and_work(tmp_path, name):
    doc = json.loads(project.dumps(_chain("c1")))
    for b in doc["blocks"]:
        if b["id"] == "c1":
            b["id"] = name
    for e in doc["edges"]:
        for end in ("src", "dst"):
            if e[end] == "c1":
                e[end] = name
    f = tmp_path / "old.json"
    f.write_text(json.dumps(doc))
    g = project.load(f)
    new = g.meta["renamed_blocks"][name]
    assert name not in g and new in g and not torch_name_clash(new)
    assert [s for _, s in g.inputs("act")] == [new]
    net = compile_graph(g).eval()
    assert isinstance(net.get_submodule(new), nn.Conv2d) and net.training is False
    _exported_matches(g, net, tmp_path)
    project.save(g, tmp_path / "again.json")  # and it saves: the rename is recorded in meta
    assert project.load(tmp_path / "again.json").signature() == g.signature()


def _group_doc(inner):
    nodes = [[inner[0], "conv2d", {"out_channels": 4, "kernel": 3, "padding": 1}], [inner[1], "relu", {}]]
    edges = [["@in", inner[0], "x"], [inner[0], inner[1], "x"]]
    blocks = [{"id": "input", "type": "input", "params": {"channels": 3, "height": 8, "width": 8}},
              {"id": "g", "type": "group", "params": {"name": "Gate", "graph": {"nodes": nodes, "edges": edges,
                                                                                  "output": inner[1]}}},
              {"id": "output", "type": "output"}]
    return {"format": "block-builder-project", "version": 2, "name": "g", "blocks": blocks,
            "edges": [{"src": "input", "dst": "g", "port": "x"}, {"src": "g", "dst": "output", "port": "x"}]}


@pytest.mark.parametrize("inner", [("class", "__init__"), ("double", "training"), ("def", "x.forward")])
def test_ids_inside_groups_follow_the_same_rules(tmp_path, inner):
    g = Graph()
    params = _group_doc(inner)["blocks"][1]["params"]
    with pytest.raises(GraphEditError, match=r"nodes\[0\] has id .*try '") as e:
        g.add_block("group", params, "g")
    assert "Traceback" not in str(e.value) and len(g) == 0
    f = tmp_path / "old.json"  # a file from before: it loads, the inner blocks renamed, and it works
    f.write_text(json.dumps(_group_doc(inner)))
    loaded = project.load(f)
    renamed = loaded.meta["renamed_blocks"]
    assert set(renamed) == {f"g/{inner[0]}", f"g/{inner[1]}"}
    inside = loaded.block("g").params["graph"]
    assert [n[0] for n in inside["nodes"]] == [renamed[f"g/{inner[0]}"], renamed[f"g/{inner[1]}"]]
    _exported_matches(loaded, compile_graph(loaded).eval(), tmp_path)
