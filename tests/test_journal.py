"""Recorded edits undo and redo exactly, including compound ones (expand, collapse, rename)."""
from hypothesis import given, settings, strategies as st

import templates
from builder.core import edits


def replay_undo(g, steps):
    for _, undo in reversed(steps):
        undo()


def replay_redo(g, steps):
    for do, _ in steps:
        do()


def test_compound_edits_round_trip():
    g = templates.build("googlenet")
    start = g.signature()
    steps = g.record(lambda gr: (edits.expand(gr, "inception3a"), gr.set_params("inception3a.branch1", {"out_channels": 5}),
                                 gr.move("conv1", (1, 2)), gr.rename("conv2", "conv2_renamed"),
                                 gr.remove_block("aux1")))
    after = g.signature()
    assert after != start
    replay_undo(g, steps)
    assert g.signature() == start
    replay_redo(g, steps)
    assert g.signature() == after
    replay_undo(g, steps)
    assert g.signature() == start


def test_failed_edit_leaves_the_graph_as_it_was():
    g = templates.build("lenet5")
    start = g.signature()
    import pytest
    from builder.core.errors import GraphEditError

    def bad(gr):
        gr.remove_block("c3")
        gr.add_block("relu", {}, "c1")  # duplicate id: raises
    with pytest.raises(GraphEditError):
        g.record(bad)
    assert g.signature() == start


OPS = st.lists(st.tuples(st.sampled_from(["add", "remove", "connect", "disconnect", "params", "move", "label"]),
                         st.integers(0, 10_000)), min_size=1, max_size=25)


@settings(max_examples=80, deadline=None)
@given(OPS)
def test_random_edit_sequences_undo_to_the_start(ops):
    g = templates.build("lenet5")
    start = g.signature()
    history = []
    for op, n in ops:
        ids = g.ids()

        def edit(gr, op=op, n=n, ids=ids):
            if op == "add":
                gr.add_block(["relu", "conv2d", "concat", "maxpool2d"][n % 4], {}, None)
            elif op == "remove" and ids:
                gr.remove_block(ids[n % len(ids)])
            elif op == "connect" and len(ids) > 1:
                a, b = ids[n % len(ids)], ids[(n // 7) % len(ids)]
                if gr.free_port(b) and a != b:
                    try:
                        gr.connect(a, b)
                    except Exception:
                        pass
            elif op == "disconnect" and gr.edges():
                gr.disconnect(*gr.edges()[n % len(gr.edges())])
            elif op == "params":
                convs = [b.id for b in gr.blocks() if b.type == "conv2d"]
                if convs:
                    gr.set_params(convs[n % len(convs)], {"out_channels": 1 + n % 50})
            elif op == "move" and ids:
                gr.move(ids[n % len(ids)], (n, -n))
            elif op == "label" and ids:
                gr.set_label(ids[n % len(ids)], f"name {n}")
        history.append((g.signature(), g.record(edit)))
    end = g.signature()
    for sig, steps in reversed(history):
        replay_undo(g, steps)
        assert g.signature() == sig
    assert g.signature() == start
    for _, steps in history:
        replay_redo(g, steps)
    assert g.signature() == end
