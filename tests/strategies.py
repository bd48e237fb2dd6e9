"""Hypothesis strategies: random valid graphs built edit by edit (invalid edits are dropped)."""
from hypothesis import strategies as st

from builder.core.analysis import analyze
from builder.core.graph import Graph

KINDS = {
    "conv2d": lambda d: {"out_channels": d(st.integers(1, 8)), "kernel": d(st.sampled_from([1, 3, [1, 3], [3, 1], 5])),
                         "stride": d(st.sampled_from([1, 2])), "padding": d(st.sampled_from([0, 1, [0, 1]])),
                         "bias": d(st.booleans())},
    "basic_conv": lambda d: {"out_channels": d(st.integers(1, 8)), "kernel": d(st.sampled_from([1, 3])),
                             "padding": d(st.sampled_from([0, 1])), "batch_norm": d(st.booleans())},
    "maxpool2d": lambda d: {"kernel": d(st.sampled_from([2, 3])), "stride": d(st.sampled_from([1, 2])),
                            "padding": d(st.sampled_from([0, 1])), "ceil_mode": d(st.booleans())},
    "avgpool2d": lambda d: {"kernel": d(st.sampled_from([2, 3])), "stride": d(st.sampled_from([1, 2])),
                            "ceil_mode": d(st.booleans())},
    "relu": lambda d: {},
    "tanh": lambda d: {},
    "batchnorm2d": lambda d: {},
    "concat": lambda d: {},
    "add": lambda d: {},
    "inception_v1": lambda d: {k: d(st.integers(1, 6)) for k in ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5",
                                                                  "pool_proj")},
    "resnet_basic": lambda d: {"planes": d(st.integers(1, 8)), "stride": d(st.sampled_from([1, 2]))},
}


@st.composite
def graphs(draw, max_blocks=10):
    g = Graph("random")
    g.add_block("input", {"channels": draw(st.integers(1, 4)), "height": draw(st.integers(6, 20)),
                          "width": draw(st.integers(6, 20))}, "inp")
    live = ["inp"]
    for i in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(sorted(KINDS)))
        params = KINDS[kind](draw)
        bid = f"b{i}"
        g.add_block(kind, params, bid)
        n_in = draw(st.integers(2, 3)) if kind in ("concat", "add") else 1
        for _ in range(n_in):
            g.connect(draw(st.sampled_from(live)), bid)
        a = analyze(g)
        if a.blocks[bid].errors:
            g.remove_block(bid)
            continue
        live.append(bid)
    tail = g.add_block("flatten", {}, "flat")
    g.connect(live[-1], tail)
    g.add_block("linear", {"out_features": draw(st.integers(1, 5))}, "fc")
    g.connect(tail, "fc")
    g.add_block("output", {}, "out")
    g.connect("fc", "out")
    return g
