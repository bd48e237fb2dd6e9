"""Live analysis: per block output shape, parameters, MACs, activations and errors, as data. No torch.

Results are cached per block on (type, parameters, input shapes), and the topological order and reachability
on the graph's ``structure_rev``, so after an edit only the blocks whose inputs or parameters changed are
recomputed.
"""
from __future__ import annotations

import heapq
import itertools
import os
from dataclasses import dataclass, field

import networkx as nx

from blocks import REGISTRY, BlockError, fmt_shape
from blocks.composite import IN
from blocks.spec import ParamError, fill_sources

from .expansion import clear as clear_expansions, expand_composite
from .graph import Graph, freeze, port_order
from .nodes import Node

BYTES_PER_VALUE = 4  # float32


def _max_values() -> int:
    """The most values one block's output may hold per image (default 4 GiB of float32)."""
    try:
        gib = float(os.environ.get("BLOCK_BUILDER_MAX_ACTIVATION_GIB", "4"))
    except ValueError:
        gib = 4.0
    return max(1, int(gib * (1 << 30) / BYTES_PER_VALUE))


MAX_VALUES = _max_values()


@dataclass(slots=True)
class Issue:
    block: str | None
    code: str
    message: str
    severity: str = "error"
    related: tuple = ()  # other blocks the message names (a concat's mismatched sources), as data

    def to_dict(self) -> dict:
        return {"block": self.block, "code": self.code, "message": self.message, "severity": self.severity,
                "related": list(self.related)}

    def __str__(self) -> str:
        where = f"{self.block}: " if self.block else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass(slots=True)
class Result:
    """What one (possibly composite) block does to its inputs."""
    out_shape: tuple | None
    params: int = 0
    macs: int = 0
    activations: int = 0  # values produced, including those inside a composite
    errors: tuple = ()    # ((code, message), ...)


@dataclass(slots=True)
class BlockReport:
    id: str
    type: str
    in_shapes: list
    out_shape: tuple | None
    params: int
    macs: int
    activations: int
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    training: bool = False
    inference: bool = False

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.type, "output_shape": list(self.out_shape) if self.out_shape else None,
                "params": self.params, "macs": self.macs, "flops": 2 * self.macs, "activations": self.activations,
                "errors": [e.message for e in self.errors], "warnings": [w.message for w in self.warnings],
                "in_inference": self.inference}


@dataclass
class Totals:
    params: int = 0
    macs: int = 0
    activations: int = 0

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        return self.activations * BYTES_PER_VALUE

    @property
    def param_bytes(self) -> int:
        return self.params * BYTES_PER_VALUE

    def to_dict(self) -> dict:
        return {"params": self.params, "macs": self.macs, "flops": self.flops, "activations": self.activations,
                "activation_bytes": self.activation_bytes, "param_bytes": self.param_bytes}


@dataclass
class Analysis:
    blocks: dict          # id -> BlockReport, in topological order
    training: Totals
    inference: Totals
    issues: list          # every Issue, block ones first
    outputs: list         # output block ids: main first, then aux in graph order
    rev: int = -1         # the graph's structure_rev it was made for
    keys: dict = field(default_factory=dict)  # {block id: its key} of every block it was made for
    serial: int = 0       # this analysis's number (every run of every Analyzer gets the next one)
    base: int = -1        # the serial of the analysis it was made from (-1: none)
    changed: frozenset | None = None  # the blocks whose reports are new since ``base`` (None: every one)

    def changed_since(self, serial: int):
        """The ids of the blocks whose reports are not those of the analysis numbered ``serial`` (the one a
        view last showed), or None when that is not the analysis this one was made from: show every block."""
        return self.changed if serial == self.base and self.changed is not None else None

    def describes(self, graph: Graph) -> bool:
        """Whether this analysis is of the graph as it is now (no block, parameter or wire changed since)."""
        if self.rev != graph.structure_rev or len(self.keys) != len(graph.g):
            return False
        nodes = graph.g._node
        return all(b in nodes and nodes[b]["block"].key == k for b, k in self.keys.items())

    @property
    def errors(self) -> list:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"inference": self.inference.to_dict(), "training": self.training.to_dict(),
                "blocks": [b.to_dict() for b in self.blocks.values()],
                "issues": [i.to_dict() for i in self.issues], "ok": self.ok}


# ---------------------------------------------------------------------------- per-kind evaluation

_CACHE: dict = {}
_CACHE_LIMIT = 200_000


def evaluate(type_id: str, params: dict, in_shapes: tuple, pkey=None) -> Result:
    """Shape, cost and errors of one block given its input shapes. Pure; memoised. Messages that name a source
    hold placeholders (:func:`blocks.spec.fill_sources`): the same result serves every graph."""
    key = (type_id, pkey if pkey is not None else freeze(params), in_shapes)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    res = _evaluate(type_id, params, in_shapes)
    if len(_CACHE) > _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[key] = res
    return res


def _evaluate(type_id, params, in_shapes) -> Result:
    spec = REGISTRY.get(type_id)
    if spec is None:
        return Result(None, errors=(("unknown_type", f"unknown block type {type_id!r}"),))
    try:
        if spec.is_composite:
            return _evaluate_composite(type_id, params, in_shapes)
        out = spec.shape(params, in_shapes)
        for d in out:
            if d < 1:
                raise BlockError(f"output would be {fmt_shape(out)}: the input "
                                 f"{fmt_shape(in_shapes[0]) if in_shapes else ''} is too small for it",
                                 "kernel_too_large")
        out = tuple(int(d) for d in out)  # figures are numbers; only a composite's parameters are symbolic
        n = 1
        for d in out:
            n *= d
        if n > MAX_VALUES:  # refused before anything is sized from it (a cost, a module, an import)
            raise BlockError(f"output {fmt_shape(out)} would be {n:,} values ({n * BYTES_PER_VALUE / (1 << 30):,.1f} "
                             f"GiB per image), over the {MAX_VALUES * BYTES_PER_VALUE / (1 << 30):g} GiB limit of one "
                             "activation (BLOCK_BUILDER_MAX_ACTIVATION_GIB)", "too_large")
        cost = spec.cost(params, in_shapes, out)
        return Result(out, int(cost.params), int(cost.macs), n if spec.type_id not in ("input", "output") else 0)
    except BlockError as e:
        return Result(None, errors=((e.code, str(e)),))
    except ParamError as e:
        return Result(None, errors=(("bad_param", str(e)),))
    except (ZeroDivisionError, IndexError, KeyError, TypeError, ValueError) as e:  # a rule met inputs it can't use
        return Result(None, errors=(("invalid", f"{spec.title} cannot use inputs "
                                     f"{', '.join(fmt_shape(s) for s in in_shapes)}: {e}"),))


def walk(type_id: str, params: dict, in_shape, prefix: str = "", source: str = IN, scope: tuple = (),
         block: str = "", training_only: bool = False) -> tuple[list[Node], str]:
    """The inside of a composite in the order it runs, as the lowered network's :class:`~.nodes.Node` records
    (each with its input shapes and its figures; an inner composite is one node, not expanded), and the id of the
    node that gives the composite's output. Ids are ``prefix.local`` (the local id alone without a prefix); the
    composite's own input is ``source``. The one walk the analysis of a composite and :func:`.ir.lower` use."""
    sub = expand_composite(type_id, params, in_shape)
    inner = scope + (prefix,) if prefix else scope

    def name(local):
        return source if local == IN else (f"{prefix}.{local}" if prefix else local)
    shapes = {source: in_shape}
    out = []
    for local, t, p in sub.nodes:
        srcs = [name(s) for s in sub.inputs_of(local)]
        ins = tuple(shapes.get(s) for s in srcs)
        r = evaluate(t, p, ins) if None not in ins else Result(None)
        nid = name(local)
        shapes[nid] = r.out_shape
        out.append(Node(nid, t, p, srcs, list(ins), r.out_shape, inner, training_only, block, r))
    return out, name(sub.output)


def _evaluate_composite(type_id, params, in_shapes) -> Result:
    if len(in_shapes) != 1:
        raise BlockError("a composite block takes exactly one input", "unconnected_input")
    try:
        inside, output = walk(type_id, params, in_shapes[0])
    except ParamError as e:
        raise BlockError(f"inside: {e}", "bad_param") from None
    total_p = total_m = total_a = 0
    for n in inside:
        r = n.figures
        if r.errors:
            code, msg = r.errors[0]
            msg, _ = fill_sources(msg, n.inputs)  # local names: fixed by the parameters, so cacheable
            raise BlockError(f"inside, at {n.id}: {msg}", code)
        total_p, total_m, total_a = total_p + r.params, total_m + r.macs, total_a + r.activations
    out_shape = next(n.shape for n in reversed(inside) if n.id == output)
    return Result(out_shape, total_p, total_m, total_a)


# ---------------------------------------------------------------------------- the whole graph

@dataclass
class _Structure:
    order: list
    inputs: dict        # id -> [source ids] in port order
    ports: dict         # id -> [port names] in order
    cyclic: dict        # id -> message
    missing: dict       # id -> "input 'x' is not connected"
    training: set
    inference: set
    outputs: list
    graph_issues: list
    position: dict      # id -> its place in ``order``


_SERIALS = itertools.count(1)


class Analyzer:
    """Keeps the caches for one graph; :meth:`run` gives a fresh :class:`Analysis` after any edit.

    A run after an edit evaluates only what the edit can have changed (:meth:`_rerun`: an edit of one block in a
    10,000-block network evaluates that block and the blocks downstream whose inputs it changed); the new
    analysis names the blocks whose reports are new (:attr:`Analysis.changed`)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._structure: _Structure | None = None
        self._structure_key = None
        self._wired_seen = 0  # how much of the graph's rewired journal the structure has taken in
        # the last run: (its analysis, {id: key}, its structure, how much of the rekeyed and rewired journals)
        self._last: tuple | None = None

    def run(self) -> Analysis:
        g = self.graph
        st = self._get_structure()
        last = self._last
        if last is not None and last[3] <= len(g.rekeyed) and last[4] <= len(g.rewired):
            return self._rerun(st, *last)
        nodes = g.g._node
        reports: dict = {}
        for bid in st.order:
            reports[bid] = self._report(st, bid, nodes[bid]["block"], _in_shapes(st, reports, bid))
        issues = [i for rep in reports.values() for i in (*rep.errors, *rep.warnings)] + st.graph_issues
        train, infer = Totals(), Totals()
        for rep in reports.values():
            for tot, inside in ((train, rep.training), (infer, rep.inference)):
                if inside:
                    tot.params += rep.params
                    tot.macs += rep.macs
                    tot.activations += rep.activations
        return self._made(st, reports, train, infer, issues, {b: nodes[b]["block"].key for b in st.order}, None, None)

    def _rerun(self, st: _Structure, prev: Analysis, last_keys: dict, last_st: _Structure, seen_keyed: int,
               seen_wired: int) -> Analysis:
        """Only the blocks the edits since the last run touched (the graph journals the blocks whose parameters
        changed, :attr:`~builder.core.graph.Graph.rekeyed`, and those added, removed or wired anew,
        :attr:`~builder.core.graph.Graph.rewired`), those that joined or left the training or inference network
        or a cycle, and, downstream, those whose input shapes changed are evaluated again; every other report is
        the last run's, and the totals are the last run's less the old reports plus the new."""
        g = self.graph
        nodes, succ = g.g._node, g.g._succ
        position = st.position
        dirty = set(g.rekeyed[seen_keyed:])
        same = st is last_st
        if same:
            reports = dict(prev.blocks)  # the same blocks in the same order
            gone: list = []
        else:
            dirty.update(g.rewired[seen_wired:])
            dirty |= (st.training ^ last_st.training) | (st.inference ^ last_st.inference)
            dirty |= st.cyclic.keys() | last_st.cyclic.keys() | st.missing.keys() | last_st.missing.keys()
            last_reports = prev.blocks
            reports = {b: last_reports.get(b) for b in st.order}
            gone = [last_reports[b] for b in last_reports.keys() - position.keys()]
        todo = [(position[b], b) for b in dirty if b in position]
        heapq.heapify(todo)
        keys = dict(last_keys) if same else {b: last_keys.get(b) for b in st.order}
        fresh: set = set()
        old_reports = list(gone)
        while todo:
            _, bid = heapq.heappop(todo)
            if bid in fresh:
                continue
            blk = nodes[bid]["block"]
            old = reports[bid]
            keys[bid] = blk.key
            rep = self._report(st, bid, blk, _in_shapes(st, reports, bid))
            reports[bid] = rep
            fresh.add(bid)
            if old is not None:
                old_reports.append(old)
            if old is None or rep.out_shape != old.out_shape:  # what it feeds runs again
                for nxt in succ[bid]:
                    if nxt not in fresh:
                        heapq.heappush(todo, (position[nxt], nxt))
        train, infer = Totals(**vars(prev.training)), Totals(**vars(prev.inference))
        for sign, reps in ((-1, old_reports), (1, [reports[b] for b in fresh])):
            for rep in reps:
                for tot, inside in ((train, rep.training), (infer, rep.inference)):
                    if inside:
                        tot.params += sign * rep.params
                        tot.macs += sign * rep.macs
                        tot.activations += sign * rep.activations
        if not same or any(r.errors or r.warnings for r in old_reports) or \
                any(reports[b].errors or reports[b].warnings for b in fresh):
            issues = [i for rep in reports.values() for i in (*rep.errors, *rep.warnings)] + st.graph_issues
        else:
            issues = list(prev.issues)
        return self._made(st, reports, train, infer, issues, keys, prev, fresh)

    def _report(self, st: _Structure, bid: str, blk, in_shapes: list) -> BlockReport:
        """One block's report, given its input shapes."""
        srcs = st.inputs[bid]
        errors = []
        res = out = None
        if bid in st.cyclic:
            errors.append(Issue(bid, "cycle", st.cyclic[bid]))
        elif bid in st.missing:
            errors.append(Issue(bid, "unconnected_input", st.missing[bid]))
        elif None not in in_shapes:
            res = evaluate(blk.type, blk.params, tuple(in_shapes), blk.key[1])
            out = res.out_shape
            for code, msg in res.errors:
                text, related = fill_sources(msg, srcs)  # this graph's names, never cached
                errors.append(Issue(bid, code, text, related=related))
        in_training = bid in st.training
        warnings = [] if in_training or blk.type == "input" else [
            Issue(bid, "unused", "does not reach an Output block, so it is not compiled", "warning")]
        return BlockReport(bid, blk.type, in_shapes, out, res.params if res else 0, res.macs if res else 0,
                           res.activations if res else 0, errors, warnings, in_training, bid in st.inference)

    def _made(self, st, reports, train, infer, issues, keys, prev, fresh) -> Analysis:
        analysis = Analysis(reports, train, infer, issues, st.outputs, self.graph.structure_rev,
                            keys, next(_SERIALS), prev.serial if prev is not None else -1,
                            frozenset(fresh) if fresh is not None else None)
        self._last = (analysis, keys, st, len(self.graph.rekeyed), len(self.graph.rewired))
        return analysis

    @staticmethod
    def _missing_inputs(spec, ports) -> str | None:
        if spec is None:
            return None
        if spec.variadic:
            if len(ports) < spec.min_inputs:
                need = f"{spec.min_inputs} connected input{'s' if spec.min_inputs != 1 else ''}"
                return f"{spec.title} needs at least {need}, has {len(ports)}"
            return None
        missing = [p for p in spec.ports if p not in ports]
        if missing:
            return f"input {', '.join(repr(m) for m in missing)} is not connected"
        return None

    def _get_structure(self) -> _Structure:
        g = self.graph
        if self._structure is not None and self._structure_key == g.structure_rev:
            st = self._structure
            # output roles may change without a structural edit (every Output's: a second main one is not in
            # st.outputs, and making it aux again ends the "several_main" error)
            if [g.g.nodes[o]["block"].params.get("role") for o in st._outs] == st._roles:  # type: ignore
                return st
        nxg = g.g
        pred, succ = nxg._pred, nxg._succ  # plain dicts: this runs on every structural edit
        order = _kahn(pred, succ)
        cyclic: dict = {}
        if len(order) < len(pred):
            for comp in nx.strongly_connected_components(nxg):
                if len(comp) > 1 or any(nxg.has_edge(n, n) for n in comp):
                    names = " -> ".join(sorted(comp))
                    for n in comp:
                        cyclic[n] = f"is part of a cycle ({names}); a network must flow one way"
            cond = nx.condensation(nxg)
            order = [n for c in nx.topological_sort(cond) for n in sorted(cond.nodes[c]["members"])]
        node = nxg._node
        inputs, ports, kinds, missing = {}, {}, {}, {}
        outs, mains = [], []
        # the wiring of a block no edit touched since the last structure is the last one's (the graph journals
        # the blocks added, removed or wired anew): a 10,000-block network pays for the blocks an edit touched
        last = self._structure if self._wired_seen <= len(g.rewired) else None
        touched = set(g.rewired[self._wired_seen:]) if last is not None else ()
        last_inputs, last_ports, last_missing = (last.inputs, last.ports, last.missing) if last is not None \
            else ({}, {}, {})
        for bid in order:
            blk = node[bid]["block"]
            kinds[bid] = kind = blk.type
            if bid in last_inputs and bid not in touched:
                inputs[bid], ports[bid] = last_inputs[bid], last_ports[bid]
                if bid in last_missing:
                    missing[bid] = last_missing[bid]
            else:
                inputs[bid], ports[bid], msg = self._wiring(pred[bid], REGISTRY.get(kind))
                if msg:
                    missing[bid] = msg
            if kind == "output":
                outs.append(bid)
                if blk.params.get("role") == "main":
                    mains.append(bid)
        aux = [b for b in outs if b not in mains]
        graph_issues = []
        if not outs:
            graph_issues.append(Issue(None, "no_output", "the network has no Output block"))
        elif not mains:
            graph_issues.append(Issue(None, "no_output", "no Output block has the role 'main'"))
        for extra in mains[1:]:
            graph_issues.append(Issue(extra, "several_main", f"a second main output (the first is {mains[0]!r}); "
                                      "make this one 'aux'"))
        if "input" not in kinds.values():
            graph_issues.append(Issue(None, "no_input", "the network has no Input block"))
        training = _ancestors(nxg, outs)
        inference = _ancestors(nxg, mains[:1])
        st = _Structure(order, inputs, ports, cyclic, missing, training, inference, mains[:1] + aux, graph_issues,
                        {b: i for i, b in enumerate(order)})
        st._outs = outs  # type: ignore
        st._roles = [nxg.nodes[o]["block"].params.get("role") for o in outs]  # type: ignore
        self._structure, self._structure_key, self._wired_seen = st, g.structure_rev, len(g.rewired)
        return st

    def _wiring(self, p: dict, spec) -> tuple:
        """A block's sources and ports in port order (``p``: its predecessors and their ports), and what is
        missing among its inputs (or None)."""
        if len(p) == 1:
            (u, keys), = p.items()
            if len(keys) == 1:
                src, prt = [u], list(keys)
            else:
                prt = sorted(keys, key=port_order)
                src = [u] * len(prt)
        elif p:
            edges = sorted(((k, u) for u, keys in p.items() for k in keys), key=lambda e: port_order(e[0]))
            src, prt = [u for _, u in edges], [k for k, _ in edges]
        else:
            src, prt = [], []
        msg = None
        if spec is not None and (spec.variadic or len(prt) != len(spec.ports)):
            msg = self._missing_inputs(spec, prt)
        return src, prt, msg


def _in_shapes(st: _Structure, reports: dict, bid: str) -> list:
    """The shapes that reach ``bid``: its sources' outputs (None from a source that runs after it: a cycle)."""
    here = st.position[bid]
    return [reports[s].out_shape if st.position[s] < here else None for s in st.inputs[bid]]


def _ancestors(nxg, targets) -> set:
    pred = nxg._pred
    seen = set(targets)
    stack = list(targets)
    while stack:
        for p in pred[stack.pop()]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def _kahn(pred, succ) -> list:
    """Topological order: of the blocks whose inputs are ready, the one added to the graph first runs first
    (so a network lists its blocks in the order they were added wherever the wiring allows: GoogLeNet's aux
    heads, added after inception5b as torchvision registers them, come there); shorter than the graph when
    there is a cycle."""
    index = {n: i for i, n in enumerate(pred)}
    indeg = {n: len(p) for n, p in pred.items()}
    ready = [index[n] for n, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    nodes = list(pred)
    order = []
    while ready:
        n = nodes[heapq.heappop(ready)]
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(ready, index[m])
    return order


def clear_caches() -> None:
    """Forget every memoised rule result and expansion (benchmarks time cold runs with it)."""
    _CACHE.clear()
    clear_expansions()


def analyze(graph: Graph) -> Analysis:
    return Analyzer(graph).run()
