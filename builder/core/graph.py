"""The diagram: a wrapper over ``networkx.MultiDiGraph`` with ordered input ports and change events.

Nodes carry a :class:`Block` (type id, validated parameters, label, position). Edges are keyed by the
destination port, so several wires may join the same two blocks and concat order is explicit.
Selection, colours and other view state never enter the model.
"""
from __future__ import annotations

import keyword
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field

import networkx as nx

from blocks import REGISTRY
from blocks.names import (TORCH_ATTRIBUTES, clean_text, free_part, part_problem, renamed_for_torch,  # noqa: F401
                          torch_name_clash)
from blocks.spec import ParamError

from .errors import (CycleError, DuplicateIdError, GraphEditError, InvalidIdError, PortError,
                     UnknownBlockError, UnknownBlockTypeError)
from .events import Signal

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
        problem = part_problem(part)
        if problem:
            raise InvalidIdError(f"block id {block_id!r}: {problem}")
    if parts[0].isdigit():
        raise InvalidIdError(f"block id {block_id!r} must start with a name, not a number")
    return block_id


def make_id(name: str, taken, fallback: str = "block") -> str:
    """A valid, unused single-name id made from free text: unicode folded to ASCII, other characters to '_'."""
    text = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode()
    base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", text)).strip("_")[:MAX_ID_LEN - 8] or fallback
    if keyword.iskeyword(base) or torch_name_clash(base):
        base = free_part(base)
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
    n = _port_number(port)
    return (0, n, "") if n is not None else (1, 0, port)


class Graph:
    """The editable network. Every change emits a past-tense event and bumps ``structure_rev`` (wiring)
    or the block's key (parameters), which is what the analysis cache keys on."""

    def __init__(self, name: str = "untitled"):
        self.g = nx.MultiDiGraph()
        self.name = name
        self.meta: dict = {}
        self.structure_rev = 0
        self.rekeyed: list = []  # the ids of the blocks whose parameters changed, in order (the analysis reads on)
        self.rewired: list = []  # the ids of the blocks added, removed, or whose inputs were wired or cut, in order
        self.block_added = Signal()      # (block_id)
        self.block_removed = Signal()    # (block_id)
        self.block_changed = Signal()    # (block_id)  parameters, label or type
        self.block_moved = Signal()      # (block_id)
        self.edge_added = Signal()       # (src, dst, port)
        self.edge_removed = Signal()     # (src, dst, port)
        self.changed = Signal()          # () after any change
        self.direction_changed = Signal()  # () the diagram's reading direction (meta "direction")
        self.journal: list | None = None  # when a list, every edit appends (redo, undo) closures to it
        self._parents: dict = {}  # dotted-path prefix -> how many ids sit under it
        self._wired: dict = {}    # block id -> {input port: source id}: port lookups are O(1) on wide blocks
        self._top: dict = {}      # block id -> highest numbered port in use (None: recount on next ask)

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
        return sorted(((k, u) for k, u in self._ports(block_id).items()), key=lambda e: port_order(e[0]))

    def _ports(self, block_id: str) -> dict:
        try:
            return self._wired[block_id]
        except KeyError:
            raise UnknownBlockError(f"no block {block_id!r} in the graph") from None

    def consumers(self, block_id: str) -> list[tuple[str, str]]:
        return [(v, k) for _, v, k in self.g.out_edges(block_id, keys=True)]

    def source_of(self, block_id: str, port: str) -> str | None:
        return self._ports(block_id).get(port)

    def _top_port(self, block_id: str) -> int:
        top = self._top.get(block_id, -1)
        if top is None:
            top = max((n for n in map(_port_number, self._ports(block_id)) if n is not None), default=-1)
            self._top[block_id] = top
        return top

    def free_port(self, block_id: str) -> str | None:
        b = self.block(block_id)
        spec = b.spec
        used = self._ports(block_id)
        if spec is None:  # a block of an unknown kind (kept so its error can be shown): one input 'x'
            return None if "x" in used else "x"
        if spec.variadic:
            return f"in{self._top_port(block_id) + 1}"
        for p in spec.ports:
            if p not in used:
                return p
        return None

    def ports_of(self, block_id: str) -> list[str]:
        spec = self.block(block_id).spec
        if spec is None:
            return sorted(self._ports(block_id), key=port_order)
        if spec.variadic:
            used = sorted(self._ports(block_id), key=port_order)
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
        blk = Block(block_id, type_id, params, clean_text(label if isinstance(label, str) else str(label)),
                    _pos(pos), dict(group) if group else None)
        self.g.add_node(block_id, block=blk)
        self._wired[block_id] = {}
        self._index(block_id, 1)
        self.structure_rev += 1
        self.rewired.append(block_id)
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
        del self._wired[block_id]
        self._top.pop(block_id, None)
        self._index(block_id, -1)
        self.structure_rev += 1
        self.rewired.append(block_id)
        snap = _copy_block(blk)
        self._log(lambda: self.remove_block(block_id), lambda: self._insert(_copy_block(snap)))
        self.block_removed.emit(block_id)
        self.changed.emit()
        return record

    def _insert(self, blk: Block) -> None:
        """Put back a block exactly as it was (its parameters are already valid)."""
        self.g.add_node(blk.id, block=blk)
        self._wired[blk.id] = {}
        self._index(blk.id, 1)
        self.structure_rev += 1
        self.rewired.append(blk.id)
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
                if _port_number(port) is None:
                    raise PortError(f"{dst!r} ({dspec.title}) has ports in0, in1, ...; not {port!r}")
            elif port not in dspec.ports:
                names = ", ".join(dspec.ports) or "none"
                raise PortError(f"{dst!r} ({dspec.title}) has no input port {port!r} (its inputs: {names})")
        if self.source_of(dst, port) is not None:
            raise PortError(f"input {port!r} of {dst!r} is already connected to {self.source_of(dst, port)!r}")
        if check_cycle and (src == dst or nx.has_path(self.g, dst, src)):
            raise CycleError(f"connecting {src!r} to {dst!r} would make a cycle")
        self.g.add_edge(src, dst, key=port)
        self._wired[dst][port] = src
        n = _port_number(port)
        if n is not None and self._top.get(dst, -1) is not None and n > self._top.get(dst, -1):
            self._top[dst] = n
        self.structure_rev += 1
        self.rewired.append(dst)
        self._log(lambda: self.connect(src, dst, port, check_cycle=False), lambda: self.disconnect(src, dst, port))
        self.edge_added.emit(src, dst, port)
        self.changed.emit()
        return port

    def disconnect(self, src: str, dst: str, port: str) -> None:
        if not self.g.has_edge(src, dst, key=port):
            raise PortError(f"there is no wire from {src!r} to input {port!r} of {dst!r}")
        self.g.remove_edge(src, dst, key=port)
        del self._wired[dst][port]
        if _port_number(port) is not None and _port_number(port) == self._top.get(dst):
            self._top[dst] = None  # the highest went: counted again when a free port is asked for
        self.structure_rev += 1
        self.rewired.append(dst)
        self._log(lambda: self.disconnect(src, dst, port), lambda: self.connect(src, dst, port, check_cycle=False))
        self.edge_removed.emit(src, dst, port)
        self.changed.emit()

    def set_params(self, block_id: str, updates: dict) -> dict:
        """Validate and apply parameter changes; returns the previous values of the changed names."""
        blk = self.block(block_id)
        if blk.spec is None:
            raise UnknownBlockTypeError(f"{block_id!r} has unknown type {blk.type!r}")
        try:
            if blk.spec.implies is not None and isinstance(updates, dict):
                updates = blk.spec.implies(blk.params, updates)
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
        self.rekeyed.append(block_id)
        after = blk.params
        self._log(lambda: self._replace_params(block_id, after), lambda: self._replace_params(block_id, before))
        self.block_changed.emit(block_id)
        self.changed.emit()

    def set_label(self, block_id: str, label: str) -> str:
        blk = self.block(block_id)
        old, blk.label = blk.label, clean_text(str(label))
        new = blk.label
        self._log(lambda: self.set_label(block_id, new), lambda: self.set_label(block_id, old))
        self.block_changed.emit(block_id)
        self.changed.emit()
        return old

    def frozen(self) -> list[str]:
        """Blocks whose parameters training leaves as they are (fine-tuning), kept in ``meta["frozen"]``."""
        value = self.meta.get("frozen")
        return [b for b in value if isinstance(b, str) and b in self.g] if isinstance(value, list) else []

    def set_frozen(self, block_id: str, frozen: bool) -> bool:
        """Freeze or unfreeze a block for training (an undoable edit); returns what it was."""
        self.block(block_id)
        current = set(self.frozen())
        old = block_id in current
        if old == bool(frozen):
            return old
        (current.add if frozen else current.discard)(block_id)
        self.meta = {k: v for k, v in self.meta.items() if k != "frozen"}
        if current:
            self.meta["frozen"] = sorted(current)
        self._log(lambda: self.set_frozen(block_id, frozen), lambda: self.set_frozen(block_id, old))
        self.block_changed.emit(block_id)
        self.changed.emit()
        return old

    @property
    def direction(self) -> str:
        """How the diagram reads: "TB" (top to bottom, the default) or "LR" (left to right)."""
        return "LR" if self.meta.get("direction") == "LR" else "TB"

    def set_direction(self, direction: str) -> str:
        """Change the reading direction (an undoable edit); returns the old one."""
        if direction not in ("TB", "LR"):
            raise GraphEditError(f"direction must be TB or LR, not {direction!r}")
        old = self.direction
        if old == direction:
            return old
        self.meta = {k: v for k, v in self.meta.items() if k != "direction"}
        if direction == "LR":
            self.meta["direction"] = "LR"
        self._log(lambda: self.set_direction(direction), lambda: self.set_direction(old))
        self.direction_changed.emit()
        self.changed.emit()
        return old

    def set_meta(self, key: str, value) -> object:
        """Set one entry of the project's meta (None removes it) as an undoable edit; returns the old value."""
        old = self.meta.get(key)
        if old == value:
            return old
        self.meta = {k: v for k, v in self.meta.items() if k != key}
        if value is not None:
            self.meta[key] = value
        self._log(lambda: self.set_meta(key, value), lambda: self.set_meta(key, old))
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
        self.block(old_id)
        check_id(new_id)  # refused before anything changes: no block removed and put back, no events
        if new_id in self.g:
            raise DuplicateIdError(f"a block with id {new_id!r} already exists")
        was_frozen = old_id in self.frozen()
        rec = self.remove_block(old_id)
        rec["block"].id = new_id
        try:
            self.restore_block(rec)
        except GraphEditError:
            rec["block"].id = old_id
            self.restore_block(rec)
            raise
        if was_frozen:  # the choice follows the block
            self.set_frozen(new_id, True)

    def clear(self) -> None:
        for bid in list(self.g.nodes):
            self.remove_block(bid)

    # ------------------------------------------------------------------ copying
    def copy(self, order=None) -> "Graph":
        """A copy; ``order``: the block ids in the order the copy lists them (the order a network runs its
        blocks in, where the wiring leaves a choice)."""
        new = Graph(self.name)
        new.meta = dict(self.meta)
        for b in (self.blocks() if order is None else [self.block(i) for i in order]):
            new.add_block(b.type, b.params, b.id, b.label, b.pos, b.group, strict=False)
        for u, v, k in self.edges():
            new.connect(u, v, k, check_cycle=False)
        return new

    def signature(self) -> tuple:
        """Everything that defines the network (for equality checks in tests and undo)."""
        return (tuple(sorted((b.id, b.key, b.label, tuple(b.pos), freeze(b.group)) for b in self.blocks())),
                tuple(sorted(self.edges())))


def _port_number(port: str) -> int | None:
    """3 for 'in3'; None for named ports."""
    digits = port[2:]
    return int(digits) if port.startswith("in") and digits.isascii() and digits.isdigit() else None


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
