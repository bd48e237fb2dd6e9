"""One back end (issue 21): the compiled module is the generated code, so every composite and group is a module
with its own forward (callable alone, hookable), and state_dict keys come in torchvision's order."""
import pytest
import torch
from torchvision import models

import templates
from builder.core import edits
from builder.backend.compiler import compile_graph
from builder.core.analysis import analyze
from builder.core.ir import lower
from exports.pytorch import generate
from helpers import assert_outputs_close, depth_of, load_module

# every template with a torchvision counterpart
COUNTERPARTS = ["googlenet", "inception_v3", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34",
                "resnet50", "resnext50_32x4d", "mobilenet_v2", "squeezenet1_1", "densenet121", "efficientnet_b0"]


@pytest.mark.parametrize("name", COUNTERPARTS)
def test_state_dict_keys_come_in_torchvisions_order(name, tmp_path):
    kw = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):  # keys only: no memory for the weights
        want = list(models.get_model(name, weights=None, **kw).state_dict())
        got = list(compile_graph(templates.build(name)).state_dict())
    assert got == want
    path = tmp_path / "m.py"
    path.write_text(generate(templates.build(name)))
    with torch.device("meta"):
        exported = list(load_module(path, f"order_{name}").build_model().state_dict())
    assert exported == want


def test_a_composite_runs_alone_and_its_hooks_fire():
    torch.manual_seed(0)
    ref = models.resnet50(weights=None).eval()
    net = compile_graph(templates.build("resnet50")).eval()
    net.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 64, 56, 56)
    seen = []
    handle = net.layer1.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    inner = getattr(net.layer2, "0").register_forward_hook(lambda m, i, o: seen.append(("layer2.0", tuple(o.shape))))
    with torch.no_grad():
        assert_outputs_close(net.layer1(x), ref.layer1(x), depth_of(ref.layer1), "layer1 alone")
        assert_outputs_close(getattr(net.layer1, "0")(x), ref.layer1[0](x), 4, "layer1.0 alone")
        net(torch.randn(1, 3, 64, 64))
    handle.remove(), inner.remove()
    assert seen == [(1, 256, 56, 56), (1, 256, 16, 16), ("layer2.0", (1, 512, 8, 8))]
    g = compile_graph(templates.build("googlenet")).eval()
    fired = []
    g.inception4a.register_forward_hook(lambda m, i, o: fired.append(tuple(o.shape)))
    g.inception4a.branch2.register_forward_hook(lambda m, i, o: fired.append(("branch2", tuple(o.shape))))
    with torch.no_grad():
        g(torch.randn(1, 3, 224, 224))
    assert fired == [("branch2", (1, 208, 14, 14)), (1, 512, 14, 14)]


def test_every_container_has_a_forward():
    """No module of a compiled template or import is a bare container (a plain nn.Module or ModuleDict)."""
    from builder.importers import import_source
    graphs = [templates.build(n) for n in ("googlenet", "efficientnet_b0", "densenet121", "mobilenet_v2")]
    graphs.append(import_source("torchvision:regnet_y_400mf").graph)
    for g in graphs:
        net = compile_graph(g)
        bare = [n for n, m in net.named_modules() if type(m).forward is torch.nn.Module.forward]
        assert not bare, (g.name, bare[:5])
        assert "ModuleDict" not in generate(g)


def test_after_an_advisor_refactor_the_export_is_still_classes_with_forward(tmp_path):
    from builder.insight import advisor
    g = templates.build("googlenet")
    ref = next(r for r in advisor.refactors(advisor.check(g)) if r.code == "factorize_3x3")
    advisor.apply(g, ref)
    assert any(i.startswith(ref.block + ".") for i in g.ids())  # the composite became dotted blocks
    src = generate(g)
    assert "ModuleDict" not in src
    net = compile_graph(g).eval()
    top = ref.block.split(".")[0]
    assert type(getattr(net, top)).forward is not torch.nn.Module.forward
    path = tmp_path / "r.py"
    path.write_text(src)
    model = load_module(path, "refactored").build_model().eval()
    assert list(model.state_dict()) == list(net.state_dict())
    model.load_state_dict(net.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert_outputs_close(model(x), net(x), depth_of(net))


def test_a_group_is_a_module_with_forward():
    g = templates.build("lenet5")
    edits.group(g, ["c3", "c3_act"], "Feature Block")
    net = compile_graph(g).eval()
    gid = next(b.id for b in g.blocks() if b.type == "group")
    mod = getattr(net, gid)
    assert type(mod).__name__ == "FeatureBlock"
    x = torch.randn(1, 6, 14, 14)
    assert gid == "Feature_Block" and [n for n, _ in mod.named_children()] == ["c3", "c3_act"]
    with torch.no_grad():
        torch.testing.assert_close(mod(x), torch.tanh(mod.c3(x)))
        assert tuple(mod(x).shape) == (1, 16, 10, 10)


def test_the_lowered_network_is_memoised_per_change():
    g = templates.build("googlenet")
    a = lower(g)
    assert lower(g) is a
    g.move("conv1", (5.0, 5.0))
    assert lower(g) is a  # a move does not change the network
    g.set_params("conv1", {"out_channels": 32})
    b = lower(g)
    assert b is not a and b.by_id["conv1"].params["out_channels"] == 32
    assert [n.id for n in b.nodes][:3] == ["input", "conv1", "maxpool1"]
    assert b.by_id["inception3a.branch2.1"].scope == ("inception3a",)
    assert b.by_id["inception3a.branch2.1"].local == "branch2.1"
    assert b.composites["inception3a"].kind == "inception_v1"
    stale = analyze(g)
    g.set_params("conv1", {"out_channels": 48})  # a view still holding the analysis of a moment ago
    g.remove_block("aux1")
    c = lower(g, stale, partial=True)
    assert c.by_id["conv1"].params["out_channels"] == 48 and c.by_id["maxpool1"].shape[0] == 48
    assert not any(n.block == "aux1" for n in c.nodes) and any(n.block == "aux2" for n in c.nodes)
    assert lower(g, partial=True) is c


def test_groups_that_read_each_other_keep_their_paths_as_plain_containers(tmp_path):
    """a.x -> b.y -> a.z: neither dotted group can be one call before the other, so one of them is written as
    its blocks at their own paths (containers without forward); keys stay the ids and both modules agree."""
    from builder.core.graph import Graph
    g = Graph("interleaved")
    g.add_block("input", {"channels": 3, "height": 8, "width": 8}, "input")
    for bid in ("a.x", "b.y", "a.z"):
        g.add_block("conv2d", {"out_channels": 4, "kernel": 1}, bid)
    g.add_block("output", {}, "output")
    for u, v in (("input", "a.x"), ("a.x", "b.y"), ("b.y", "a.z"), ("a.z", "output")):
        g.connect(u, v)
    net = compile_graph(g).eval()
    # a module tree lists a container's children together: a.x and a.z before b.y
    assert list(net.state_dict()) == ["a.x.weight", "a.x.bias", "a.z.weight", "a.z.bias", "b.y.weight", "b.y.bias"]
    assert type(net.a).forward is torch.nn.Module.forward and type(net.b).forward is not torch.nn.Module.forward
    path = tmp_path / "i.py"
    path.write_text(generate(g))
    model = load_module(path, "interleaved").build_model().eval()
    assert list(model.state_dict()) == list(net.state_dict())
    model.load_state_dict(net.state_dict())
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        want = net.a.z(net.b.y(net.a.x(x)))
        torch.testing.assert_close(net(x), want)
        torch.testing.assert_close(model(x), want)
