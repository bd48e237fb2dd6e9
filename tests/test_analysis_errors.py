"""Every error kind is reported on the block that causes it, with a readable message; nothing raises."""
import pytest

from builder.core.analysis import Analyzer, analyze
from builder.core.errors import CycleError, DuplicateIdError, GraphEditError, InvalidIdError, PortError
from builder.core.graph import Graph
from helpers import single


def chain(*specs, shape=(3, 32, 32)):
    g = Graph()
    prev = g.add_block("input", {"channels": shape[0], "height": shape[1], "width": shape[2]}, "inp")
    for bid, t, p in specs:
        g.add_block(t, p, bid)
        g.connect(prev, bid)
        prev = bid
    g.add_block("output", {}, "out")
    g.connect(prev, "out")
    return g


def only_error(a, block):
    errs = [i for i in a.errors]
    assert [e.block for e in errs] == [block], errs
    return errs[0]


def test_shape_mismatch_linear_after_conv_names_shape():
    g = chain(("c", "conv2d", {"out_channels": 8, "kernel": 3}), ("fc", "linear", {"out_features": 10}))
    e = only_error(analyze(g), "fc")
    assert e.code == "shape_mismatch"
    assert "8x30x30" in e.message and "Flatten" in e.message


def test_channel_mismatch_names_both():
    g = chain(("c", "conv2d", {"out_channels": 8, "kernel": 1, "in_channels": 5}))
    e = only_error(analyze(g), "c")
    assert e.code == "channel_mismatch"
    assert "5" in e.message and "3x32x32" in e.message


def test_add_mismatch_names_both_shapes_and_sources():
    g = single("add", {}, [(3, 8, 8), (4, 8, 8)])
    e = only_error(analyze(g), "blk")
    assert e.code == "shape_mismatch"
    assert "3x8x8 (from pre0)" in e.message and "4x8x8 (from pre1)" in e.message


def _two_broken_concats():
    """Two concats whose inputs have the same mismatched shapes, fed by different blocks."""
    g = Graph("two")
    g.add_block("input", {"channels": 3, "height": 8, "width": 8}, "inp")
    for side in ("a", "b"):
        g.add_block("conv2d", {"out_channels": 4, "kernel": 1}, f"{side}_wide")
        g.add_block("conv2d", {"out_channels": 4, "kernel": 1, "stride": 2}, f"{side}_small")
        g.add_block("concat", {}, f"{side}_cat")
        g.add_block("output", {"role": "main" if side == "a" else "aux"}, f"{side}_out")
        for x, y in (("inp", f"{side}_wide"), ("inp", f"{side}_small"), (f"{side}_wide", f"{side}_cat"),
                     (f"{side}_small", f"{side}_cat"), (f"{side}_cat", f"{side}_out")):
            g.connect(x, y)
    return g


def test_error_messages_name_their_own_sources():
    """Rule results are cached by shapes; the names in a message are this graph's, per block, every time."""
    g = _two_broken_concats()
    a = analyze(g)
    ea, eb = a.blocks["a_cat"].errors[0], a.blocks["b_cat"].errors[0]
    assert "(from a_wide)" in ea.message and "(from a_small)" in ea.message and "b_" not in ea.message
    assert "(from b_wide)" in eb.message and "(from b_small)" in eb.message and "a_" not in eb.message
    assert ea.related == ("a_wide", "a_small") and eb.related == ("b_wide", "b_small")  # the ids, as data
    # another graph with the same shapes, and a rename: each message names what is there now
    g2 = _two_broken_concats()
    g2.rename("b_wide", "renamed_wide")
    e2 = analyze(g2).blocks["b_cat"].errors[0]
    assert "(from renamed_wide)" in e2.message and "b_wide" not in e2.message
    assert e2.related == ("renamed_wide", "b_small")
    assert "(from a_wide)" in analyze(g).blocks["a_cat"].errors[0].message  # the first graph is unchanged


def test_spatial_mismatch_at_concat():
    g = single("concat", {}, [(3, 8, 8), (4, 4, 4)])
    e = only_error(analyze(g), "blk")
    assert e.code == "spatial_mismatch"
    assert "3x8x8" in e.message and "4x4x4" in e.message


def test_kernel_larger_than_input():
    g = chain(("c", "conv2d", {"out_channels": 8, "kernel": 7}), shape=(3, 5, 5))
    e = only_error(analyze(g), "c")
    assert e.code == "kernel_too_large"
    assert "7x7" in e.message and "5x5" in e.message


def test_errors_stay_on_the_cause_not_downstream():
    g = chain(("c", "conv2d", {"out_channels": 8, "kernel": 7}), ("r", "relu", {}),
              ("p", "maxpool2d", {}), shape=(3, 5, 5))
    a = analyze(g)
    assert [e.block for e in a.errors] == ["c"]
    assert a.blocks["p"].out_shape is None


def test_cycle_from_a_file_is_reported_on_its_blocks():
    g = chain(("a", "relu", {}), ("b", "relu", {}))
    g.add_block("add", {}, "s")
    g.connect("a", "s", "in0")
    g.connect("b", "s", "in1", check_cycle=False)
    g.disconnect("a", "b", "x")
    g.connect("s", "b", "x", check_cycle=False)
    a = analyze(g)
    cyc = {e.block for e in a.errors if e.code == "cycle"}
    assert cyc == {"s", "b"}
    assert all("cycle" in e.message for e in a.errors if e.code == "cycle")


def test_connect_refuses_a_cycle():
    g = chain(("a", "relu", {}), ("b", "relu", {}))
    g.add_block("add", {}, "s")
    g.connect("b", "s")
    with pytest.raises(CycleError):
        g.connect("s", "s")
    g.disconnect("inp", "a", "x")
    with pytest.raises(CycleError, match="cycle"):
        g.connect("s", "a", "x")


def test_unconnected_input():
    g = chain(("a", "relu", {}))
    g.add_block("conv2d", {}, "lonely")
    g.add_block("output", {"role": "aux"}, "o2")
    g.connect("lonely", "o2")
    e = only_error(analyze(g), "lonely")
    assert e.code == "unconnected_input" and "'x'" in e.message


def test_unknown_block_type():
    g = chain(("a", "relu", {}))
    g.add_block("made_up_layer", {}, "mystery", strict=False)
    g.connect("a", "mystery")
    g.add_block("output", {"role": "aux"}, "o2")
    g.connect("mystery", "o2")
    e = only_error(analyze(g), "mystery")
    assert e.code == "unknown_type" and "made_up_layer" in e.message


def test_graph_level_issues():
    g = Graph()
    g.add_block("relu", {}, "r")
    codes = {i.code for i in analyze(g).errors}
    assert {"no_output", "no_input"} <= codes


def test_error_inside_a_composite_is_reported_on_it():
    g = chain(("inc", "inception_b", {}), shape=(8, 2, 2))
    e = only_error(analyze(g), "inc")
    assert "inside" in e.message and "branch3x3" in e.message


def test_typed_edit_errors():
    g = chain(("a", "relu", {}))
    with pytest.raises(DuplicateIdError):
        g.add_block("relu", {}, "a")
    for bad in ("1abc", "a b", "class", "x..y", "", "__import__"):
        with pytest.raises(InvalidIdError):
            g.add_block("relu", {}, bad)
    with pytest.raises(InvalidIdError):
        g.add_block("relu", {}, "a.inner")  # 'a' is a leaf module: it cannot also be a parent path
    with pytest.raises(PortError):
        g.connect("inp", "a", "x")  # occupied
    with pytest.raises(PortError):
        g.connect("inp", "a", "nope")
    with pytest.raises(GraphEditError, match="kernel"):
        g.add_block("conv2d", {"kernel": 10**9})
    with pytest.raises(GraphEditError, match="out_channels"):
        g.add_block("conv2d", {"out_channels": 10**6})
    with pytest.raises(GraphEditError, match="no parameter"):
        g.add_block("conv2d", {"colour": "red"})
    with pytest.raises(GraphEditError):
        g.set_params("a", {"inplace": "maybe"})


def test_incremental_analysis_recomputes_only_the_changed_blocks(monkeypatch):
    from builder.core import analysis as an
    g = chain(*[(f"c{i}", "conv2d", {"out_channels": 8, "kernel": 3, "padding": 1}) for i in range(20)])
    az = Analyzer(g)
    az.run()
    calls = []
    real = an._evaluate
    monkeypatch.setattr(an, "_evaluate", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    az.run()
    assert calls == []  # nothing changed, nothing recomputed
    g.set_params("c10", {"kernel": 5, "padding": 2})
    a = az.run()
    assert calls == ["conv2d"]  # shape unchanged downstream, so only c10
    assert a.blocks["c10"].params == 8 * 8 * 25 + 8
    g.set_params("c10", {"out_channels": 4})
    az.run()
    assert len(calls) == 2 + 1  # c10 and c11 (its input channels changed); c12 on sees the same input
