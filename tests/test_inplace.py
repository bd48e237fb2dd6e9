"""In-place operations are exact by construction: compiled and exported networks give the outputs and gradients
of the same network with every in-place operation turned off, in eval and in train mode."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from builder.core.analysis import analyze
from builder.backend.compiler import compile_graph
from builder.core.ir import inplace_plan, lower
from builder.core.graph import Graph
from exports import export_graph
from helpers import load_module


def without_inplace(g: Graph) -> Graph:
    from builder.core import project
    ref = project.loads(project.dumps(g))
    for b in list(ref.blocks()):
        if b.spec.inplace:
            ref.set_params(b.id, {"inplace": False})
    return ref


def _outputs(model, x, train, seed=3):
    model.train(train)
    torch.manual_seed(seed)
    xi = x.clone().requires_grad_(True)
    out = model(xi)
    outs = out if isinstance(out, tuple) else (out,)
    w = torch.Generator().manual_seed(7)
    loss = sum((o * torch.randn(o.shape, generator=w)).sum() for o in outs)
    loss.backward()
    # by name (the exported module declares aux heads last); an aux head gets no gradient in eval mode
    grads = {n: p.grad.clone() if p.grad is not None else None for n, p in model.named_parameters()}
    grads["<input>"] = xi.grad.clone()
    model.zero_grad(set_to_none=True)
    return [o.detach() for o in outs], grads


def assert_same_network(g: Graph, tmp_path=None):
    """The graph as compiled (in-place where the plan allows) == the graph with in-place off, outputs and
    gradients, eval and train; the exported module too when ``tmp_path`` is given."""
    ref_g = without_inplace(g)
    net, ref = compile_graph(g), compile_graph(ref_g)
    ref.load_state_dict(net.state_dict())
    models = [net]
    if tmp_path is not None:
        path = tmp_path / "m.py"
        export_graph(g, "py", path)
        mod = load_module(path, "inplace_export")
        exported = mod.build_model()
        exported.load_state_dict(net.state_dict())
        models.append(exported)
    x = torch.randn(2, *net.input_shapes[0])
    for train in (False, True):
        want_out, want_grads = _outputs(ref, x, train)
        for m in models:
            m.load_state_dict(ref.state_dict())  # the same running statistics before each pass
            got_out, got_grads = _outputs(m, x, train)
            for a, b in zip(got_out, want_out):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
            assert {k: v is None for k, v in got_grads.items()} == {k: v is None for k, v in want_grads.items()}
            for name, a in got_grads.items():
                if a is not None:
                    torch.testing.assert_close(a, want_grads[name], rtol=1e-6, atol=1e-7)
        ref.load_state_dict(net.state_dict())


def _chain(g, *pairs):
    for a, b in pairs:
        g.connect(a, b)


def test_relu_after_dropout_beside_a_branch_that_reads_the_same_tensor(tmp_path):
    """input -> c1 -> dropout -> relu -> concat, beside c1 -> c2 -> concat: Dropout returns its input in eval,
    so an in-place ReLU would overwrite what c2 still reads (outputs were off by up to 1.02)."""
    g = Graph("dropout_alias")
    g.add_block("input", {"channels": 3, "height": 8, "width": 8}, "inp")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 1}, "c1")
    g.add_block("dropout", {"p": 0.5}, "drop")
    g.add_block("relu", {"inplace": True}, "relu")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 3, "padding": 1}, "c2")
    g.add_block("concat", {}, "cat")
    g.add_block("output", {}, "out")
    _chain(g, ("inp", "c1"), ("c1", "drop"), ("drop", "relu"), ("relu", "cat"), ("c1", "c2"), ("c2", "cat"),
           ("cat", "out"))
    assert "relu" in inplace_plan(lower(g))  # runs out of place
    assert_same_network(g, tmp_path)


def test_relu_after_flatten_beside_a_pooled_branch(tmp_path):
    """c1 -> flatten -> relu -> fc1 beside c1 -> global pool -> flatten -> fc2, fc1 + fc2: Flatten is a view
    (off by 0.298 before, in training too)."""
    g = Graph("flatten_alias")
    g.add_block("input", {"channels": 3, "height": 4, "width": 4}, "inp")
    g.add_block("conv2d", {"out_channels": 2, "kernel": 1}, "c1")
    g.add_block("flatten", {}, "f1")
    g.add_block("relu", {"inplace": True}, "relu")
    g.add_block("linear", {"out_features": 5}, "fc1")
    g.add_block("adaptive_avgpool2d", {}, "gap")
    g.add_block("flatten", {}, "f2")
    g.add_block("linear", {"out_features": 5}, "fc2")
    g.add_block("add", {}, "sum")
    g.add_block("output", {}, "out")
    _chain(g, ("inp", "c1"), ("c1", "f1"), ("f1", "relu"), ("relu", "fc1"), ("c1", "gap"), ("gap", "f2"),
           ("f2", "fc2"), ("fc1", "sum"), ("fc2", "sum"), ("sum", "out"))
    assert "relu" in inplace_plan(lower(g))
    assert_same_network(g, tmp_path)


@pytest.mark.parametrize("before", ["tanh", "sigmoid", "relu"])
def test_relu_after_an_op_that_saves_its_output_trains(before, tmp_path):
    """tanh -> relu (in place) could not train: tanh's backward needs its output."""
    g = Graph("saved_output")
    g.add_block("input", {"channels": 3, "height": 6, "width": 6}, "inp")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 3, "padding": 1}, "c1")
    g.add_block(before, {}, "act")
    g.add_block("relu", {"inplace": True}, "relu")
    g.add_block("flatten", {}, "flat")
    g.add_block("linear", {"out_features": 3}, "fc")
    g.add_block("output", {}, "out")
    _chain(g, ("inp", "c1"), ("c1", "act"), ("act", "relu"), ("relu", "flat"), ("flat", "fc"), ("fc", "out"))
    assert "relu" in inplace_plan(lower(g))
    assert_same_network(g, tmp_path)


def test_in_place_still_happens_where_it_is_safe():
    """conv -> BN -> ReLU, each read once: torchvision's pattern keeps its in-place ReLU (the memory saving)."""
    g = Graph("safe")
    g.add_block("input", {"channels": 3, "height": 6, "width": 6}, "inp")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 3, "padding": 1}, "c1")
    g.add_block("batchnorm2d", {}, "bn")
    g.add_block("relu", {"inplace": True}, "r1")
    g.add_block("relu", {"inplace": True}, "r2")  # after an in-place ReLU: ReLU's backward keeps its output
    g.add_block("flatten", {}, "flat")
    g.add_block("linear", {"out_features": 3}, "fc")
    g.add_block("output", {}, "out")
    _chain(g, ("inp", "c1"), ("c1", "bn"), ("bn", "r1"), ("r1", "r2"), ("r2", "flat"), ("flat", "fc"), ("fc", "out"))
    plan = inplace_plan(lower(g))
    assert "r1" not in plan and "r2" in plan
    assert compile_graph(g).r1.inplace is True
    assert_same_network(g)


# ---------------------------------------------------------------------------------------- random graphs

SHAPE_KEEPING = {
    "conv1": ("conv2d", {"out_channels": 4, "kernel": 1}),
    "conv3": ("conv2d", {"out_channels": 4, "kernel": 3, "padding": 1}),
    "relu": ("relu", {"inplace": True}),
    "relu6": ("relu6", {"inplace": True}),
    "tanh": ("tanh", {}),
    "sigmoid": ("sigmoid", {}),
    "dropout": ("dropout", {"p": 0.5}),
    "bn": ("batchnorm2d", {}),
    "pool": ("maxpool2d", {"kernel": 3, "stride": 1, "padding": 1}),
    "add": ("add", {}),
    "concat": ("concat", {}),
}


@st.composite
def aliasing_graphs(draw):
    """Random DAGs of shape-keeping blocks where tensors are read by several branches, views (Dropout,
    Flatten) and in-place ReLUs meet, and an auxiliary head sometimes reads a middle tensor."""
    g = Graph("aliasing")
    g.add_block("input", {"channels": 4, "height": 5, "width": 5}, "inp")
    live = ["inp"]
    for i in range(draw(st.integers(2, 12))):
        kind, params = SHAPE_KEEPING[draw(st.sampled_from(sorted(SHAPE_KEEPING)))]
        bid = f"b{i}"
        g.add_block(kind, params, bid)
        for _ in range(draw(st.integers(2, 3)) if kind in ("add", "concat") else 1):
            g.connect(draw(st.sampled_from(live)), bid)
        if analyze(g).blocks[bid].errors:
            g.remove_block(bid)
            continue
        live.append(bid)
    heads = [live[-1]] + ([draw(st.sampled_from(live[1:]))] if len(live) > 2 and draw(st.booleans()) else [])
    for j, src in enumerate(heads):
        g.add_block("flatten", {}, f"flat{j}")
        if draw(st.booleans()):
            g.add_block("relu", {"inplace": True}, f"hrelu{j}")  # in place after a view
            _chain(g, (src, f"flat{j}"), (f"flat{j}", f"hrelu{j}"))
            last = f"hrelu{j}"
        else:
            g.connect(src, f"flat{j}")
            last = f"flat{j}"
        g.add_block("linear", {"out_features": 3}, f"fc{j}")
        g.add_block("output", {} if j == 0 else {"role": "aux", "loss_weight": 0.3}, f"out{j}")
        _chain(g, (last, f"fc{j}"), (f"fc{j}", f"out{j}"))
    return g


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(aliasing_graphs())
def test_random_graphs_in_place_equals_out_of_place(g):
    assert analyze(g).ok
    assert_same_network(g)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(aliasing_graphs())
def test_random_graphs_exported_in_place_equals_out_of_place(tmp_path, g):
    assert_same_network(g, tmp_path)
