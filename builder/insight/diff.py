"""How two networks differ: their blocks matched by structure (not only by id), and what was added, removed,
changed or renamed, with the shapes on the wires and the deltas of parameters, MACs and activation memory.

Two levels: ``blocks`` compares the diagrams (what the canvas shows: a composite is one unit), ``layers`` the
lowered networks (every primitive of :func:`builder.core.ir.lower`, named by its module path), for a design with
composites against a flat import. Both read the figures of the same analysis that ``info`` prints, so the totals
of a :class:`Diff` are exactly B's minus A's.

Matching, in order: blocks with the same id and kind; then the rest aligned as sequences in the order the
network runs them (``difflib``, on kind and parameters: repeated stages align, so ResNet-34 against ResNet-18
shows the blocks each stage gained); within an unaligned stretch, blocks of the same kind pair in order (a
changed block); last, any left with the same kind, parameters and shapes (a block moved elsewhere)."""
from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field

from blocks.spec import fmt_shape, plain

from ..core.analysis import BYTES_PER_VALUE, Analysis, Totals, analyze
from ..core.graph import Graph, freeze

LEVELS = ("blocks", "layers")
_TOTAL_KEYS = tuple(Totals().to_dict())


@dataclass(slots=True)
class Unit:
    """One compared block (a diagram block, or a primitive of the lowered network)."""
    id: str
    kind: str
    params: dict
    inputs: tuple        # ids of the units it reads, in port order
    in_shapes: tuple
    shape: tuple | None
    n_params: int
    macs: int
    activations: int
    label: str = ""
    training_only: bool = False
    block: str = ""      # the diagram block it is (or is inside of)
    inside: tuple = ()   # a composite's lowered layers (relative id, kind, parameters, inputs): what it computes
    sig: tuple = field(default=(), repr=False)    # what it computes: what alignment compares
    exact: tuple = field(default=(), repr=False)  # and its shapes: what a moved block must keep

    def __post_init__(self):
        # a composite is what its layers compute: ResNet's shortcut "auto" and the "projection" it resolves to, or
        # a group and the composite kind it was imported as, with the same layers inside, are the same block
        self.sig = ("composite", self.inside) if self.inside else (self.kind, freeze(self.params))
        self.exact = (self.sig, self.in_shapes, self.shape)

    @property
    def activation_bytes(self) -> int:
        return self.activations * BYTES_PER_VALUE

    def figures(self) -> dict:
        return {"params": self.n_params, "macs": self.macs, "activation_bytes": self.activation_bytes}


@dataclass
class Side:
    """One of the two networks: its name, its units in the order it runs them, its analysis."""
    name: str
    units: list
    analysis: Analysis
    graph: Graph

    def __post_init__(self):
        self.by_id = {u.id: u for u in self.units}


def side(graph: Graph, level: str = "blocks", analysis: Analysis | None = None) -> Side:
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: expected one of {', '.join(LEVELS)}")
    a = analysis if analysis is not None and analysis.describes(graph) else analyze(graph)
    from ..core.ir import lower
    ir = lower(graph, a, partial=True)
    if level == "blocks":
        inside = _insides(ir)
        units = []
        for bid, rep in a.blocks.items():
            b = graph.block(bid)
            srcs = tuple(src for _, src in graph.inputs(bid))
            units.append(Unit(bid, b.type, dict(b.params), srcs, tuple(tuple(s) if s else None for s in rep.in_shapes),
                              tuple(rep.out_shape) if rep.out_shape else None, rep.params, rep.macs,
                              rep.activations, b.label, rep.training, bid, inside.get(bid, ())))
        return Side(graph.name, units, a, graph)
    units = []
    for n in ir.nodes:
        f = n.figures if n.figures is not None else a.blocks.get(n.id)  # a top-level block: its report
        units.append(Unit(n.id, n.kind, plain(n.params), tuple(n.inputs),
                          tuple(tuple(s) if s else None for s in n.in_shapes), tuple(n.shape) if n.shape else None,
                          f.params if f else 0, f.macs if f else 0, f.activations if f else 0, "",
                          n.training_only, n.block))
    return Side(graph.name, units, a, graph)


def _insides(ir) -> dict:
    """Diagram block id -> the layers its composite lowers to, named relative to it (empty for primitives)."""
    rows: dict = {c.id: [] for c in ir.composites.values() if not c.scope}
    for n in ir.nodes:  # one pass, in the order the network runs them
        if n.scope and n.block in rows:
            bid = n.block
            cut = len(bid) + 1
            rows[bid].append((n.id[cut:], n.kind, freeze(plain(n.params)),
                              tuple(i[cut:] if i.startswith(bid + ".") else "<in>" for i in n.inputs)))
    return {bid: tuple(r) for bid, r in rows.items()}


# ---------------------------------------------------------------------------- the result

@dataclass
class Change:
    """A block of both networks that is not the same in both: what differs."""
    a: str
    b: str
    kind: str
    params: dict          # name -> (old, new)
    inputs: tuple | None  # (old sources, new sources) named as in B, when the wiring differs
    in_shapes: tuple | None
    shape: tuple | None   # (old, new) output shape, when it differs
    training_only: tuple | None
    delta: dict           # params, macs, activation_bytes: B's minus A's


@dataclass
class Diff:
    a: Side
    b: Side
    level: str
    pairs: dict            # A id -> B id, every matched block
    added: list            # B units
    removed: list          # A units
    changed: list          # Change
    renamed: list          # (A id, B id, A label, B label): matched, the same but for its name
    wires: list            # (src in B, dst in B, old shape, new shape): a wire of both whose shape differs

    @property
    def same(self) -> bool:
        """No block added, removed or changed (a rename alone changes nothing the network computes)."""
        return not (self.added or self.removed or self.changed)

    def totals(self) -> dict:
        """B's totals minus A's, for inference and training: exactly ``info --json`` of B minus that of A."""
        out = {}
        for mode in ("inference", "training"):
            ta, tb = getattr(self.a.analysis, mode).to_dict(), getattr(self.b.analysis, mode).to_dict()
            out[mode] = {k: tb[k] - ta[k] for k in _TOTAL_KEYS}
        return out

    def status(self) -> dict:
        """The diagram blocks of each side marked: "added"/"removed", "changed" or "same" (renamed counts as
        same); at the layer level a block is changed when any of its layers is."""
        marks_a = {u.block: "same" for u in self.a.units}
        marks_b = {u.block: "same" for u in self.b.units}
        for u in self.removed:
            marks_a[u.block] = "removed" if self.level == "blocks" else "changed"
        for u in self.added:
            marks_b[u.block] = "added" if self.level == "blocks" else "changed"
        for c in self.changed:
            marks_a[self.a.by_id[c.a].block] = "changed"
            marks_b[self.b.by_id[c.b].block] = "changed"
        if self.level == "layers":  # a block all of whose layers are new (or gone) is added (removed)
            for side_, units, mark, word in ((self.a, self.removed, marks_a, "removed"),
                                             (self.b, self.added, marks_b, "added")):
                layers = Counter(u.block for u in side_.units)
                for blk, n in Counter(u.block for u in units).items():
                    if n == layers[blk]:
                        mark[blk] = word
        return {"a": marks_a, "b": marks_b}

    def expanded(self) -> list:
        """Composites of A removed where B has blocks named inside them (expanded on the canvas): their layers
        are compared by the ``layers`` level."""
        if self.level != "blocks":
            return []
        added = [u.id for u in self.added]
        return [u.id for u in self.removed if u.inside and any(x.startswith(u.id + ".") for x in added)]

    def to_dict(self) -> dict:
        def unit(u: Unit) -> dict:
            return {"id": u.id, "kind": u.kind, "output_shape": list(u.shape) if u.shape else None, **u.figures(),
                    "training_only": u.training_only}
        return {
            "a": self.a.name, "b": self.b.name, "level": self.level, "same": self.same,
            "summary": self.summary(),
            "matched": len(self.pairs),
            "added": [{**unit(u), "delta": u.figures()} for u in self.added],
            "removed": [{**unit(u), "delta": {k: -v for k, v in u.figures().items()}} for u in self.removed],
            "changed": [{"a": c.a, "b": c.b, "kind": c.kind,
                         "params": {k: {"a": _json(o), "b": _json(n)} for k, (o, n) in c.params.items()},
                         "inputs": {"a": list(c.inputs[0]), "b": list(c.inputs[1])} if c.inputs else None,
                         "input_shapes": {"a": _json(c.in_shapes[0]), "b": _json(c.in_shapes[1])}
                         if c.in_shapes else None,
                         "output_shape": {"a": _json(c.shape[0]), "b": _json(c.shape[1])} if c.shape else None,
                         "training_only": {"a": c.training_only[0], "b": c.training_only[1]}
                         if c.training_only else None,
                         "delta": c.delta} for c in self.changed],
            "renamed": [{"a": a, "b": b, "label_a": la, "label_b": lb} for a, b, la, lb in self.renamed],
            "wires": [{"src": s, "dst": d, "a": _json(o), "b": _json(n)} for s, d, o, n in self.wires],
            "totals": self.totals(),
        }

    def summary(self) -> str:
        if self.same:
            return "no change" + (f" ({len(self.renamed)} renamed)" if self.renamed else "")
        parts = [f"{len(self.added)} added", f"{len(self.removed)} removed", f"{len(self.changed)} changed"]
        if self.renamed:
            parts.append(f"{len(self.renamed)} renamed")
        return ", ".join(parts)


def _json(v):
    if isinstance(v, tuple):
        return [_json(x) for x in v]
    return v


# ---------------------------------------------------------------------------- matching

def compare(a: Graph | Side, b: Graph | Side, level: str = "blocks") -> Diff:
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: expected one of {', '.join(LEVELS)}")
    sa = a if isinstance(a, Side) else side(a, level)
    sb = b if isinstance(b, Side) else side(b, level)
    pairs = _match(sa.units, sb.units)
    inv = {v: k for k, v in pairs.items()}
    changed, renamed = [], []
    wiring = _Wiring(sa, sb, pairs, inv)
    for ua in sa.units:
        if ua.id not in pairs:
            continue
        ub = sb.by_id[pairs[ua.id]]
        c = _change(ua, ub, pairs, wiring.differs(ua, ub))
        if c is not None:
            changed.append(c)
        elif ua.id != ub.id or ua.label != ub.label:
            renamed.append((ua.id, ub.id, ua.label, ub.label))
    added = [u for u in sb.units if u.id not in inv]
    removed = [u for u in sa.units if u.id not in pairs]
    wires = []
    for ub in sb.units:
        ua = sa.by_id.get(inv.get(ub.id, ""))
        if ua is None:
            continue
        a_srcs = {pairs.get(s) for s in ua.inputs}
        for src in ub.inputs:
            if src not in a_srcs:
                continue
            old = sa.by_id[inv[src]].shape
            new = sb.by_id[src].shape
            if old != new:
                wires.append((src, ub.id, old, new))
    return Diff(sa, sb, level, pairs, added, removed, changed, renamed, wires)


class _Wiring:
    """Whether a matched block reads something else in B than in A. Its sources are compared through the blocks
    added or removed in front of them: a block that now reads a block inserted before it (ResNet-34's
    ``layer2.0`` reads the new ``layer1.2``) reads what it read before, and is not rewired."""

    def __init__(self, sa: Side, sb: Side, pairs: dict, inv: dict):
        self.sa, self.sb, self.pairs, self.inv = sa, sb, pairs, inv
        self._memo: dict = {}

    def _reach(self, side_: Side, uid: str, matched, depth=0) -> frozenset:
        """The matched blocks (named in B) that ``uid`` stands for: itself when matched, else what it reads."""
        key = (side_ is self.sa, uid)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        out: set = set()
        stack, seen = [uid], set()
        while stack:
            u = stack.pop()
            if u in seen:
                continue
            seen.add(u)
            m = matched(u)
            if m is not None:
                out.add(m)
            elif u in side_.by_id:
                stack.extend(side_.by_id[u].inputs)
        self._memo[key] = frozenset(out)
        return self._memo[key]

    def differs(self, ua: Unit, ub: Unit) -> bool:
        if len(ua.inputs) != len(ub.inputs):
            return True
        return any(self._reach(self.sa, s, self.pairs.get) != self._reach(self.sb, t, lambda u: u if u in self.inv
                                                                           else None)
                   for s, t in zip(ua.inputs, ub.inputs))


def _change(ua: Unit, ub: Unit, pairs: dict, rewired: bool) -> Change | None:
    same_inside = bool(ua.inside) and ua.inside == ub.inside
    params = {} if same_inside else {
        k: (ua.params.get(k), ub.params.get(k)) for k in dict.fromkeys([*ua.params, *ub.params])
        if freeze(ua.params.get(k)) != freeze(ub.params.get(k))}
    mapped = tuple(pairs.get(s, f"{s} (removed)") for s in ua.inputs)
    inputs = (mapped, ub.inputs) if rewired else None
    in_shapes = (ua.in_shapes, ub.in_shapes) if ua.in_shapes != ub.in_shapes else None
    shape = (ua.shape, ub.shape) if ua.shape != ub.shape else None
    training = (ua.training_only, ub.training_only) if ua.training_only != ub.training_only else None
    if not (params or inputs or in_shapes or shape or training):
        return None
    delta = {k: ub.figures()[k] - ua.figures()[k] for k in ("params", "macs", "activation_bytes")}
    return Change(ua.id, ub.id, ub.kind, params, inputs, in_shapes, shape, training, delta)


def _match(ua: list, ub: list) -> dict:
    """A id -> B id for every block of A that has a counterpart in B (see the module's docstring)."""
    b_by_id = {u.id: u for u in ub}
    pairs = {u.id: u.id for u in ua if u.id in b_by_id and b_by_id[u.id].kind == u.kind}
    taken = set(pairs.values())
    rest_a = [u for u in ua if u.id not in pairs]
    rest_b = [u for u in ub if u.id not in taken]
    if rest_a and rest_b:
        sm = difflib.SequenceMatcher(None, [u.sig for u in rest_a], [u.sig for u in rest_b], autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            if op == "equal":
                for x, y in zip(rest_a[i1:i2], rest_b[j1:j2]):
                    pairs[x.id] = y.id
            elif op == "replace":  # the same kind, in order, within the stretch: a changed block
                free = list(rest_b[j1:j2])
                for x in rest_a[i1:i2]:
                    y = next((y for y in free if y.kind == x.kind), None)
                    if y is not None:
                        free.remove(y)
                        pairs[x.id] = y.id
    taken = set(pairs.values())
    left_b: dict = {}
    for u in ub:
        if u.id not in taken:
            left_b.setdefault(u.exact, []).append(u)
    for u in ua:  # a block moved elsewhere: the same in every respect but its place
        if u.id not in pairs and left_b.get(u.exact):
            pairs[u.id] = left_b[u.exact].pop(0).id
    return pairs


# ---------------------------------------------------------------------------- text

def signed(n: int, fmt=None) -> str:
    """``n`` with its sign (+, -, or ± for 0), in ``fmt`` (default: report.human, 1.2M)."""
    from .report import human
    text = (fmt or human)(abs(n))
    return ("+" if n > 0 else "-" if n < 0 else "±") + text


def _figures(d: dict) -> str:
    from .report import human_bytes
    return (f"{signed(d['params'])} params, {signed(d['macs'])} MACs, "
            f"{signed(d['activation_bytes'], human_bytes)} activations")


def describe_change(c: Change) -> str:
    parts = [f"{k} {_show(o)} -> {_show(n)}" for k, (o, n) in c.params.items()]
    if c.inputs:
        parts.append(f"inputs {', '.join(c.inputs[0]) or 'none'} -> {', '.join(c.inputs[1]) or 'none'}")
    if c.shape:
        parts.append(f"output {_shape(c.shape[0])} -> {_shape(c.shape[1])}")
    elif c.in_shapes:
        parts.append(f"input {', '.join(map(_shape, c.in_shapes[0]))} -> {', '.join(map(_shape, c.in_shapes[1]))}")
    if c.training_only:
        parts.append("now only for training" if c.training_only[1] else "now used in inference")
    return "; ".join(parts)


def _show(v) -> str:
    return "(none)" if v is None else repr(v) if isinstance(v, str) else str(v)


def _shape(s) -> str:
    return fmt_shape(s) if s else "no shape"


def render(d: Diff) -> str:
    from .report import human
    name = (lambda u: u.id if not u.label or u.label == u.id else f"{u.id} ({u.label})")
    lines = [f"{d.a.name} -> {d.b.name} ({d.level}): {d.summary()}"]
    if d.added:
        lines.append("added:")
        lines += [f"  + {name(u)}  {u.kind}  -> {_shape(u.shape)}  {_figures(u.figures())}" for u in d.added]
    if d.removed:
        lines.append("removed:")
        lines += [f"  - {name(u)}  {u.kind}  -> {_shape(u.shape)}  "
                  f"{_figures({k: -v for k, v in u.figures().items()})}" for u in d.removed]
    if d.changed:
        lines.append("changed:")
        for c in d.changed:
            where = c.b if c.a == c.b else f"{c.a} -> {c.b}"
            lines.append(f"  ~ {where}  {c.kind}: {describe_change(c)}  {_figures(c.delta)}")
    if d.renamed:
        lines.append("renamed:")
        lines += [f"  = {a} -> {b}" + (f" (label {la!r} -> {lb!r})" if la != lb else "") for a, b, la, lb in d.renamed]
    expanded = d.expanded()
    if expanded:
        lines.append(f"({len(expanded)} composite{'s' if len(expanded) != 1 else ''} of A "
                     f"({', '.join(expanded[:3])}{', ...' if len(expanded) > 3 else ''}) became blocks in B: "
                     "--layers compares what changed inside)")
    if d.wires:
        lines.append("shapes on wires:")
        lines += [f"  {s} -> {t}: {_shape(o)} -> {_shape(n)}" for s, t, o, n in d.wires]
    lines.append("totals (B - A):")
    for mode, t in d.totals().items():
        ta = getattr(d.a.analysis, mode)
        tb = getattr(d.b.analysis, mode)
        lines.append(f"  {mode}: params {human(ta.params)} -> {human(tb.params)} ({t['params']:+,}), "
                     f"MACs {human(ta.macs)} -> {human(tb.macs)} ({t['macs']:+,}), "
                     f"activations {t['activation_bytes']:+,} bytes per image")
    return "\n".join(lines) + "\n"
