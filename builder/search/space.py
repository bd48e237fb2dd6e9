"""A search space on the diagram: parameters that hold a set of candidates instead of one value, and the training
settings searched with them. No torch, no Optuna.

A choice is named ``BLOCK.PARAM`` (the block's id may hold dots: the last one splits) or ``train.SETTING`` for a
training setting (lr, weight_decay, batch_size, label_smoothing, epochs). The project keeps its choices in
``meta["search"]["choices"]`` ({name: [candidates]}); the block keeps its current value, so the design stays
valid and opens, trains and exports as it always did.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from builder.core.analysis import Analyzer
from builder.core.errors import GraphEditError

TRAIN = "train"
SETTINGS = {"lr": float, "weight_decay": float, "batch_size": int, "label_smoothing": float, "epochs": int}
EXACT = 4096  # combinations the cost range is computed over exactly; more are sampled


class SpaceError(ValueError):
    """A choice that names no block or parameter, or a candidate the parameter does not take."""


@dataclass(frozen=True)
class Choice:
    name: str          # BLOCK.PARAM or train.SETTING
    block: str | None  # None: a training setting
    param: str
    values: tuple

    @property
    def trains(self) -> bool:
        return self.block is None


def _literal(text: str):
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    if "x" in t and all(p.strip().isdigit() for p in t.split("x")):
        return [int(p) for p in t.split("x")]  # a kernel or stride pair: 1x3
    return t


def shown(value) -> str:
    """A candidate as people write it (and Optuna's categorical choices hold it): a pair as 3x3."""
    return "x".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def describe(picked: dict) -> str:
    """Choices made, as one line: ``c1.out_channels=6, c1.kernel=3x3``."""
    return ", ".join(f"{k}={shown(v)}" for k, v in picked.items())


def parse(text: str) -> tuple:
    """``BLOCK.PARAM=v1,v2,...`` (as --choice gives it) -> (name, [values])."""
    if "=" not in text:
        raise SpaceError(f"--choice {text!r}: write BLOCK.PARAM=v1,v2,... (or train.lr=0.1,0.01)")
    name, _, values = text.partition("=")
    vals = [_literal(v) for v in values.split(",") if v.strip()]
    if not vals:
        raise SpaceError(f"--choice {text!r}: no candidates after '='")
    return name.strip(), vals


def choice(graph, name: str, values) -> Choice:
    """A checked choice: the block and parameter exist and every candidate is valid for it (normalised)."""
    block, dot, param = name.rpartition(".")
    if not dot or not block or not param:
        raise SpaceError(f"{name}: name a block's parameter as BLOCK.PARAM (or a training setting as train.lr)")
    values = [_literal(v) if isinstance(v, str) else v for v in values]  # "1x3", "0.01" as --choice writes them
    if len(values) < 2:
        raise SpaceError(f"{name}: give at least two candidates (one is just a value)")
    if block == TRAIN and block not in graph:
        if param not in SETTINGS:
            raise SpaceError(f"{name}: the training settings that can be searched are "
                             f"{', '.join('train.' + s for s in SETTINGS)}")
        cast = SETTINGS[param]
        try:
            vals = tuple(cast(v) for v in values)
        except (TypeError, ValueError):
            raise SpaceError(f"{name}: candidates must be numbers, not {values}") from None
        bad = [v for v in vals if v <= 0 and param in ("lr", "batch_size", "epochs")
               or v < 0 or (param == "label_smoothing" and v >= 1)]
        if bad:
            raise SpaceError(f"{name}: {bad[0]} is out of range")
        return Choice(name, None, param, tuple(dict.fromkeys(vals)))
    if block not in graph:
        raise SpaceError(f"{name}: no block {block!r} in the network")
    if param in STRUCTURE:
        return _structure_choice(graph, name, block, param, values)
    spec = graph.block(block).spec
    try:
        p = spec.param(param)
    except KeyError:
        raise SpaceError(f"{name}: {block} ({spec.title}) has no parameter {param!r}; it has "
                         f"{', '.join(q.name for q in spec.params)}") from None
    if p.kind not in ("int", "choice", "bool", "pair", "float"):
        raise SpaceError(f"{name}: a {p.kind} parameter cannot hold candidates (int, float, choice, bool or a pair)")
    out = []
    for v in values:
        try:
            out.append(p.validate(v))
        except Exception as e:  # noqa: BLE001  the parameter's own message
            raise SpaceError(f"{name}: candidate {v!r}: {e}") from None
    uniq = []
    for v in out:
        if v not in uniq:
            uniq.append(v)
    return Choice(name, block, param, tuple(tuple(v) if isinstance(v, list) else v for v in uniq))


# choices of structure, on any block: whether it is there at all, and how many times it repeats in a row
STRUCTURE = ("present", "repeat")
MAX_REPEAT = 16


def _structure_choice(graph, name, block, param, values) -> Choice:
    """``BLOCK.present=true,false``: a block that keeps its input's shape (it is bypassed when absent) or an
    auxiliary head's branch; ``BLOCK.repeat=1,2,3``: a block that keeps its input's shape, repeated in a chain."""
    a = Analyzer(graph).run()
    rep = a.blocks.get(block)
    ins = graph.inputs(block)
    keeps = rep is not None and len(ins) == 1 and rep.out_shape is not None and \
        tuple(rep.in_shapes[0]) == tuple(rep.out_shape)
    if param == "present":
        try:
            vals = tuple(dict.fromkeys(_bool(v) for v in values))
        except ValueError:
            raise SpaceError(f"{name}: candidates are true and false") from None
        if not keeps and not _aux_branch(graph, a, block):
            raise SpaceError(f"{name}: only a block whose output has its input's shape (it is bypassed when "
                             "absent) or an auxiliary head's branch can be left out")
        return Choice(name, block, param, vals)
    if not keeps:
        raise SpaceError(f"{name}: only a block whose output has its input's shape can repeat in a chain")
    try:
        vals = tuple(dict.fromkeys(int(v) for v in values))
    except (TypeError, ValueError):
        raise SpaceError(f"{name}: candidates are counts (1, 2, 3)") from None
    if any(not 1 <= v <= MAX_REPEAT for v in vals):
        raise SpaceError(f"{name}: a count is 1 to {MAX_REPEAT}")
    return Choice(name, block, param, vals)


def _bool(v) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).lower() in ("true", "false", "1", "0"):
        return str(v).lower() in ("true", "1")
    raise ValueError(v)


def _aux_branch(graph, analysis, block) -> set:
    """The blocks that only lead to auxiliary outputs from ``block`` on (with it), or an empty set."""
    import networkx as nx
    main = set(analysis.outputs[:1])
    below = nx.descendants(graph.g, block) | {block}
    if main & below or not analysis.outputs[1:] or not below & set(analysis.outputs[1:]):
        return set()
    for b in below:  # nothing else feeds the branch below its head
        if b != block and any(u not in below for _, u in graph.inputs(b)):
            return set()
    return below


def _leave_out(g, block) -> None:
    a = Analyzer(g).run()
    branch = _aux_branch(g, a, block)
    if branch:
        for b in branch:
            g.remove_block(b)
        return
    (_, src), = g.inputs(block)
    consumers = g.consumers(block)
    g.remove_block(block)
    for v, port in consumers:
        g.connect(src, v, port, check_cycle=False)


def _repeat(g, block, times: int) -> None:
    from builder.core.graph import make_id
    b = g.block(block)
    consumers = g.consumers(block)
    for v, port in consumers:
        g.disconnect(block, v, port)
    last = block
    for i in range(2, times + 1):
        copy = g.add_block(b.type, dict(b.params), make_id(f"{block}_{i}", g), pos=(b.pos[0], b.pos[1] + 60 * i))
        g.connect(last, copy, check_cycle=False)
        last = copy
    for v, port in consumers:
        g.connect(last, v, port, check_cycle=False)


def choices(graph, extra=()) -> list:
    """The project's choices, then ``extra`` (``--choice`` texts; one for a name the project has replaces it)."""
    kept = (graph.meta.get("search") or {}).get("choices") or {}
    if not isinstance(kept, dict):
        raise SpaceError("meta.search.choices: must be an object of BLOCK.PARAM: [candidates]")
    named = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in kept.items()}
    for text in extra:
        name, vals = parse(text)
        named[name] = vals
    out = []
    for name, vals in named.items():
        if not isinstance(vals, list):
            raise SpaceError(f"meta.search.choices.{name}: must be a list of candidates")
        out.append(choice(graph, name, vals))
    return out


def with_choices(graph, picked: dict) -> tuple:
    """A copy of ``graph`` with the block parameters of ``picked`` ({name: value}) set, and the training settings
    picked ({setting: value}). A GraphEditError when a combination makes no valid block."""
    g = graph.copy()
    settings = {}
    later = []  # structure changes go last: parameters name the blocks as they are
    for name, value in picked.items():
        block, _, param = name.rpartition(".")
        if block == TRAIN and block not in graph:
            settings[param] = value
        elif param in STRUCTURE:
            later.append((block, param, value))
        else:
            g.set_params(block, {param: list(value) if isinstance(value, tuple) else value})
    for block, param, value in later:
        if block not in g:
            continue  # inside a branch another choice left out
        if param == "present" and not value:
            _leave_out(g, block)
        elif param == "repeat" and value > 1:
            _repeat(g, block, value)
    g.meta = {k: v for k, v in g.meta.items() if k != "search"}  # a candidate is one design
    return g, settings


def designs(space: list) -> int:
    """How many designs the block choices make (the training settings' candidates aside)."""
    return math.prod(len(c.values) for c in space if not c.trains)


def combinations(space: list, limit: int = EXACT, seed: int = 0):
    """Every combination of the block choices (at most ``limit``; beyond, ``limit`` sampled ones): dicts."""
    blocks = [c for c in space if not c.trains]
    if designs(space) <= limit:
        for combo in itertools.product(*(c.values for c in blocks)):
            yield dict(zip((c.name for c in blocks), combo))
        return
    rng = random.Random(seed)
    for _ in range(limit):
        yield {c.name: rng.choice(c.values) for c in blocks}


@dataclass
class Costs:
    combos: int           # combinations evaluated
    exact: bool           # all of them (else a sample)
    valid: int            # of which make a network without errors
    params: tuple         # (min, max) inference params over the valid ones
    macs: tuple
    cheapest: dict        # the combination with the fewest MACs
    designs: int = 0      # the combinations there are (all of them, evaluated or not)

    def describe(self) -> str:
        from builder.insight.report import human
        how = "all" if self.exact else "a sample of"
        return (f"{how} {self.combos:,} combinations ({self.valid:,} valid): params {human(self.params[0])}.."
                f"{human(self.params[1])}, MACs {human(self.macs[0])}..{human(self.macs[1])}")


def cost_range(graph, space: list, limit: int = EXACT) -> Costs:
    """Inference params and MACs, min..max over the combinations of the block choices (all of them up to
    ``limit``, else ``limit`` sampled ones)."""
    lo_p = lo_m = None
    hi_p = hi_m = 0
    n = valid = 0
    cheapest: dict = {}
    total = designs(space)
    for combo in combinations(space, limit):
        n += 1
        try:
            g, _ = with_choices(graph, combo)
        except (GraphEditError, ValueError):  # a combination no block takes (a ParamError is a ValueError)
            continue
        a = Analyzer(g).run()
        if not a.ok:
            continue
        valid += 1
        p, m = a.inference.params, a.inference.macs
        if lo_m is None or m < lo_m:
            cheapest = combo
        lo_p = p if lo_p is None else min(lo_p, p)
        lo_m = m if lo_m is None else min(lo_m, m)
        hi_p, hi_m = max(hi_p, p), max(hi_m, m)
    return Costs(n, total <= limit, valid, (lo_p or 0, hi_p), (lo_m or 0, hi_m), cheapest, total)


def kept(graph) -> dict:
    """The project's choices as stored: {name: [candidates]} (empty when it keeps none or they are unreadable)."""
    value = (graph.meta.get("search") or {}).get("choices") if isinstance(graph.meta.get("search"), dict) else None
    return dict(value) if isinstance(value, dict) else {}


def set_choice(graph, name: str, values) -> None:
    """Keep ``values`` as the candidates of ``name`` in the project (None or [] removes them): an undoable edit
    (checked first: a SpaceError names what is wrong)."""
    now = kept(graph)
    if values:
        c = choice(graph, name, values)
        now[name] = [list(v) if isinstance(v, tuple) else v for v in c.values]
    else:
        now.pop(name, None)
    search = {k: v for k, v in (graph.meta.get("search") or {}).items() if k != "choices"} \
        if isinstance(graph.meta.get("search"), dict) else {}
    if now:
        search["choices"] = now
    graph.set_meta("search", search or None)


def candidates_per_block(graph) -> dict:
    """{block id: the number of designs its choices hold} (the product of its parameters' candidates)."""
    out: dict = {}
    for name, values in kept(graph).items():
        block = name.rpartition(".")[0]
        if block in graph and isinstance(values, list):
            out[block] = out.get(block, 1) * len(values)
    return out
