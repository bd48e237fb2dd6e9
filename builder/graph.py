"""The diagram: a wrapper over ``networkx.MultiDiGraph`` with ordered input ports and change events.

Nodes carry a :class:`Block` (type id, validated parameters, label, position). Edges are keyed by the
destination port, so several wires may join the same two blocks and concat order is explicit.
Selection, colours and other view state never enter the model.
"""
from __future__ import annotations

import functools
import keyword
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field

import networkx as nx

from blocks import REGISTRY
from blocks.spec import ParamError, plain

from .errors import (CycleError, DuplicateIdError, GraphEditError, InvalidIdError, PortError,
                     UnknownBlockError, UnknownBlockTypeError)
from .events import Signal

_PART = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)$")
MAX_ID_LEN = 200


def freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


@dataclass
class Block:
    id: str
    type: str
    params: dict
    label: str = ""
    pos: tuple = (0.0, 0.0)
    group: dict | None = None  # set on blocks that came from expanding a composite: {"id", "type", "params"}
    key: tuple = field(default=(), repr=False)  # (type, frozen params): the analysis cache key

    def __post_init__(self):
        self.rekey()

    def rekey(self) -> None:
        self.key = (self.type, freeze(self.params))

    @property
    def spec(self):
        return REGISTRY.get(self.type)

    @property
    def name(self) -> str:
        return self.label or self.id


def check_id(block_id) -> str:
    """Block ids become module paths (``inception3a.branch2.0``), so each dotted part is an identifier or a
    number and no part is a Python keyword."""
    if not isinstance(block_id, str) or not block_id or len(block_id) > MAX_ID_LEN:
        raise InvalidIdError(f"block id {block_id!r} must be 1 to {MAX_ID_LEN} characters of text")
    parts = block_id.split(".")
    for part in parts:
        if not _PART.match(part) or keyword.iskeyword(part) or part.startswith("__"):
            raise InvalidIdError(f"block id {block_id!r}: each dotted part must be a name (letters, digits, _; "
                                 "not a Python keyword, not starting with __) or a number")
    if parts[0].isdigit():
        raise InvalidIdError(f"block id {block_id!r} must start with a name, not a number")
    return block_id


def make_id(name: str, taken, fallback: str = "block") -> str:
    """A valid, unused single-name id made from free text: unicode folded to ASCII, other characters to '_'."""
    text = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode()
    base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", text)).strip("_")[:MAX_ID_LEN - 8] or fallback
    if keyword.iskeyword(base):
        base += "_"
    if base[0].isdigit():
        base = f"{fallback}_{base}"
    cand, n = base, 2
    while cand in taken or _conflicts(cand, taken):
        cand, n = f"{base}_{n}", n + 1
    return check_id(cand)


def _conflicts(block_id: str, taken) -> bool:
    """True when one id would be the module path of the other's parent (``a`` and ``a.b``)."""
    if isinstance(taken, Graph):
        return block_id in taken._parents or any(p in taken.g for p in _prefixes(block_id))
    prefix = block_id + "."
    for other in taken:
        if other.startswith(prefix) or block_id.startswith(other + "."):
            return True
    return False


def _prefixes(block_id: str):
    parts = block_id.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def port_order(port: str):
    return (0, int(port[2:]), "") if port.startswith("in") and port[2:].isdigit() else (1, 0, port)


def _atomic(method):
    """A compound edit runs in one transaction: refused half-way, it leaves the graph exactly as it was."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.transaction():
            return method(self, *args, **kwargs)
    return run


class Graph:
    """The editable network. Every change emits a past-tense event and bumps ``structure_rev`` (wiring)
    or the block's key (parameters), which is what the analysis cache keys on."""

    def __init__(self, name: str = "untitled"):
        self.g = nx.MultiDiGraph()
        self.name = name
        self.meta: dict = {}
        self.structure_rev = 0
        self.block_added = Signal()      # (block_id)
        self.block_removed = Signal()    # (block_id)
        self.block_changed = Signal()    # (block_id)  parameters, label or type
        self.block_moved = Signal()      # (block_id)
        self.edge_added = Signal()       # (src, dst, port)
        self.edge_removed = Signal()     # (src, dst, port)
        self.changed = Signal()          # () after any change
        self.journal: list | None = None  # when a list, every edit appends (redo, undo) closures to it
        self._parents: dict = {}  # dotted-path prefix -> how many ids sit under it

    # ------------------------------------------------------------------ queries
    def __contains__(self, block_id) -> bool:
        return block_id in self.g

    def __iter__(self):
        return iter(self.g)

    def _index(self, block_id: str, delta: int) -> None:
        for p in _prefixes(block_id):
            n = self._parents.get(p, 0) + delta
            if n:
                self._parents[p] = n
            else:
                self._parents.pop(p, None)

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def block(self, block_id: str) -> Block:
        try:
            return self.g.nodes[block_id]["block"]
        except KeyError:
            raise UnknownBlockError(f"no block {block_id!r} in the graph") from None

    def blocks(self) -> list[Block]:
        return [d["block"] for _, d in self.g.nodes(data=True)]

    def ids(self) -> list[str]:
        return list(self.g.nodes)

    def edges(self) -> list[tuple[str, str, str]]:
        return [(u, v, k) for u, v, k in self.g.edges(keys=True)]

    def inputs(self, block_id: str) -> list[tuple[str, str]]:
        """[(port, source id)] in port order."""
        return sorted(((k, u) for u, _, k in self.g.in_edges(block_id, keys=True)), key=lambda e: port_order(e[0]))

    def consumers(self, block_id: str) -> list[tuple[str, str]]:
        return [(v, k) for _, v, k in self.g.out_edges(block_id, keys=True)]

    def source_of(self, block_id: str, port: str) -> str | None:
        for u, _, k in self.g.in_edges(block_id, keys=True):
            if k == port:
                return u
        return None

    def free_port(self, block_id: str) -> str | None:
        b = self.block(block_id)
        spec = b.spec
        used = {k for _, _, k in self.g.in_edges(block_id, keys=True)}
        if spec is None:  # a block of an unknown kind (kept so its error can be shown): one input 'x'
            return None if "x" in used else "x"
        if spec.variadic:
            idx = [int(p[2:]) for p in used if p.startswith("in") and p[2:].isdigit()]
            return f"in{max(idx) + 1 if idx else 0}"
        for p in spec.ports:
            if p not in used:
                return p
        return None

    def ports_of(self, block_id: str) -> list[str]:
        spec = self.block(block_id).spec
        if spec is None:
            return sorted({k for _, _, k in self.g.in_edges(block_id, keys=True)}, key=port_order)
        if spec.variadic:
            used = sorted({k for _, _, k in self.g.in_edges(block_id, keys=True)}, key=port_order)
            return used + [self.free_port(block_id)]
        return list(spec.ports)

    # ------------------------------------------------------------------ edits
    def _log(self, do, undo) -> None:
        if self.journal is not None:
            self.journal.append((do, undo))

    def record(self, fn):
        """Run ``fn(graph)`` and return the list of (redo, undo) steps it made: undo runs the undos in reverse,
        redo runs the redos in order. Compound edits (expand, paste, refactors) become one undo step; an edit
        that raises leaves the graph as it was."""
        with self.transaction() as steps:
            fn(self)
        return steps

    @contextmanager
    def transaction(self):
        """``with graph.transaction() as steps:`` every edit inside is all-or-nothing for every caller: if the
        block raises, the edits it made are undone in reverse before the exception goes on. ``steps`` receives
        the (redo, undo) pairs made (also added to an enclosing transaction's)."""
        outer, self.journal = self.journal, []
        steps = self.journal
        try:
            yield steps
        except BaseException:
            self.journal = None
            for _, undo in reversed(steps):  # leave the graph as it was
                undo()
            self.journal = outer
            raise
        self.journal = outer
        if outer is not None:
            outer.extend(steps)

    def add_block(self, type_id: str, params: dict | None = None, block_id: str | None = None,
                  label: str = "", pos=(0.0, 0.0), group: dict | None = None, strict: bool = True) -> str:
        spec = REGISTRY.get(type_id)
        if spec is None and strict:
            raise UnknownBlockTypeError(f"unknown block type {type_id!r}")
        if spec is not None:
            try:
                params = spec.validate_params(params)
            except ParamError as e:
                raise GraphEditError(f"{block_id or type_id}: {e}") from None
            type_id = spec.type_id  # legacy ids resolve to the current one
        else:
            params = dict(params or {})
        if block_id is None:
            block_id = make_id(label or type_id, self, fallback=type_id)
        else:
            check_id(block_id)
            if block_id in self.g:
                raise DuplicateIdError(f"a block with id {block_id!r} already exists")
            if _conflicts(block_id, self):
                raise InvalidIdError(f"block id {block_id!r} clashes with an existing id: one would be the "
                                     "module path of the other's parent")
        blk = Block(block_id, type_id, params, label if isinstance(label, str) else str(label),
                    _pos(pos), dict(group) if group else None)
        self.g.add_node(block_id, block=blk)
        self._index(block_id, 1)
        self.structure_rev += 1
        snap = _copy_block(blk)
        self._log(lambda: self._insert(_copy_block(snap)), lambda: self.remove_block(block_id))
        self.block_added.emit(block_id)
        self.changed.emit()
        return block_id

    def remove_block(self, block_id: str) -> dict:
        """Remove a block with its wires; returns what :meth:`restore_block` needs to put it back."""
        blk = self.block(block_id)
        record = {"block": _copy_block(blk),
                  "in": [(u, k) for u, _, k in self.g.in_edges(block_id, keys=True)],
                  "out": [(v, k) for _, v, k in self.g.out_edges(block_id, keys=True)]}
        for u, v, k in list(self.g.in_edges(block_id, keys=True)) + list(self.g.out_edges(block_id, keys=True)):
            self.disconnect(u, v, k)
        self.g.remove_node(block_id)
        self._index(block_id, -1)
        self.structure_rev += 1
        snap = _copy_block(blk)
        self._log(lambda: self.remove_block(block_id), lambda: self._insert(_copy_block(snap)))
        self.block_removed.emit(block_id)
        self.changed.emit()
        return record

    def _insert(self, blk: Block) -> None:
        """Put back a block exactly as it was (its parameters are already valid)."""
        self.g.add_node(blk.id, block=blk)
        self._index(blk.id, 1)
        self.structure_rev += 1
        snap = _copy_block(blk)
        self._log(lambda: self._insert(_copy_block(snap)), lambda: self.remove_block(blk.id))
        self.block_added.emit(blk.id)
        self.changed.emit()

    def restore_block(self, record: dict) -> None:
        b = record["block"]
        self.add_block(b.type, b.params, b.id, b.label, b.pos, b.group, strict=False)
        for u, k in record["in"]:
            self.connect(u, b.id, k, check_cycle=False)
        for v, k in record["out"]:
            self.connect(b.id, v, k, check_cycle=False)

    def connect(self, src: str, dst: str, port: str | None = None, check_cycle: bool = True) -> str:
        """Wire ``src``'s output to ``dst``'s input ``port`` (the next free one when None); returns the port."""
        s, d = self.block(src), self.block(dst)
        dspec = d.spec
        if s.spec is not None and s.spec.type_id == "output":
            raise PortError(f"{src!r} is an Output block: it has no output to connect")
        if port is None:
            port = self.free_port(dst)
            if port is None:
                raise PortError(f"every input of {dst!r} is already connected")
        if dspec is not None:
            if dspec.variadic:
                if not (port.startswith("in") and port[2:].isdigit()):
                    raise PortError(f"{dst!r} ({dspec.title}) has ports in0, in1, ...; not {port!r}")
            elif port not in dspec.ports:
                names = ", ".join(dspec.ports) or "none"
                raise PortError(f"{dst!r} ({dspec.title}) has no input port {port!r} (its inputs: {names})")
        if self.source_of(dst, port) is not None:
            raise PortError(f"input {port!r} of {dst!r} is already connected to {self.source_of(dst, port)!r}")
        if check_cycle and (src == dst or nx.has_path(self.g, dst, src)):
            raise CycleError(f"connecting {src!r} to {dst!r} would make a cycle")
        self.g.add_edge(src, dst, key=port)
        self.structure_rev += 1
        self._log(lambda: self.connect(src, dst, port, check_cycle=False), lambda: self.disconnect(src, dst, port))
        self.edge_added.emit(src, dst, port)
        self.changed.emit()
        return port

    def disconnect(self, src: str, dst: str, port: str) -> None:
        if not self.g.has_edge(src, dst, key=port):
            raise PortError(f"there is no wire from {src!r} to input {port!r} of {dst!r}")
        self.g.remove_edge(src, dst, key=port)
        self.structure_rev += 1
        self._log(lambda: self.disconnect(src, dst, port), lambda: self.connect(src, dst, port, check_cycle=False))
        self.edge_removed.emit(src, dst, port)
        self.changed.emit()

    def set_params(self, block_id: str, updates: dict) -> dict:
        """Validate and apply parameter changes; returns the previous values of the changed names."""
        blk = self.block(block_id)
        if blk.spec is None:
            raise UnknownBlockTypeError(f"{block_id!r} has unknown type {blk.type!r}")
        try:
            new = blk.spec.validate_params(updates, base=blk.params)
        except ParamError as e:
            raise GraphEditError(f"{block_id}: {e}") from None
        old = {k: blk.params.get(k) for k in updates}
        self._replace_params(block_id, new)
        return old

    def _replace_params(self, block_id: str, params: dict) -> None:
        blk = self.block(block_id)
        before, blk.params = blk.params, dict(params)
        blk.rekey()
        after = blk.params
        self._log(lambda: self._replace_params(block_id, after), lambda: self._replace_params(block_id, before))
        self.block_changed.emit(block_id)
        self.changed.emit()

    def set_label(self, block_id: str, label: str) -> str:
        blk = self.block(block_id)
        old, blk.label = blk.label, str(label)
        new = blk.label
        self._log(lambda: self.set_label(block_id, new), lambda: self.set_label(block_id, old))
        self.block_changed.emit(block_id)
        self.changed.emit()
        return old

    def move(self, block_id: str, pos) -> tuple:
        blk = self.block(block_id)
        old, blk.pos = blk.pos, _pos(pos)
        new = blk.pos
        self._log(lambda: self.move(block_id, new), lambda: self.move(block_id, old))
        self.block_moved.emit(block_id)
        self.changed.emit()
        return old

    def rename(self, old_id: str, new_id: str) -> None:
        """Change a block's id (its module path); wires follow."""
        if old_id == new_id:
            return
        rec = self.remove_block(old_id)
        rec["block"].id = new_id
        try:
            self.restore_block(rec)
        except GraphEditError:
            rec["block"].id = old_id
            self.restore_block(rec)
            raise

    def clear(self) -> None:
        for bid in list(self.g.nodes):
            self.remove_block(bid)

    # ------------------------------------------------------------------ composite blocks
    @_atomic
    def expand(self, block_id: str) -> list[str]:
        """Replace a composite block by its primitive blocks, ids prefixed with its own (``inception3a.branch1``),
        so compiled weights keep the same keys. Returns the new ids."""
        from .analysis import expand_composite
        blk = self.block(block_id)
        if blk.spec is None or not blk.spec.is_composite:
            raise GraphEditError(f"{block_id!r} is not a composite block")
        ins = self.inputs(block_id)
        in_shape = self._input_shape(block_id)
        if in_shape is None:
            raise GraphEditError(f"connect {block_id!r} to a working input before expanding it: its inside "
                                 "depends on the input's shape")
        sub = expand_composite(blk.type, blk.params, in_shape)
        rec = self.remove_block(block_id)
        group = {"id": block_id, "type": blk.type, "params": dict(blk.params), "label": blk.label}
        new_ids = []
        x0, y0 = blk.pos
        places = _sub_layout(sub)
        extra = max(p[1] for p in places.values()) if places else 0.0
        for other in self.blocks():  # make room: everything below the composite moves down
            if other.pos[1] > y0 + 1.0 and extra:
                self.move(other.id, (other.pos[0], other.pos[1] + extra))
        for local, type_id, params in sub.nodes:
            nid = f"{block_id}.{local}"
            dx, dy = places[local]
            self.add_block(type_id, plain(params), nid, pos=(x0 + dx, y0 + dy), group=group)
            new_ids.append(nid)
        src = ins[0][1] if ins else None
        for s, d, port in sub.edges:
            if s == "@in":
                if src is not None:
                    self.connect(src, f"{block_id}.{d}", port, check_cycle=False)
            else:
                self.connect(f"{block_id}.{s}", f"{block_id}.{d}", port, check_cycle=False)
        for v, k in rec["out"]:
            self.connect(f"{block_id}.{sub.output}", v, k, check_cycle=False)
        return new_ids

    @_atomic
    def collapse(self, group_id: str) -> str:
        """Put an expanded composite back together; refused when its inside was edited since."""
        from .analysis import expand_composite
        members = [b for b in self.blocks() if b.group and b.group.get("id") == group_id]
        if not members:
            raise GraphEditError(f"no expanded composite {group_id!r}")
        info = members[0].group
        ids = {b.id for b in members}
        entry = [(u, k) for bid in ids for u, _, k in self.g.in_edges(bid, keys=True) if u not in ids]
        sources = {u for u, _ in entry}
        if len(sources) > 1:
            raise GraphEditError(f"cannot collapse {group_id!r}: its blocks take input from several outside blocks")
        src = next(iter(sources), None)
        in_shape = self._shape_of(src) if src else None
        sub = expand_composite(info["type"], info["params"], in_shape)
        expected = {f"{group_id}.{loc}": (t, REGISTRY[t].validate_params(p)) for loc, t, p in sub.nodes}
        actual = {b.id: (b.type, b.params) for b in members}
        exp_edges = {(f"{group_id}.{s}" if s != "@in" else src, f"{group_id}.{d}", p) for s, d, p in sub.edges}
        act_edges = {(u, v, k) for v in ids for u, _, k in self.g.in_edges(v, keys=True)}
        if expected != actual or exp_edges != act_edges:
            raise GraphEditError(f"cannot collapse {group_id!r}: its inside was edited after it was expanded")
        out_id = f"{group_id}.{sub.output}"
        outs = [(v, k) for _, v, k in self.g.out_edges(out_id, keys=True) if v not in ids]
        leaks = [(u, v) for u in ids - {out_id} for _, v in self.g.out_edges(u) if v not in ids]
        if leaks:
            raise GraphEditError(f"cannot collapse {group_id!r}: {leaks[0][0]!r} feeds {leaks[0][1]!r} outside it")
        pos = min((b.pos for b in members), key=lambda p: p[1])
        for bid in ids:
            self.remove_block(bid)
        self.add_block(info["type"], info["params"], group_id, info.get("label", ""), pos)
        if src is not None:
            self.connect(src, group_id, "x", check_cycle=False)
        for v, k in outs:
            self.connect(group_id, v, k, check_cycle=False)
        return group_id

    @_atomic
    def group(self, ids, name: str = "Group", block_id: str | None = None) -> str:
        """Collapse a selection into a new composite block (a "group"): one input from outside, one output."""
        ids = [i for i in self.ids() if i in set(ids)]  # graph order
        chosen = set(ids)
        if not ids:
            raise GraphEditError("select the blocks to group")
        for bid in ids:
            b = self.block(bid)
            if b.type in ("input", "output"):
                raise GraphEditError(f"{bid} is an {b.type.capitalize()} block: a group cannot hold it")
        for bid in list(ids):  # a group holds primitive blocks: open composites inside the selection first
            b = self.block(bid)
            if b.spec is not None and b.spec.is_composite:
                ids.remove(bid)
                ids.extend(self.expand(bid))
        chosen = set(ids)
        ids = list(nx.topological_sort(self.g.subgraph(ids)))  # inner blocks in the order they run
        entry = {(u, v, k) for v in ids for u, _, k in self.g.in_edges(v, keys=True) if u not in chosen}
        sources = {u for u, _, _ in entry}
        if len(sources) != 1:
            raise GraphEditError("a group takes exactly one input from outside; this selection has "
                                 f"{len(sources)} ({', '.join(sorted(sources)) or 'none'})")
        exits = {(u, v, k) for u in ids for _, v, k in self.g.out_edges(u, keys=True) if v not in chosen}
        leaving = {u for u, _, _ in exits}
        sinks = [u for u in ids if not any(v in chosen for _, v in self.g.out_edges(u))]
        if len(leaving) > 1 or (not leaving and len(sinks) != 1):
            raise GraphEditError("a group gives one output; more than one block of this selection feeds blocks "
                                 "outside it")
        out_id = next(iter(leaving)) if leaving else sinks[0]
        src = next(iter(sources))
        sub = {"nodes": [[bid, self.block(bid).type, dict(self.block(bid).params)] for bid in ids],
               "edges": [["@in" if u == src else u, v, k] for v in ids for u, _, k in self.g.in_edges(v, keys=True)],
               "output": out_id}
        top = min((self.block(b).pos for b in ids), key=lambda p: (p[1], p[0]))
        new_id = block_id or make_id(name, self, fallback="group")
        for bid in ids:
            self.remove_block(bid)
        self.add_block("group", {"name": name, "graph": sub}, new_id, pos=top)
        self.connect(src, new_id, "x", check_cycle=False)
        for _, v, k in exits:
            self.connect(new_id, v, k, check_cycle=False)
        return new_id

    def _input_shape(self, block_id):
        ins = self.inputs(block_id)
        return self._shape_of(ins[0][1]) if ins else None

    def _shape_of(self, block_id):
        from .analysis import Analyzer
        r = Analyzer(self).run().blocks.get(block_id)
        return r.out_shape if r else None

    # ------------------------------------------------------------------ copying
    def copy(self) -> "Graph":
        new = Graph(self.name)
        new.meta = dict(self.meta)
        for b in self.blocks():
            new.add_block(b.type, b.params, b.id, b.label, b.pos, b.group, strict=False)
        for u, v, k in self.edges():
            new.connect(u, v, k, check_cycle=False)
        return new

    def signature(self) -> tuple:
        """Everything that defines the network (for equality checks in tests and undo)."""
        return (tuple(sorted((b.id, b.key, b.label, tuple(b.pos), freeze(b.group)) for b in self.blocks())),
                tuple(sorted(self.edges())))


def _sub_layout(sub, row: float = 110.0, col: float = 240.0) -> dict:
    """Offsets of a composite's inner blocks: one row per depth, branches side by side."""
    layer: dict = {}
    for local, _, _ in sub.nodes:
        srcs = [s for s, d, _ in sub.edges if d == local and s != "@in"]
        layer[local] = 1 + max((layer[s] for s in srcs), default=-1)
    rows: dict = {}
    for local, _, _ in sub.nodes:
        rows.setdefault(layer[local], []).append(local)
    out = {}
    for lv, items in rows.items():
        for i, local in enumerate(items):
            out[local] = ((i - (len(items) - 1) / 2) * col, lv * row)
    return out


def _pos(pos) -> tuple:
    try:
        x, y = float(pos[0]), float(pos[1])
    except (TypeError, ValueError, IndexError):
        raise GraphEditError(f"position {pos!r} is not a pair of numbers") from None
    if x != x or y != y or abs(x) > 1e9 or abs(y) > 1e9:
        raise GraphEditError(f"position {pos!r} is out of range")
    return (x, y)


def _copy_block(b: Block) -> Block:
    return Block(b.id, b.type, dict(b.params), b.label, b.pos, dict(b.group) if b.group else None)
