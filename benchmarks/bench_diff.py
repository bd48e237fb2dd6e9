"""Comparing two networks of about 400 blocks each, from nothing cached, against analysing the two in the same run.

The pair: Inception-v3 laid out layer by layer (every composite expanded, every conv-BN-ReLU three blocks) with
Inception-v3's own head blocks added to reach 400 blocks, and a copy of it edited as a user would: five widths
changed, two blocks inserted in a chain, one block removed, four renamed, everything moved.
Target: the diff <= 1 s (the issue's bound), and within a small multiple of the two analyses it needs anyway.
Also at scale: two chains of 1,000 and 10,000 blocks (one width changed, one block inserted), to show the growth.
Run: .venv/bin/python -m benchmarks diff
"""
from __future__ import annotations

import time

from builder.core import analysis as an
from builder.core import ir as ir_module
from builder.insight import diff

from .bench_analysis import _stack, expanded_inception_v3
from .common import median_time, report


def _pair():
    a = expanded_inception_v3()
    prev = "fc"
    tail = [c for c, _ in a.consumers(prev)]
    for c in tail:
        a.disconnect(prev, c, a.inputs(c)[0][0])
    for i in range(400 - len(a)):  # a classifier tail of linear + ReLU pairs (keeps 1000 features)
        kind = "relu" if i % 2 else "linear"
        bid = a.add_block(kind, {"out_features": 1000} if kind == "linear" else {}, f"head{i}")
        a.connect(prev, bid)
        prev = bid
    for c in tail:
        a.connect(prev, c)
    b = a.copy()
    convs = [x.id for x in b.blocks() if x.type == "conv2d"]
    for bid in convs[5:30:5]:
        b.set_params(bid, {"out_channels": b.block(bid).params["out_channels"] + 16})
    for bid in ("head3", "head11"):
        (port, src), = b.inputs(bid)
        b.disconnect(src, bid, port)
        new = b.add_block("relu", {}, f"{bid}_extra")
        b.connect(src, new)
        b.connect(new, bid, port)
    (port, src), = b.inputs("head20")
    nxt = [(c, p) for c, p in b.consumers("head20")]
    b.remove_block("head20")
    for c, p in nxt:
        b.connect(src, c, p)
    for old in convs[40:44]:
        b.rename(old, old + "_renamed")
    for x in b.blocks():
        b.move(x.id, (x.pos[0] + 50.0, x.pos[1] + 10.0))
    return a, b


def _cold(fn):
    def run():
        an.clear_caches()
        ir_module._MEMO.clear()
        return fn()
    return run


def run():
    a, b = _pair()
    d = diff.compare(a, b)
    t_diff = median_time(_cold(lambda: diff.compare(a, b)), repeat=10, warmup=1)
    t_layers = median_time(_cold(lambda: diff.compare(a, b, "layers")), repeat=10, warmup=1)
    t_analyses = median_time(_cold(lambda: (an.Analyzer(a).run(), an.Analyzer(b).run())), repeat=10, warmup=1)
    scale = {}
    for n in (1_000, 10_000):
        x = _stack(n)
        y = x.copy()
        y.set_params("b0", {"out_channels": 16})
        (port, src), = y.inputs("b5")
        y.disconnect(src, "b5", port)
        y.add_block("relu", {}, "inserted")
        y.connect(src, "inserted")
        y.connect("inserted", "b5", port)
        t = time.perf_counter()
        _cold(lambda: diff.compare(x, y))()
        scale[f"diff_{n}_blocks_ms"] = (time.perf_counter() - t) * 1e3
    return report("diff", {
        "blocks_a": len(a), "blocks_b": len(b),
        "found": d.summary(),
        "diff_ms": t_diff * 1e3,
        "diff_layers_ms": t_layers * 1e3,
        "two_analyses_ms": t_analyses * 1e3,
        "diff_over_two_analyses": t_diff / t_analyses,
        **scale,
        "growth_1k_to_10k": scale["diff_10000_blocks_ms"] / scale["diff_1000_blocks_ms"],
        "target_diff_ms": 1000.0,
    })
