"""Block kinds: parameter schemas, ports and the pure rules every kind provides.

A block kind is described once, by a :class:`BlockSpec` in the registry, keyed by a stable snake_case type id.
The rules are pure functions over integers (shapes are tuples without the batch dimension), so analysis never
needs torch; only ``build`` touches torch, and it imports it lazily.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .names import clean_text, part_problem

Shape = tuple  # (C, H, W) or (F,): no batch dimension
IN = "@in"  # inside a composite: the id of the composite's own input


class BlockError(Exception):
    """A rule found that a block cannot work with its inputs or parameters. The message is for people."""

    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.code = code


class ParamError(ValueError):
    """A parameter value is impossible; the message names the parameter and the allowed values."""


# Upper bounds that keep absurd designs from allocating anything (a kernel of 10^9, a million channels).
MAX_CHANNELS = 65536
MAX_SPATIAL = 16384
MAX_KERNEL = 1024


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int", "float", "bool", "choice", "pair", "padding", "str", "subgraph", "data"
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    label: str = ""
    code: str = ""  # its name as a constructor argument in exported code, where torchvision's differs
    zero: str = ""  # what 0 means, where it means something else than the number ("from the input", "none")
    # "data" (a structured value a person does not type: a captured graph): check(value, name) -> the value
    # normalised, or ParamError; describe(value) -> the inspector's line about it
    check: Callable | None = None
    describe: Callable | None = None

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")

    @property
    def arg(self) -> str:
        return self.code or self.name

    def validate(self, value: Any) -> Any:
        """Return the normalised value or raise ParamError naming this parameter."""
        k = self.kind
        try:
            if k == "int":
                v = _as_int(value)
                self._check_range(v)
                return v
            if k == "float":
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    raise ValueError
                v = value if isinstance(value, SymFloat) else float(value)  # a composite's, kept symbolic
                if not math.isfinite(v):
                    raise ValueError
                self._check_range(v)
                return v
            if k == "bool":
                if isinstance(value, bool):
                    return value
                if value in (0, 1):
                    return bool(value)
                if isinstance(value, str) and value.lower() in ("true", "false"):
                    return value.lower() == "true"
                raise ValueError
            if k == "choice":
                if value not in self.choices:
                    raise ParamError(f"{self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
                return value
            if k == "str":
                if not isinstance(value, str) or len(value) > 200:
                    raise ValueError
                return clean_text(value)  # a lone surrogate could never be saved
            if k == "pair":
                return self._pair(value)
            if k == "padding":
                if isinstance(value, str):
                    if value in ("same", "valid"):
                        return value
                    raise ParamError(f"{self.name}: {value!r} is not 'same', 'valid' or a number")
                return self._pair(value)
            if k == "subgraph":
                return validate_subgraph(value, self.name)
            if k == "data":
                return self.check(value, self.name)
        except ParamError:
            raise
        except (ValueError, TypeError, OverflowError):
            pass
        raise ParamError(f"{self.name}: {value!r} is not a valid {self._describe()}")

    def _pair(self, value) -> list[int]:
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            v = _as_int(value)
            value = [v, v]
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError
        out = [_as_int(value[0]), _as_int(value[1])]
        for x in out:
            self._check_range(x)
        return out

    def _check_range(self, v) -> None:
        if self.min is not None and v < self.min:
            raise ParamError(f"{self.name}: {v} is below the minimum {_fmt(self.min)}")
        if self.max is not None and v > self.max:
            raise ParamError(f"{self.name}: {v} is above the maximum {_fmt(self.max)}")

    def _describe(self) -> str:
        rng = ""
        if self.min is not None or self.max is not None:
            rng = f" in [{_fmt(self.min) if self.min is not None else '-inf'}, " \
                  f"{_fmt(self.max) if self.max is not None else 'inf'}]"
        return {
            "int": "integer", "float": "number", "bool": "boolean", "str": "text",
            "pair": "integer or pair of integers", "padding": "padding ('same', 'valid', n or [h, w])",
        }.get(self.kind, self.kind) + rng


def _fmt(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _as_int(value) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    raise ValueError


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int


class Sym(str):
    """A constructor argument written as a name (``in_channels``, ``num_classes``) in exported source."""


@dataclass(frozen=True)
class TorchCall:
    """How a primitive kind becomes torch: one constructor and its arguments, from which both the module the
    compiler builds and the source text the exporter writes are made (so the two cannot drift).

    ``cls`` is ``nn.Name`` (from torch.nn) or the name of a class in :mod:`blocks.modules`; ``args(p, in_ch, out)``
    returns ``[(keyword or None, value, default)]``: positional arguments have no keyword, and a keyword argument
    equal to its default is left out of the source. ``in_ch``/``out`` are numbers, or :class:`Sym` names when the
    exporter writes a class whose widths are constructor arguments (``out`` is None unless the exporter sets it)."""
    cls: str
    args: Callable = lambda p, in_ch, out: []

    def arguments(self, p, in_ch, out=None) -> list:
        return self.args(p, in_ch, out)

    def module(self, p, in_ch):
        """The nn.Module (imports torch)."""
        if self.cls.startswith("nn."):
            from torch import nn
            factory = getattr(nn, self.cls[3:])
        else:
            from . import modules
            factory = getattr(modules, self.cls)
        pos, kw = [], {}
        for name, value, _default in self.arguments(p, in_ch):
            value = plain(value)
            value = tuple(value) if isinstance(value, list) else value
            if name is None:
                pos.append(value)
            else:
                kw[name] = value
        return factory(*pos, **kw)

    def source(self, p, in_ch, out=None) -> str:
        """``nn.Name(...)`` as readable source: numbers and choices through repr(), symbols as names."""
        parts = []
        for name, value, default in self.arguments(p, in_ch, out):
            if name is not None and value == default and not _symbolic(value):
                continue
            text = literal(value)
            parts.append(text if name is None else f"{name}={text}")
        return f"{self.cls}({', '.join(parts)})"


class SymInt(int):
    """An integer that remembers where it came from: a composite's parameter (``ch5x5red``), its input channels
    (``in_channels``), or an expression of them (``planes * 4``, ``ch1x1 + ch3x3``).

    Composites are expanded with their integer parameters as SymInts. Everything that computes with the values
    (shape and cost rules, analysis, the compiler) sees plain integers; the exporter reads ``expr`` and writes
    exactly the parameter each width came from, so an exported class is built from its arguments, never from a
    guess over equal values. Arithmetic with other integers keeps the expression; anything else (a float, a
    comparison) gives plain values, which the exporter writes as numbers."""

    PREC = {"+": 1, "-": 1, "*": 2, "//": 2}

    def __new__(cls, value: int, expr, prec: int = 3):
        obj = super().__new__(cls, value)
        obj._tree, obj.prec, obj._text = expr, prec, None  # a name, or (op, left, right): rendered on demand
        return obj

    def __reduce__(self):  # copies and pickles are plain numbers
        return (int, (int(self),))

    @property
    def expr(self) -> str:
        if self._text is None:
            t = self._tree
            if isinstance(t, str):
                self._text = t
            else:
                op, a, b = t
                prec = self.PREC[op]

                def text(x, right):
                    if not isinstance(x, SymInt):
                        return str(int(x))
                    low = x.prec <= prec if right else x.prec < prec  # parentheses only where needed
                    return f"({x.expr})" if low else x.expr
                self._text = f"{text(a, False)} {op} {text(b, True)}"
        return self._text

    @property
    def names(self) -> frozenset:
        """The parameters the expression is made of."""
        t = self._tree
        if isinstance(t, str):
            return frozenset((t,))
        return frozenset().union(*(x.names for x in t[1:] if isinstance(x, SymInt)))

    def _combine(self, other, op, value, reverse=False):
        a, b = (other, self) if reverse else (self, other)
        return SymInt(value, (op, a, b), self.PREC[op])


class SymFloat(float):
    """A number that remembers the composite parameter it is (``stochastic_depth_prob``, ``bn_eps``): the
    exporter writes the name, so one class serves instances that differ only in it. Arithmetic gives plain
    floats."""

    def __new__(cls, value: float, name: str):
        obj = super().__new__(cls, value)
        obj.expr = name
        return obj

    def __reduce__(self):
        return (float, (float(self),))

    @property
    def names(self) -> frozenset:
        return frozenset((self.expr,))


def _sym_op(op: str, fn, reverse: bool = False):
    """An arithmetic operator of SymInt: the value as int computes it, the expression kept."""
    def method(self, other):
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        a, b = (int(other), int(self)) if reverse else (int(self), int(other))
        return self._combine(other, op, fn(a, b), reverse)
    return method


for _name, _op, _fn, _rev in (("__add__", "+", int.__add__, False), ("__radd__", "+", int.__add__, True),
                              ("__sub__", "-", int.__sub__, False), ("__mul__", "*", int.__mul__, False),
                              ("__rmul__", "*", int.__mul__, True), ("__floordiv__", "//", int.__floordiv__, False)):
    setattr(SymInt, _name, _sym_op(_op, _fn, _rev))
del _name, _op, _fn, _rev


def plain(value):
    """``value`` with every SymInt replaced by its number (for blocks placed on a canvas, files, torch)."""
    if isinstance(value, SymInt):
        return int(value)
    if isinstance(value, SymFloat):
        return float(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _symbolic(v) -> bool:
    if isinstance(v, (Sym, SymInt, SymFloat)):
        return True
    return isinstance(v, (list, tuple)) and any(isinstance(x, SymInt) for x in v)


class Sizes(tuple):
    """Sizes written as a whole tuple in source (``(15, 15)``, ``(1,)``), never as one number like a square
    kernel pair."""


def literal(v) -> str:
    """Source text of an argument value: a Sym or SymInt as its name or expression, a square pair as one number,
    lists as tuples, :class:`Sizes` always as a tuple."""
    if isinstance(v, Sizes):
        return "(" + ", ".join(repr(int(x)) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, Sym):
        return str(v)
    if isinstance(v, (SymInt, SymFloat)):
        return v.expr
    if isinstance(v, (list, tuple)):
        if len(v) == 2 and v[0] == v[1] and all(isinstance(x, int) for x in v) and \
                not any(isinstance(x, SymInt) for x in v):
            return repr(int(v[0]))
        if len(v) == 2 and isinstance(v[0], SymInt) and isinstance(v[1], SymInt) and v[0].expr == v[1].expr:
            return v[0].expr
        return "(" + ", ".join(literal(x) for x in v) + ")"
    return repr(v)


@dataclass(frozen=True)
class Upgrade:
    """A kind that a newer design replaces with the same shapes: the Inception v1 module by Inception-v3's A
    (figure 5). ``params(p)`` gives the new kind's parameters; ``principle`` is the design principle it applies."""
    kind: str
    params: Callable
    title: str
    why: str
    principle: int = 3


@dataclass
class BlockSpec:
    """One block kind.

    ``shape(p, ins) -> out`` raises :class:`BlockError`; ``cost(p, ins, out) -> Cost``;
    ``build(p, ins) -> nn.Module`` (torch imported lazily). ``ports`` are the named inputs; a variadic kind
    (concat, add) takes any number of inputs in port order. Composite kinds have ``expand`` instead of
    ``shape``/``cost``/``build``: it returns a :class:`blocks.composite.Subgraph` of primitive blocks.
    """

    type_id: str
    title: str
    category: str
    params: tuple[Param, ...] = ()
    ports: tuple[str, ...] = ("x",)
    variadic: bool = False
    min_inputs: int = 1
    shape: Callable | None = None
    cost: Callable | None = None
    build: Callable | None = None
    expand: Callable | None = None
    description: str = ""
    summary: Callable | None = None  # p -> short text for the canvas ("64 3x3/2")
    short: str = ""            # its name in a paper figure ("Conv", "Bottleneck"); default: the title, less a
    #                            trailing parenthesis
    glyph: str = ""            # an element-wise merge's operator: a figure draws it as that sign in a circle
    watches: bool = False      # returns its input unchanged, as a module: what a tool inserts after a block to
    #                            watch its output (explanations, following an image through the network)
    legacy_ids: tuple[str, ...] = field(default=())
    in_palette: bool = True    # False: made by a tool, not placed by hand (a captured module)
    # (p, class name) -> the source of a class the kind's module is (a captured module's operators); the exporter
    # writes it into the file and the constructor is ``ClassName()``
    defines: Callable | None = None
    class_label: Callable | None = None  # p -> the base of that class's name
    captures: bool = False     # what an importer makes of a module no kind stands for (its exact operators)
    # -- how the kind behaves in generated code; everything a generator, the advisor or a report needs to know
    torch: TorchCall | None = None  # primitives with a module: the constructor (build and export both use it)
    forward: Callable | None = None  # merges: (argument variables) -> the expression (torch.cat, a sum)
    inplace: bool = False      # has an "inplace" parameter: may overwrite its input (only where that is safe)
    alias: str = "none"        # "view": the output may share its input's storage (Flatten, Dropout in eval)
    saves_output: bool = False  # autograd keeps the output for backward (ReLU, Tanh, Sigmoid): never overwrite it
    width_param: str | None = None  # the parameter that sets the output width (out_channels, out_features)
    keeps_width: bool = False  # elementwise or per-channel: the output width is the input's (a class count
    #                            passes through it to the output)
    in_table: bool = True      # a row of its own in the paper's per-layer table (activations are not)
    # (p, input channels, input shapes, output shape) -> output channels, written with the inputs' channels so
    # that symbolic widths (SymInt: ``in_channels``, ``ch1x1 + ch3x3``) stay symbolic in exported classes; the
    # default: the width parameter, else the input's (``keeps_width``), else the output shape's number
    channel_rule: Callable | None = None
    class_name: str = ""       # composites: the class exported code defines for it (torchvision's name)
    # (p, input shapes, input fields) -> the output's receptive field (blocks/fields.py); None: a merge sees
    # what any input sees, any other kind what its input sees (elementwise and per-position kinds)
    receptive: Callable | None = None
    # (p, input shapes, block id) -> cells of its row in a paper-style table (blocks/tables.py): "type" and
    # any of "patch size/stride", "#1x1", ...; None: a row named after the kind's title
    report: Callable | None = None
    weight_layers: int = 0     # layers with weights it adds to a table's depth column (convolution, linear: 1)
    advisor_role: str = ""     # its part in the Inception-v3 design principles: "convolution" (factorisable,
    #                            a 1x1 reduction), "pool" (a grid reduction when strided) or "reduction" (the
    #                            efficient grid reduction that replaces a conv-then-pool pair)
    # the newer kind the advisor proposes in its place, keeping every shape (Upgrade), if any
    upgrade: object = None
    # (current params, updates) -> the updates with what they imply (an Output made aux takes the paper's 0.3
    # loss weight unless one is given); None: updates as given
    implies: Callable | None = None
    # what it is imported from (blocks/imports.py): PyTorch modules and functions, ONNX operators and patterns
    from_torch: object = None  # FromTorch
    from_onnx: tuple = ()      # (FromOnnx, ...)

    def channels(self, p: dict, in_chs: list, in_shapes, out_shape):
        """The output channels of a block of this kind (symbolic where its inputs' are)."""
        if self.channel_rule is not None:
            return self.channel_rule(p, in_chs, in_shapes, out_shape)
        if self.width_param:
            return p[self.width_param]
        if self.keeps_width and in_chs:
            return in_chs[0]
        return out_shape[0] if out_shape else None

    def __post_init__(self):
        if self.build is None and self.defines is not None:
            self.build = lambda p, ins: _defined_module(self, p)
        if self.build is None and self.torch is not None:
            call = self.torch
            self.build = lambda p, ins: call.module(p, ins[0][0] if ins and ins[0] else None)

    @property
    def figure_name(self) -> str:
        return self.short or re.sub(r"\s*\([^)]*\)\s*$", "", self.title)

    @property
    def is_composite(self) -> bool:
        return self.expand is not None

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict:
        return {p.name: _copy(p.default) for p in self.params}

    def validate_params(self, values: dict | None, base: dict | None = None) -> dict:
        """Merge ``values`` over ``base`` (or the defaults) and validate every one; unknown names are refused."""
        if values is not None and not isinstance(values, dict):
            raise ParamError(f"parameters of {self.type_id} must be a mapping, not {type(values).__name__}")
        out = dict(base) if base is not None else self.defaults()
        known = {p.name: p for p in self.params}
        for name, value in (values or {}).items():
            if name not in known:
                raise ParamError(f"{self.type_id} has no parameter {name!r}"
                                 f" (it has: {', '.join(known) or 'none'})")
            out[name] = known[name].validate(value)
        return out

    def input_ports(self, n_connected: int = 0) -> list[str]:
        if self.variadic:
            return [f"in{i}" for i in range(max(n_connected + 1, self.min_inputs))]
        return list(self.ports)


def _defined_module(spec: BlockSpec, p: dict):
    """An instance of the class a kind's ``defines`` writes (the same source the exporter writes)."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    namespace = {"torch": torch, "nn": nn, "F": F, "__name__": "block_builder_defined"}
    exec(compile(spec.defines(p, "Defined"), "<block-builder defined>", "exec"), namespace)  # validated data
    return namespace["Defined"]()


def _copy(v):
    """A default's own copy for each block (a list of sizes, a captured program: never shared)."""
    if isinstance(v, (list, dict)):
        import copy
        return copy.deepcopy(v)
    return v


class Registry:
    def __init__(self):
        self._specs: dict[str, BlockSpec] = {}
        self._legacy: dict[str, str] = {}

    def register(self, spec: BlockSpec) -> BlockSpec:
        if spec.type_id in self._specs or spec.type_id in self._legacy:
            raise ValueError(f"block type {spec.type_id!r} is already registered")
        self._specs[spec.type_id] = spec
        for old in spec.legacy_ids:
            self._legacy[old] = spec.type_id
        return spec

    def watch_kind(self) -> str:
        """The kind a tool inserts after a block to watch its output (its spec says ``watches``)."""
        return next(s.type_id for s in self if s.watches)

    def capture_kind(self) -> str:
        """The kind an importer makes of a module no other kind stands for (its spec says ``captures``)."""
        return next(s.type_id for s in self if s.captures)

    def get(self, type_id: str) -> BlockSpec | None:
        spec = self._specs.get(type_id)
        if spec is None and type_id in self._legacy:
            spec = self._specs[self._legacy[type_id]]
        return spec

    def __getitem__(self, type_id: str) -> BlockSpec:
        spec = self.get(type_id)
        if spec is None:
            raise KeyError(f"unknown block type {type_id!r}")
        return spec

    def __contains__(self, type_id: str) -> bool:
        return self.get(type_id) is not None

    def __iter__(self):
        return iter(self._specs.values())

    def categories(self) -> dict[str, list[BlockSpec]]:
        out: dict[str, list[BlockSpec]] = {}
        for s in self._specs.values():
            out.setdefault(s.category, []).append(s)
        return out


REGISTRY = Registry()


def register(spec: BlockSpec) -> BlockSpec:
    return REGISTRY.register(spec)


_SOURCE = re.compile("\x00([0-9]+)\x00")


def source_ref(i: int) -> str:
    """A placeholder for "the block that feeds input i" in a rule's message (see :func:`fill_sources`)."""
    return f"\x00{i}\x00"


def fill_sources(message: str, names) -> tuple[str, tuple]:
    """Replace a message's source placeholders by ``names`` (the ids feeding the block, in port order); returns
    the message and the ids it names."""
    named = []

    def sub(m):
        i = int(m.group(1))
        name = names[i] if names is not None and i < len(names) else f"input {i}"
        named.append(name)
        return str(name)
    return _SOURCE.sub(sub, message), tuple(dict.fromkeys(named))


def fmt_shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "?"


MAX_GROUP_BLOCKS = 5000


def validate_subgraph(value, name: str = "graph") -> dict:
    """A user-defined composite's inside: {"nodes": [[id, type, params]], "edges": [[src, dst, port]], "output"}.
    Every inner block is validated like a block on the canvas; "@in" is the group's input."""
    if not isinstance(value, dict):
        raise ParamError(f"{name}: must be an object with nodes, edges and output")
    nodes, edges, output = value.get("nodes"), value.get("edges"), value.get("output")
    if not isinstance(nodes, list) or not isinstance(edges, list) or not isinstance(output, str):
        raise ParamError(f"{name}: needs 'nodes' and 'edges' lists and an 'output' id")
    if not nodes or len(nodes) > MAX_GROUP_BLOCKS or len(edges) > 4 * MAX_GROUP_BLOCKS:
        raise ParamError(f"{name}: a group holds 1 to {MAX_GROUP_BLOCKS} blocks")
    out_nodes, ids = [], set()
    for i, n in enumerate(nodes):
        if not (isinstance(n, (list, tuple)) and len(n) == 3 and isinstance(n[0], str) and isinstance(n[1], str)):
            raise ParamError(f"{name}: nodes[{i}] must be [id, type, params]")
        local, type_id, params = n
        if not local or len(local) > 200 or local in ids:
            raise ParamError(f"{name}: nodes[{i}] has an empty, too long or repeated id {local!r}")
        problem = next(filter(None, map(part_problem, local.split("."))), None)
        if problem:
            raise ParamError(f"{name}: nodes[{i}] has id {local!r}: {problem}")
        spec = REGISTRY.get(type_id)
        if spec is None or type_id in ("input", "output") or spec.is_composite:
            raise ParamError(f"{name}: nodes[{i}] ({local}) has type {type_id!r}, which a group cannot hold")
        ids.add(local)
        out_nodes.append([local, spec.type_id, spec.validate_params(params if isinstance(params, dict) else None)])
    out_edges = []
    for i, e in enumerate(edges):
        if not (isinstance(e, (list, tuple)) and len(e) == 3 and all(isinstance(x, str) for x in e)):
            raise ParamError(f"{name}: edges[{i}] must be [source, destination, port]")
        if (e[0] != IN and e[0] not in ids) or e[1] not in ids:
            raise ParamError(f"{name}: edges[{i}] joins unknown blocks {e[0]!r} -> {e[1]!r}")
        out_edges.append(list(e))
    if output not in ids:
        raise ParamError(f"{name}: output {output!r} is not one of its blocks")
    return {"nodes": out_nodes, "edges": out_edges, "output": output}
