"""Every block an edit adds lands in free space next to where it was asked for (palette Enter, drop, paste,
duplicate, advisor refactors, expand, collapse), within the same undo step."""
import random

import pytest

import templates
from builder.insight import advisor
from builder.core.graph import Graph
from builder.core.layout import BLOCK_H, BLOCK_W, GAP, overlaps, place_new

pytestmark = pytest.mark.timeout(240)


def _overlapping(graph, ids=None):
    """Pairs of blocks that overlap, among those touching ``ids`` (all when None)."""
    blocks = list(graph.blocks())
    pairs = []
    for i, a in enumerate(blocks):
        for b in blocks[i + 1:]:
            if (ids is None or a.id in ids or b.id in ids) and overlaps(a.pos, b.pos):
                pairs.append((a.id, b.id, a.pos, b.pos))
    return pairs


def test_place_new_moves_a_paste_as_one_piece_and_spreads_blocks_put_on_one_spot():
    g = Graph("t")
    a = g.add_block("conv2d", None, "a", pos=(0.0, 0.0))
    b = g.add_block("relu", None, "b", pos=(0.0, 120.0))
    pasted = [g.add_block("relu", None, "p1", pos=(10.0, 10.0)), g.add_block("relu", None, "p2", pos=(10.0, 130.0))]
    place_new(g, pasted)
    assert not _overlapping(g)
    (x1, y1), (x2, y2) = g.block("p1").pos, g.block("p2").pos
    assert (x2 - x1, y2 - y1) == (0.0, 120.0)  # the paste kept its shape
    assert g.block(a).pos == (0.0, 0.0) and g.block(b).pos == (0.0, 120.0)  # older blocks never move
    stacked = [g.add_block("relu", None, f"s{i}", pos=(500.0, 0.0)) for i in range(5)]
    place_new(g, stacked)
    assert not _overlapping(g)
    assert g.block("s0").pos == (500.0, 0.0)  # the first stays where it was put, the others next to it
    assert all(abs(g.block(s).pos[0] - 500) <= 2 * (BLOCK_W + GAP) and abs(g.block(s).pos[1]) <= 3 * (BLOCK_H + GAP)
               for s in stacked)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_add_paste_refactor_expand_sequences_never_overlap(make_window, seed):
    rng = random.Random(seed)
    w = make_window()
    w.load_graph(templates.build(rng.choice(["googlenet", "inception_v3", "lenet5"])))
    g = w.doc.graph
    assert not _overlapping(g)
    kinds = ["conv2d", "relu", "maxpool2d", "batchnorm2d", "inception_v1", "concat", "dropout"]
    done = set()
    for step in range(30):
        before = set(g.ids())
        op = rng.choice(["enter", "enter", "drop", "paste", "duplicate", "refactor", "expand", "collapse", "undo"])
        ids = [i for i in g.ids()]
        if op in ("enter", "duplicate", "paste", "expand"):
            w.select_block(rng.choice(ids))
        if op == "enter":
            w.add_block(rng.choice(kinds))
        elif op == "drop":  # a drop right on top of a block
            target = g.block(rng.choice(ids)).pos
            from PySide6.QtCore import QPointF
            w.add_block(rng.choice(kinds), QPointF(target[0] + 5, target[1] + 5))
        elif op == "paste":
            w.copy()
            w.paste()
        elif op == "duplicate":
            w.duplicate()
        elif op == "refactor":
            w.doc.refresh()
            refs = advisor.refactors(advisor.check(g, w.doc.analysis))
            if refs:
                ref = rng.choice(refs)
                w.doc.push(ref.title, lambda gg, ref=ref: advisor.apply(gg, ref))
        elif op == "expand":
            w.expand_selected()
        elif op == "collapse":
            grouped = [b.id for b in g.blocks() if b.group]
            if grouped:
                w.select_block(rng.choice(grouped))
                w.collapse_selected()
        elif op == "undo":
            w.doc.undo_stack.undo()
        new = set(g.ids()) - before
        done.add(op) if new else None
        assert not _overlapping(g, new), (step, op, _overlapping(g, new)[:3])
    assert {"enter", "paste"} & done


@pytest.mark.parametrize("template", ["googlenet", "inception_v3", "resnet50"])
def test_expand_then_collapse_puts_every_block_back_where_it_was(template):
    """Issue 22: collapse put the composite at its inside's top-left block and so moved it sideways; expand makes
    room below (its neighbours keep their places relative to each other) and collapse is its inverse."""
    from builder.core import edits
    g = templates.build(template)
    before = {b.id: tuple(b.pos) for b in g.blocks()}
    composites = [b.id for b in g.blocks() if b.spec is not None and b.spec.is_composite][:4]
    assert composites
    for bid in composites:
        inside = edits.expand(g, bid)  # (in the window, place_new then keeps it off a head beside the column)
        rest = {b.id: tuple(b.pos) for b in g.blocks() if b.id not in inside}
        below = [k for k in rest if before[k][1] > before[bid][1] + 1]  # moved down together, by one amount
        assert len({round(rest[k][1] - before[k][1], 1) for k in below}) <= 1
        assert all(rest[k] == before[k] for k in rest if k not in below)
        assert edits.collapse(g, bid) == bid
        assert {b.id: tuple(b.pos) for b in g.blocks()} == before, bid
