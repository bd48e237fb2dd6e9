"""The analysis after an edit reuses the reports the edit cannot change (issue 22: an edit of a 10,000-block network
re-analyses in milliseconds): after every random edit (parameters, including ones that break a block, blocks
added, removed and wired, wires cut, output roles, undo) the kept Analyzer's result equals a fresh analysis of
the same graph, block by block, issue by issue and in total, and names exactly the blocks whose reports are new."""
import random

import pytest

import templates
from builder.core.analysis import Analyzer, analyze
from builder.core.errors import GraphEditError

WIDTHS = (8, 16, 24, 32, 64)


def _same(kept, fresh):
    assert list(kept.blocks) == list(fresh.blocks)  # the run order
    for bid, rep in fresh.blocks.items():
        got = kept.blocks[bid]
        assert got.to_dict() == rep.to_dict(), bid
        assert (got.in_shapes, got.training, got.inference) == (rep.in_shapes, rep.training, rep.inference), bid
    assert [i.to_dict() for i in kept.issues] == [i.to_dict() for i in fresh.issues]
    assert kept.training.to_dict() == fresh.training.to_dict()
    assert kept.inference.to_dict() == fresh.inference.to_dict()
    assert kept.outputs == fresh.outputs


def _edit(g, r, n):
    """One random edit of ``g``; its description."""
    ids = g.ids()
    pick = r.random()
    convs = [b.id for b in g.blocks() if b.type == "conv2d"]
    if pick < 0.45 and convs:
        bid = r.choice(convs)
        if r.random() < 0.8:
            g.set_params(bid, {"out_channels": r.choice(WIDTHS)})
        else:
            g.set_params(bid, {"kernel": r.choice((1, 3, 5, 400))})  # 400: larger than any input (an error)
        return f"params of {bid}"
    if pick < 0.6:
        src = r.choice([b for b in ids if g.block(b).type != "output"])
        new = g.add_block(r.choice(("relu", "batchnorm2d", "conv2d")), {}, f"added{n}")
        g.connect(src, new)
        return f"added {new} after {src}"
    if pick < 0.72:
        victims = [b for b in ids if g.block(b).type not in ("input", "output")]
        bid = r.choice(victims)
        g.remove_block(bid)
        return f"removed {bid}"
    if pick < 0.82:
        u, v, port = r.choice(g.edges())
        g.disconnect(u, v, port)
        return f"cut {u} -> {v}"
    if pick < 0.86:  # a wire into a block that takes any number (a concat): shapes may or may not fit
        cats = [b.id for b in g.blocks() if b.spec is not None and b.spec.variadic]
        if cats:
            dst = r.choice(cats)
            src = r.choice([b for b in ids if g.block(b).type != "output" and b != dst])
            g.connect(src, dst)
            return f"wired {src} into {dst}"
    if pick < 0.88:
        bid = r.choice(ids)
        g.rename(bid, f"renamed{n}")
        return f"renamed {bid}"
    if pick < 0.92:
        outs = [b.id for b in g.blocks() if b.type == "output"]
        bid = r.choice(outs)
        role = "aux" if g.block(bid).params.get("role") == "main" else "main"
        g.set_params(bid, {"role": role})
        return f"{bid} made {role}"
    g.set_label(r.choice(ids), f"label {n}")  # changes nothing the analysis says
    return "relabelled"


@pytest.mark.parametrize("template, seed", [("googlenet", 0), ("resnet18", 1), ("lenet5", 2), ("vgg11", 3)])
def test_the_kept_analysis_equals_a_fresh_one_after_every_edit(template, seed):
    g = templates.build(template)
    kept = Analyzer(g)
    before = kept.run()
    assert before.changed is None  # the first run: every report is new
    r = random.Random(seed)
    shown = before
    for n in range(60):
        undo = []
        g.journal = undo
        try:
            what = _edit(g, r, n)
        except GraphEditError:
            continue
        finally:
            g.journal = None
        if r.random() < 0.2:  # undo it (in reverse, as the undo stack does)
            for _, back in reversed(undo):
                back()
            what += ", undone"
        a = kept.run()
        fresh = analyze(g)
        _same(a, fresh)
        changed = a.changed_since(shown.serial)
        assert changed is not None, what
        differs = {b for b, rep in a.blocks.items()
                   if b not in shown.blocks or shown.blocks[b].to_dict() != rep.to_dict()
                   or shown.blocks[b].in_shapes != rep.in_shapes}
        assert differs <= changed, (what, differs - changed)  # every block that differs is named
        assert all(a.blocks[b] is not shown.blocks.get(b) for b in changed if b in a.blocks), what
        assert all(a.blocks[b] is shown.blocks[b] for b in a.blocks if b not in changed), what  # the rest kept
        shown = a
    assert a is not before and a.base != before.serial
    assert a.changed_since(before.serial) is None  # an analysis older than the last shown: show everything


def test_a_parameter_edit_evaluates_only_what_it_reaches(monkeypatch):
    from builder.core import analysis as analysis_module
    g = templates.build("resnet18")
    kept = Analyzer(g)
    kept.run()
    seen = []
    real = analysis_module.evaluate
    monkeypatch.setattr(analysis_module, "evaluate", lambda t, p, s, k=None: seen.append(t) or real(t, p, s, k))
    fc = next(b.id for b in g.blocks() if b.type == "linear")
    g.set_params(fc, {"out_features": 100})
    a = kept.run()
    assert seen == ["linear", "output"]  # the fc and what its new shape reaches; none of the 60 blocks before it
    assert a.changed == {fc, "output"} and a.blocks["output"].in_shapes == [(100,)]
    seen.clear()
    g.set_params(fc, {"out_features": 100})  # the same value again: evaluated (a new key), nothing downstream
    assert kept.run().changed == {fc} and seen == ["linear"]
