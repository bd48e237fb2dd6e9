"""The design advisor: the Inception-v3 paper's design principles as live checks and one-click refactors.

Checks read the analysis (no torch). A refactor is a function that edits the graph; ``preview`` applies it to a
copy and reports the change in parameters and MACs before anything happens to the real graph. Edits go through
the graph's journal, so the app undoes a refactor in one step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from blocks import REGISTRY, fmt_shape

from ..core import edits
from ..core.analysis import Analysis, Analyzer
from ..core.ir import lower
from ..core.errors import GraphEditError
from ..core.graph import Graph, make_id
from .report import human

PRINCIPLES = {
    1: "Avoid representational bottlenecks, especially early: the representation should shrink gently.",
    2: "Higher-dimensional representations are easier to process locally.",
    3: "Spatial aggregation can be done over lower-dimensional embeddings: reduce channels with 1x1 first.",
    4: "Balance the width and the depth of the network.",
}


def _role(type_id) -> str:
    """The kind's part in the design principles (``BlockSpec.advisor_role``): "convolution" (factorisable,
    a 1x1 reduction), "pool" (a grid reduction when strided), or ""."""
    spec = REGISTRY.get(type_id)
    return spec.advisor_role if spec is not None else ""


@dataclass
class Refactor:
    code: str            # factorize_5x5, factorize_nxn, factorize_3x3, insert_reduction, efficient_reduction, upgrade
    block: str           # the block it rewrites (a top-level id)
    inner: str | None = None  # for a conv inside a composite: its local id (the composite is expanded first)
    title: str = ""
    options: dict = field(default_factory=dict)

    def key(self) -> tuple:
        return (self.code, self.block, self.inner)


@dataclass
class Finding:
    block: str | None
    code: str
    principle: int
    title: str
    message: str
    refactors: list = field(default_factory=list)
    saving: int = 0      # the MACs its best refactor saves (what findings are ranked by)

    @property
    def statement(self) -> str:
        """The one-line statement of the principle it applies."""
        return PRINCIPLES[self.principle]

    def to_dict(self) -> dict:
        return {"block": self.block, "code": self.code, "principle": self.principle,
                "principle_statement": self.statement, "title": self.title, "message": self.message,
                "refactors": [r.title for r in self.refactors], "macs_saving": self.saving}


@dataclass
class Preview:
    """A refactor's effect before it is applied. ``*_params``/``*_macs`` are the inference totals (the
    network as deployed, as the status bar's "Inference"); ``*_training_params``/``*_training_macs`` count the
    auxiliary heads too (the status bar's "Training")."""
    refactor: Refactor
    before_params: int
    after_params: int
    before_macs: int
    after_macs: int
    ok: bool
    message: str = ""
    before_training_params: int = 0
    after_training_params: int = 0
    before_training_macs: int = 0
    after_training_macs: int = 0
    after: object = field(default=None, repr=False, compare=False)  # the refactored copy (a Graph), when it applies

    def changes(self, graph: Graph):
        """What the refactor does to ``graph``, block by block (:func:`builder.insight.diff.compare`), or None."""
        if self.after is None:
            return None
        from .diff import compare
        return compare(graph, self.after)

    @property
    def macs_saving(self) -> float:
        return 1 - self.after_macs / self.before_macs if self.before_macs else 0.0

    def describe(self) -> str:
        if not self.ok:
            return f"{self.refactor.title}: cannot apply ({self.message})"
        return (f"{self.refactor.title}: inference MACs {human(self.before_macs)} -> {human(self.after_macs)} "
                f"({self.after_macs - self.before_macs:+,}, {-self.macs_saving * 100:+.1f}%), inference params "
                f"{human(self.before_params)} -> {human(self.after_params)} "
                f"({self.after_params - self.before_params:+,}); training params "
                f"{human(self.before_training_params)} -> {human(self.after_training_params)}")


# ------------------------------------------------------------------------------------------------ checks

MIN_SAVING = 0.10  # a refactor is proposed only where it saves this share of the MACs of what it rewrites


def check(graph: Graph, analysis: Analysis | None = None) -> list[Finding]:
    """The findings, ranked: those with refactors first, by the MACs their best refactor saves; every refactor
    proposed has been tried on a copy and keeps the outputs, raises neither parameters nor MACs and saves at least
    10% of the MACs of the blocks it rewrites (a finding whose refactors all fail that is not shown)."""
    a = analysis if analysis is not None and analysis.describes(graph) else Analyzer(graph).run()
    return _vetted(graph, a, _findings(graph, a))


def _findings(graph: Graph, a: Analysis) -> list[Finding]:
    out: list[Finding] = []
    order = [bid for bid, r in a.blocks.items() if r.out_shape]
    depth_of = {bid: i / max(len(order) - 1, 1) for i, bid in enumerate(order)}
    inside: dict = {}
    for n in lower(graph, a, partial=True).nodes:
        if n.scope:
            inside.setdefault(n.block, []).append(n)
    for bid, rep in a.blocks.items():
        b = graph.block(bid)
        if not rep.out_shape or not rep.in_shapes or rep.in_shapes[0] is None or b.spec is None:
            continue
        ins, outs = rep.in_shapes[0], rep.out_shape
        _bottleneck(out, graph, a, bid, b, ins, outs, depth_of.get(bid, 0))
        if _role(b.type) == "convolution":
            src = graph.inputs(bid)
            prev = graph.block(src[0][1]) if src else None
            prev_1x1 = prev is not None and _role(prev.type) == "convolution" and prev.params["kernel"] == [1, 1]
            _conv_checks(out, bid, None, b.type, b.params, ins, outs, a, prev_1x1)
        elif b.spec.is_composite and len(ins) == 3:
            for n in inside.get(bid, ()):  # its own layers, from the lowered network
                if len(n.scope) == 1 and _role(n.kind) == "convolution" and n.shape:
                    _conv_checks(out, bid, n.local, n.kind, n.params, n.in_shapes[0], n.shape, a)
            up = b.spec.upgrade
            if up is not None:
                new = REGISTRY[up.kind]
                out.append(Finding(bid, f"upgrade_{b.type}", up.principle, f"{b.spec.title} {up.title}", up.why,
                                   [Refactor("upgrade", bid, title=f"Turn {bid} into {new.title}")]))
    _grid_plan(out, graph, a)
    _balance(out, graph, a)
    return out


def _bottleneck(out, graph, a, bid, b, ins, outs, depth):
    if len(ins) != 3 or len(outs) != 3:
        return
    before, after = ins[0] * ins[1] * ins[2], outs[0] * outs[1] * outs[2]
    spatial = outs[1] < ins[1] or outs[2] < ins[2]
    global_pool = outs[1] == outs[2] == 1 and outs[0] >= ins[0]  # a classifier's global pool keeps every channel
    if spatial and after * 4 < before and not global_pool:
        early = " early in the network, where it hurts most" if depth < 0.35 else ""
        out.append(Finding(bid, "bottleneck", 1, "Representational bottleneck",
                           f"{bid} shrinks the representation {before / after:.1f}x in one step "
                           f"({fmt_shape(ins)} = {before:,} values -> {fmt_shape(outs)} = {after:,}){early}. "
                           "Shrink it gently: fewer channels lost per step, or more filters at the lower "
                           "resolution."))
    # pool-then-conv and conv-then-pool grid reductions
    if _role(b.type) == "pool" and b.params["stride"][0] >= 2:
        for dst, _ in graph.consumers(bid):
            d = graph.block(dst)
            rep = a.blocks.get(dst)
            if _role(d.type) == "convolution" and rep and rep.out_shape and rep.out_shape[0] > outs[0] \
                    and len(graph.consumers(bid)) == 1:
                out.append(Finding(bid, "pool_then_conv", 1, "Pool-then-conv grid reduction",
                                   f"{bid} halves the grid of {ins[0]} channels before {dst} widens it to "
                                   f"{rep.out_shape[0]}: the pooled {fmt_shape(outs)} is a bottleneck. The "
                                   "efficient reduction runs a stride-2 conv and a stride-2 pool side by side.",
                                   [Refactor("efficient_reduction", bid, options={"pair": (bid, dst)},
                                             title=f"Replace {bid} + {dst} by the efficient parallel "
                                                   "reduction")]))
    if _role(b.type) == "convolution" and b.params["stride"] == [1, 1] and outs[0] > ins[0]:
        cons = graph.consumers(bid)
        if len(cons) == 1:
            dst = cons[0][0]
            d = graph.block(dst)
            rep = a.blocks.get(dst)
            if _role(d.type) == "pool" and d.params["stride"][0] >= 2 and rep and rep.out_shape:
                out.append(Finding(bid, "conv_then_pool", 1, "Conv-then-pool grid reduction",
                                   f"{bid} widens {fmt_shape(ins)} to {outs[0]} channels at full resolution, "
                                   f"then {dst} pools: {human(a.blocks[bid].macs)} MACs spent before the grid "
                                   "shrinks. A stride-2 conv beside a stride-2 pool gives the same output for "
                                   "about a quarter of the cost.",
                                   [Refactor("efficient_reduction", bid, options={"pair": (bid, dst)},
                                             title=f"Replace {bid} + {dst} by the efficient parallel "
                                                   "reduction")]))


def _conv_checks(out, bid, inner, type_id, p, ins, outs, a, prev_is_1x1=False):
    k = p["kernel"]
    where = f"{bid}.{inner}" if inner else bid
    plain = p["stride"] == [1, 1] and p.get("groups", 1) == 1 and p.get("dilation", [1, 1]) == [1, 1] \
        and not isinstance(p["padding"], str)
    medium = 12 <= ins[1] <= 20  # where the paper found asymmetric (1xn / nx1) factorization to work
    if k[0] == k[1] and k[0] >= 5 and plain and (k[0] == 5 or medium):
        n = k[0]
        refs = [Refactor("factorize_nxn", bid, inner, f"Factorize {where}: {n}x{n} -> 1x{n} then {n}x1")] \
            if medium else []
        if n == 5:
            refs.insert(0, Refactor("factorize_5x5", bid, inner, f"Factorize {where}: 5x5 -> two 3x3"))
        out.append(Finding(bid, "factorize", 3, f"{n}x{n} convolution can be factorized",
                           f"{where} is a {n}x{n} convolution ({fmt_shape(ins)} -> {fmt_shape(outs)}). "
                           + ("Two 3x3 convolutions cover the same field for 18/25 of the cost (28% less); "
                              if n == 5 else "")
                           + (f"1x{n} then {n}x1 costs 2/{n} of it ({(1 - 2 / n) * 100:.0f}% less)." if medium
                              else "On this grid the paper keeps convolutions symmetric."), refs))
    elif k == [3, 3] and plain and medium:
        out.append(Finding(bid, "factorize_3x3", 3, "3x3 convolution can be made asymmetric",
                           f"{where}: 3x1 then 1x3 costs 6/9 of a 3x3 (33% less); 2x2 + 2x2 would only save 11%. "
                           "The paper finds this works best on medium grids (12 to 20).",
                           [Refactor("factorize_3x3", bid, inner, f"Factorize {where}: 3x3 -> 3x1 then 1x3")]))
    if (k[0] == 1) != (k[1] == 1) and max(k) > 1 and not 12 <= ins[1] <= 20:
        out.append(Finding(bid, "asymmetric_grid", 3, "Asymmetric convolution off the 12-20 grid",
                           f"{where} is {k[0]}x{k[1]} on a {ins[1]}x{ins[2]} grid; the paper found 1xn / nx1 "
                           "factorization works well on grids of 12 to 20, not on early, large grids.", []))
    if k[0] * k[1] >= 9 and ins[0] >= 128 and inner is None and not prev_is_1x1:
        cost = a.blocks[bid].macs
        red = max(ins[0] // 4, 16)
        out.append(Finding(bid, "no_reduction", 3, "Expensive convolution without a 1x1 reduction",
                           f"{where} applies {k[0]}x{k[1]} filters to all {ins[0]} input channels "
                           f"({human(cost)} MACs). A 1x1 convolution down to fewer channels first (e.g. {red}) "
                           "makes it far cheaper.",
                           [Refactor("insert_reduction", bid, None, f"Insert a 1x1 reduction before {where}",
                                     {"channels": red})]))


def _grid_plan(out, graph, a):
    """Strides that drop rows and columns (e.g. (H - k) not divisible by the stride) make the plan uneven."""
    seq = []
    for bid, rep in a.blocks.items():
        b = graph.block(bid)
        if b.type == "input" and rep.out_shape:
            seq.append(str(rep.out_shape[1]))
        if not rep.out_shape or not rep.in_shapes or not rep.in_shapes[0] or len(rep.in_shapes[0]) != 3:
            continue
        if len(rep.out_shape) == 3 and rep.out_shape[1] < rep.in_shapes[0][1] and rep.inference:
            seq.append(str(rep.out_shape[1]))
        p = b.params
        if "stride" in p and isinstance(p["stride"], list) and p["stride"][0] > 1 and not isinstance(
                p.get("padding"), str) and isinstance(p.get("kernel"), list):
            h = rep.in_shapes[0][1]
            rem = (h + 2 * p["padding"][0] - p["kernel"][0]) % p["stride"][0]
            if rem and not p.get("ceil_mode"):
                out.append(Finding(bid, "grid_uneven", 1, "Grid size does not divide through the stride",
                                   f"{bid}: ({h} + 2x{p['padding'][0]} - {p['kernel'][0]}) is not a multiple of "
                                   f"stride {p['stride'][0]}, so the last {rem} row(s) and column(s) are never "
                                   f"seen. Adjust the input size or the padding (the Inception-v3 plan is "
                                   "299 -> 149 -> 147 -> 73 -> 71 -> 35 -> 17 -> 8).", []))
    if seq:
        dedup = [s for i, s in enumerate(seq) if i == 0 or s != seq[i - 1]]
        out.append(Finding(None, "grid_plan", 1, "Grid sizes", " -> ".join(dedup), []))


def _balance(out, graph, a):
    """Depth (convolutions) and width (channels) per grid size: flag a stage that grows one without the other."""
    stages: dict = {}
    for bid, rep in a.blocks.items():
        if not rep.inference or not rep.out_shape or len(rep.out_shape) != 3:
            continue
        b = graph.block(bid)
        convs = 0
        if _role(b.type) == "convolution":
            convs = 1
        elif b.spec is not None and b.spec.is_composite:
            convs = 2
        st = stages.setdefault(rep.out_shape[1], {"depth": 0, "width": 0})
        st["depth"] += convs
        st["width"] = max(st["width"], rep.out_shape[0])
    keys = [k for k in sorted(stages, reverse=True) if stages[k]["depth"]]
    for prev, cur in zip(keys, keys[1:]):
        p, c = stages[prev], stages[cur]
        if c["width"] >= 4 * p["width"] and c["depth"] <= 1:
            out.append(Finding(None, "balance", 4, "Width and depth out of balance",
                               f"the {cur}x{cur} stage is {c['width'] / p['width']:.0f}x wider than the "
                               f"{prev}x{prev} stage but has only {c['depth']} convolution(s): grow width and "
                               "depth together.", []))
        if c["depth"] >= 4 * max(p["depth"], 1) and c["width"] <= p["width"] and c["depth"] >= 8:
            out.append(Finding(None, "balance", 4, "Width and depth out of balance",
                               f"the {cur}x{cur} stage stacks {c['depth']} convolutions at the width of the "
                               f"previous stage ({c['width']}): deeper without wider.", []))


# ------------------------------------------------------------------------------------------------ refactors

def apply(graph: Graph, ref: Refactor) -> list[str]:
    """Apply a refactor to ``graph`` (in place); returns the ids it created."""
    bid = ref.block
    if ref.inner is not None:
        edits.expand(graph, bid)
        bid = f"{bid}.{ref.inner}"
    fn = {"factorize_5x5": _factorize_5x5, "factorize_nxn": lambda g, b, o: _factorize_asym(g, b, "row_first"),
          "factorize_3x3": lambda g, b, o: _factorize_asym(g, b, "col_first"),
          "insert_reduction": _insert_reduction, "efficient_reduction": _efficient_reduction,
          "upgrade": _upgrade}.get(ref.code)
    if fn is None:
        raise GraphEditError(f"unknown refactor {ref.code!r}")
    return fn(graph, bid, ref.options)


_DELTAS: dict = {}  # (refactor, the blocks it rewrites as they are) -> (applicable, its effect)


def _vetted(graph: Graph, a: Analysis, findings: list) -> list[Finding]:
    ir = None
    ranked, plain = [], []
    for f in findings:
        if not f.refactors:
            plain.append(f)
            continue
        kept = []
        for r in f.refactors:
            rewrites = r.options.get("pair", (r.block,))
            key = (r.code, r.inner, repr(sorted(r.options.items())),
                   tuple((graph.block(b).key, tuple(a.blocks[b].in_shapes), a.blocks[b].inference) for b in rewrites))
            delta = _DELTAS.get(key) if a.ok else None
            if delta is None:  # a refactor rewrites its blocks only: its effect is theirs, whatever else changes
                p = preview(graph, r, a)
                delta = (p.ok, p.after_params - p.before_params, p.before_macs - p.after_macs,
                         p.after_training_params - p.before_training_params,
                         p.before_training_macs - p.after_training_macs)
                if a.ok:  # (in a graph with errors elsewhere no refactor checks out: that says nothing of it)
                    _DELTAS[key] = delta
                if len(_DELTAS) > 50_000:
                    _DELTAS.clear()
            ok, more_params, saved, more_training_params, saved_training = delta
            if not ok or more_params > 0 or saved < 0 or more_training_params > 0 or saved_training < 0:
                continue  # it would cost more than it saves: never proposed
            if r.inner is not None:
                ir = ir or lower(graph, a, partial=True)
                node = ir.by_id.get(f"{r.block}.{r.inner}")
                rewritten = node.figures.macs if node is not None and node.figures is not None else 0
            else:
                rewritten = sum(a.blocks[b].macs for b in rewrites)
            saving = max(saved, saved_training)
            if rewritten and saving >= MIN_SAVING * rewritten:
                kept.append((saving, r))
        if kept:
            kept.sort(key=lambda e: -e[0])
            f.refactors, f.saving = [r for _, r in kept], kept[0][0]
            ranked.append(f)
    ranked.sort(key=lambda f: -f.saving)
    return ranked + plain


def preview(graph: Graph, ref: Refactor, analysis: Analysis | None = None) -> Preview:
    """What the refactor would change, computed on a copy; the graph itself is untouched."""
    a0 = analysis if analysis is not None and analysis.describes(graph) else Analyzer(graph).run()
    trial = graph.copy()
    try:
        apply(trial, ref)
    except GraphEditError as e:
        return Preview(ref, a0.inference.params, a0.inference.params, a0.inference.macs, a0.inference.macs, False,
                       str(e), a0.training.params, a0.training.params, a0.training.macs, a0.training.macs)
    a1 = Analyzer(trial).run()
    ok = a1.ok and _same_outputs(a0, a1)
    msg = "" if ok else ("it would break the graph: " + "; ".join(str(e) for e in a1.errors[:2]) if not a1.ok
                         else "an output shape would change")
    return Preview(ref, a0.inference.params, a1.inference.params, a0.inference.macs, a1.inference.macs, ok, msg,
                   a0.training.params, a1.training.params, a0.training.macs, a1.training.macs, trial if ok else None)


def _same_outputs(a0, a1) -> bool:
    return [a0.blocks[o].out_shape for o in a0.outputs] == [a1.blocks[o].out_shape for o in a1.outputs]


def _conv_like(graph, bid):
    b = graph.block(bid)
    if _role(b.type) != "convolution":
        raise GraphEditError(f"{bid} is not a convolution")
    return b


def _replace_chain(graph, bid, specs) -> list[str]:
    """Replace block ``bid`` by a chain of new blocks [(suffix, type, params)], keeping its wiring."""
    b = graph.block(bid)
    ins = graph.inputs(bid)
    outs = graph.consumers(bid)
    x, y = b.pos
    graph.remove_block(bid)
    taken = set(graph.ids())
    new = []
    prev = ins[0][1] if ins else None
    for i, (suffix, type_id, params) in enumerate(specs):
        # the first block keeps the id (and so its place in the state_dict); the others get new ones
        nid = _sibling_id(bid, suffix, taken) if i else bid
        taken.add(nid)
        graph.add_block(type_id, params, nid, pos=(x + 30.0 * i, y + 95.0 * i), group=b.group)
        if prev is not None:
            graph.connect(prev, nid)
        prev = nid
        new.append(nid)
    for v, port in outs:
        graph.connect(prev, v, port)
    return new


def _sibling_id(bid: str, suffix: str, taken) -> str:
    """A new id beside ``bid``: under the same parent path (``inception3a.branch3.1`` gives
    ``inception3a.branch3.conv_1_a``), so a refactored composite's blocks keep one naming scheme."""
    parent, _, last = bid.rpartition(".")
    if not parent:
        return make_id(f"{bid}_{suffix}", taken)
    local = {t[len(parent) + 1:] for t in taken if t.startswith(parent + ".")}
    return f"{parent}.{make_id(f'{last}_{suffix}', local, fallback='conv')}"


def _conv_params(b, **changes):
    keep = {k: v for k, v in b.params.items() if k not in ("in_channels",)}
    keep.update(changes)
    return keep


def _middle_channels(graph, bid, b) -> int:
    """Width between the two factors: min(C_in, C_out), so the pair never costs more than 2/n (or 18/25) of
    the original, and exactly that when the input and output widths are equal."""
    rep = Analyzer(graph).run().blocks[bid]
    cin = rep.in_shapes[0][0] if rep.in_shapes and rep.in_shapes[0] else b.params["out_channels"]
    return min(cin, b.params["out_channels"])


def _factorize_5x5(graph, bid, options):
    b = _conv_like(graph, bid)
    p = b.params
    if p["kernel"] != [5, 5] or p["stride"] != [1, 1]:
        raise GraphEditError(f"{bid} is not a stride-1 5x5 convolution")
    ph, pw = p["padding"]
    mid = _middle_channels(graph, bid, b)
    first = _conv_params(b, kernel=[3, 3], padding=[min(ph, 1), min(pw, 1)], out_channels=mid)
    second = _conv_params(b, kernel=[3, 3], padding=[ph - min(ph, 1), pw - min(pw, 1)])
    return _replace_chain(graph, bid, [("a", b.type, first), ("b", b.type, second)])


def _factorize_asym(graph, bid, order):
    b = _conv_like(graph, bid)
    p = b.params
    kh, kw = p["kernel"]
    if kh != kw or kh < 2 or p["stride"] != [1, 1] or isinstance(p["padding"], str):
        raise GraphEditError(f"{bid} is not a stride-1 square convolution")
    n = kh
    ph, pw = p["padding"]
    mid = _middle_channels(graph, bid, b)
    row = _conv_params(b, kernel=[1, n], padding=[0, pw])
    col = _conv_params(b, kernel=[n, 1], padding=[ph, 0])
    if order == "col_first":  # 3x3 -> 3x1 then 1x3
        chain = [("%dx1" % n, b.type, {**col, "out_channels": mid}), ("1x%d" % n, b.type, row)]
    else:  # nxn -> 1xn then nx1
        chain = [("1x%d" % n, b.type, {**row, "out_channels": mid}), ("%dx1" % n, b.type, col)]
    return _replace_chain(graph, bid, chain)


def _insert_reduction(graph, bid, options):
    b = _conv_like(graph, bid)
    ins = graph.inputs(bid)
    if not ins:
        raise GraphEditError(f"{bid} has no input to reduce")
    channels = int(options.get("channels", 16))
    src = ins[0][1]
    taken = set(graph.ids())
    rid = _sibling_id(bid, "reduce", taken)
    params = {"out_channels": channels, "kernel": 1}
    params.update({k: b.params[k] for k in ("eps", "batch_norm") if k in b.params})  # a conv with its own BN
    # a convolution followed by an activation (not one with its own): the reduction gets the same one
    after = [graph.block(v) for v, _ in graph.consumers(bid)]
    act_after = after[0] if len(after) == 1 and after[0].spec is not None and \
        after[0].spec.category == "Activation" else None
    graph.disconnect(src, bid, ins[0][0])
    graph.add_block(b.type, params, rid, pos=(b.pos[0] - 30, b.pos[1] - 60), group=b.group)
    graph.connect(src, rid)
    made = [rid]
    if act_after is not None:
        act = _sibling_id(rid, act_after.type, set(graph.ids()))
        graph.add_block(act_after.type, dict(act_after.params), act, pos=(b.pos[0] - 15, b.pos[1] - 30),
                        group=b.group)
        graph.connect(rid, act)
        rid = act
        made.append(act)
    graph.connect(rid, bid, ins[0][0])
    if b.params.get("in_channels"):
        graph.set_params(bid, {"in_channels": 0})
    return made


def _efficient_reduction(graph, bid, options):
    first, second = options["pair"]
    a = Analyzer(graph).run()
    in_shape = a.blocks[first].in_shapes[0]
    out_shape = a.blocks[second].out_shape
    extra = out_shape[0] - in_shape[0]
    if extra < 1:
        raise GraphEditError("the pair does not widen the representation; nothing to replace")
    padding = None
    for pad in (0, 1):
        if (in_shape[1] + 2 * pad - 3) // 2 + 1 == out_shape[1] and (in_shape[2] + 2 * pad - 3) // 2 + 1 == \
                out_shape[2]:
            padding = pad
            break
    if padding is None:
        raise GraphEditError(f"no stride-2 3x3 reduction maps {fmt_shape(in_shape)} to {fmt_shape(out_shape)}")
    ins = graph.inputs(first)
    outs = graph.consumers(second)
    pools = [graph.block(x).spec for x in (first, second) if _role(graph.block(x).type) == "pool"]
    pool = "avg" if pools and pools[0].title.lower().startswith("avg") else "max"
    bn = any(graph.block(x).params.get("batch_norm", False) for x in (first, second))
    x, y = graph.block(first).pos
    graph.remove_block(first)
    graph.remove_block(second)
    rid = _sibling_id(first, "reduction", set(graph.ids()))
    kind = next(spec.type_id for spec in REGISTRY if spec.advisor_role == "reduction")
    graph.add_block(kind, {"reduce": max(min(in_shape[0], extra), 1), "out_channels": extra,
                                       "pool": pool, "padding": padding, "batch_norm": bn}, rid, pos=(x, y))
    if ins:
        graph.connect(ins[0][1], rid)
    for v, port in outs:
        graph.connect(rid, v, port)
    return [rid]


def _upgrade(graph, bid, options):
    """The block as the newer kind its own kind names (``BlockSpec.upgrade``), wired as it was."""
    b = graph.block(bid)
    up = b.spec.upgrade if b.spec is not None else None
    if up is None:
        raise GraphEditError(f"{bid} ({b.type}) has no newer design to become")
    ins, outs, pos, label, group = graph.inputs(bid), graph.consumers(bid), b.pos, b.label, b.group
    params = up.params(b.params)
    graph.remove_block(bid)
    graph.add_block(up.kind, params, bid, label, pos, group=group)
    if ins:
        graph.connect(ins[0][1], bid)
    for v, port in outs:
        graph.connect(bid, v, port)
    return [bid]


def refactors(findings) -> list[Refactor]:
    seen, out = set(), []
    for f in findings:
        for r in f.refactors:
            if r.key() not in seen:
                seen.add(r.key())
                out.append(r)
    return out


def apply_all(graph: Graph, codes=("factorize_5x5", "factorize_nxn")) -> tuple[list[Refactor], Analysis, Analysis]:
    """Apply every applicable refactor of the given kinds, one at a time, re-checking after each (a composite
    that was expanded for one refactor offers its other convolutions as top-level blocks afterwards)."""
    before = Analyzer(graph).run()
    done: list[Refactor] = []
    for _ in range(500):
        todo = [r for r in refactors(check(graph)) if r.code in codes]
        # one refactor per convolution: prefer the first listed (5x5 -> two 3x3 before 1xn / nx1)
        picked = None
        for r in todo:
            if preview(graph, r).ok:
                picked = r
                break
        if picked is None:
            break
        apply(graph, picked)
        done.append(picked)
    return done, before, Analyzer(graph).run()
