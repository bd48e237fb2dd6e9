import pytest

from builder.core import edits
from builder.core.graph import Graph, make_id
from builder.core.analysis import analyze


def test_events_fire_in_the_past_tense():
    g = Graph()
    seen = []
    for name in ("block_added", "block_removed", "block_changed", "block_moved", "edge_added", "edge_removed"):
        getattr(g, name).connect(lambda *a, n=name: seen.append((n,) + a))
    a = g.add_block("input", {}, "i")
    b = g.add_block("relu", {}, "r")
    g.connect(a, b)
    g.set_params(b, {"inplace": False})
    g.move(b, (10, 20))
    g.disconnect(a, b, "x")
    g.remove_block(b)
    assert [s[0] for s in seen] == ["block_added", "block_added", "edge_added", "block_changed", "block_moved",
                                   "edge_removed", "block_removed"]


def test_concat_port_order_is_meaningful():
    g = Graph()
    i = g.add_block("input", {"channels": 1, "height": 4, "width": 4}, "i")
    a = g.add_block("conv2d", {"out_channels": 2, "kernel": 1}, "a")
    b = g.add_block("conv2d", {"out_channels": 3, "kernel": 1}, "b")
    c = g.add_block("concat", {}, "c")
    for x in (a, b):
        g.connect(i, x)
    assert g.connect(b, c) == "in0"
    assert g.connect(a, c) == "in1"
    assert [s for _, s in g.inputs(c)] == ["b", "a"]
    g.add_block("output", {}, "o")
    g.connect(c, "o")
    import torch
    from builder.backend.compiler import compile_graph
    net = compile_graph(g).eval()
    x = torch.randn(1, 1, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(net(x), torch.cat([net.b(x), net.a(x)], 1))


def test_remove_and_restore_keeps_wires():
    g = Graph()
    i = g.add_block("input", {}, "i")
    r = g.add_block("relu", {}, "r")
    o = g.add_block("output", {}, "o")
    g.connect(i, r)
    g.connect(r, o)
    before = g.signature()
    rec = g.remove_block(r)
    assert g.edges() == []
    g.restore_block(rec)
    assert g.signature() == before


def test_make_id_from_hostile_text():
    taken = {"conv"}
    assert make_id("conv", taken) == "conv_2"
    assert make_id("class", set()) == "class_"
    assert make_id("__import__('os').system('x')", set()).isidentifier()
    assert make_id("", set(), fallback="relu") == "relu"
    assert make_id("9lives", set()) == "block_9lives"
    assert make_id("Ünïcødé näme", set()) == "Unicde_name"  # ø has no ASCII decomposition


@pytest.mark.parametrize("kind", ["inception_v1", "inception_a", "inception_c", "inception_e", "inception_b",
                                  "inception_d", "grid_reduction", "resnet_bottleneck", "mlpconv", "aux_googlenet"])
def test_expand_then_collapse_changes_no_figure(kind):
    g = Graph()
    shape = {"mlpconv": (3, 64, 64), "aux_googlenet": (512, 14, 14)}.get(kind, (64, 35, 35))
    i = g.add_block("input", {"channels": shape[0], "height": shape[1], "width": shape[2]}, "i")
    m = g.add_block(kind, {}, "m")
    g.connect(i, m)
    g.add_block("output", {}, "o")
    g.connect(m, "o")
    a0 = analyze(g)
    assert a0.ok, a0.errors
    new = edits.expand(g, "m")
    assert len(new) > 2 and "m" not in g
    a1 = analyze(g)
    assert (a1.inference.params, a1.inference.macs, a1.inference.activations, a1.blocks["o"].out_shape) == \
        (a0.inference.params, a0.inference.macs, a0.inference.activations, a0.blocks["o"].out_shape)
    from builder.backend.compiler import compile_graph
    k0 = set(compile_graph(g).state_dict())
    edits.collapse(g, "m")
    a2 = analyze(g)
    assert (a2.inference.params, a2.inference.macs) == (a0.inference.params, a0.inference.macs)
    assert set(compile_graph(g).state_dict()) == k0


def test_collapse_refuses_edited_inside():
    g = Graph()
    i = g.add_block("input", {"channels": 64, "height": 28, "width": 28}, "i")
    g.add_block("inception_v1", {}, "m")
    g.connect(i, "m")
    g.add_block("output", {}, "o")
    g.connect("m", "o")
    edits.expand(g, "m")
    g.set_params("m.branch1", {"out_channels": 7})
    from builder.core.errors import GraphEditError
    with pytest.raises(GraphEditError, match="edited"):
        edits.collapse(g, "m")
