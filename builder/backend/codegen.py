"""The one back end: the lowered network (:mod:`builder.core.ir`) as PyTorch module source, read like torchvision's
model files. The compiler executes this source; the exporter writes it to a file. No torch here: this writes
text.

The module tree is the network's module paths: every composite instance is an instance of a class defined once
per kind and structure (its widths constructor arguments, as ``Inception(192, ch1x1=64, ...)``), every other
dotted group of blocks is a class of its own (``self.inception4a``) or, where its children form a chain, an
``nn.Sequential``; every one has a ``forward``, so ``net.layer1(x)`` runs and hooks on any module fire. Modules
are registered in the order the network lists them, so state_dict keys come in torchvision's order.

``forward`` is straight-line code as torchvision writes it (see :func:`name_values`): the argument is ``x``, a
chain is ``x = self.block(x)``, a value gets a name only where it is read twice or later, and auxiliary heads sit
in a training-only section that returns ``(main, aux...)``.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from blocks import REGISTRY
from blocks.spec import Sym, SymFloat, SymInt, literal, plain

from ..core.ir import IR, inplace_plan

RESERVED_NAMES = frozenset({"self", "torch", "nn", "F", "Tensor", "x", "out"})
POOL = ("x", "out")  # the names a value read once, by the next statement, takes


def var_name(base: str, taken: set) -> str:
    """A unique, valid, non-keyword local variable name made from ``base`` (added to ``taken``)."""
    base = re.sub(r"\W", "_", base).strip("_") or "v"
    if base[0].isdigit() or keyword.iskeyword(base):
        base = "v_" + base
    name, n = base, 2
    while name in taken or name in RESERVED_NAMES:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _ident(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def attr(ref: str, part: str) -> str:
    """``ref.part``, or ``getattr(ref, "0")`` where the part is no identifier."""
    return f"{ref}.{part}" if _ident(part) else f"getattr({ref}, {part!r})"


def class_name_for(name: str) -> str:
    words = re.sub(r"[^A-Za-z0-9_]", " ", name).replace("_", " ").split()
    out = "".join(w if w[:1].isupper() else w[:1].upper() + w[1:] for w in words) or "Network"
    if out[0].isdigit() or keyword.iskeyword(out):
        out = "Net" + out
    return out


# ------------------------------------------------------------------------------ forward statements

@dataclass
class Stmt:
    targets: list        # value ids it assigns
    reads: list          # value ids it reads, in argument order
    expr: object         # (argument names) -> right-hand side
    shape: tuple | None = None
    section: int = 0     # 0: main path, 1: training-only section


def name_values(stmts: list, inputs: dict, returns: list, names: dict, frees: bool = True) -> tuple[dict, list]:
    """Variable names, torchvision's way: a value read exactly once, by the very next statement and as all it
    reads (a chain: ``x = self.layer1(x)``), takes ``x`` (or ``out`` while ``x`` still holds a value read later);
    every other value gets a name of its own, from ``names`` ({value: base name}). Returns {value: variable} and,
    per statement, the variables to ``del`` after it: in the network's own forward (``frees``), a named value
    whose last reader it is, when more main-path statements follow (else it would live to the end)."""
    uses: dict = {}
    for i, st in enumerate(stmts):
        for v in st.reads:
            uses.setdefault(v, []).append(i)
    for group in returns:
        for v in group:
            uses.setdefault(v, []).append(len(stmts))
    last = {v: u[-1] for v, u in uses.items()}
    sole = [set(st.reads) for st in stmts] + [set(returns[0]) if returns else set()]
    taken = set(RESERVED_NAMES) | set(inputs.values())
    var = dict(inputs)
    holder = {p: None for p in POOL}
    for v, name in inputs.items():
        if name in holder:
            holder[name] = v
    dels: list = [[] for _ in stmts]
    for i, st in enumerate(stmts):
        for t in st.targets:
            pool = None
            if len(st.targets) == 1 and uses.get(t) == [i + 1] and sole[i + 1] == {t} and \
                    (i + 1 == len(stmts) or stmts[i + 1].section == st.section or len(returns) == 1):
                free = [p for p in POOL if holder[p] is None or last.get(holder[p], -1) <= i]
                mine = [var[v] for v in st.reads if var.get(v) in free]  # continue the chain it reads
                pool = (mine or free or [None])[0]
            if pool is not None:
                var[t] = pool
                holder[pool] = t
            else:
                var[t] = var_name(names.get(t, "v"), taken)
        for v in dict.fromkeys(st.reads):
            if frees and st.section == 0 and last.get(v) == i and var[v] not in POOL and i + 1 < len(stmts) and \
                    stmts[i + 1].section == 0 and v not in inputs:
                dels[i].append(var[v])
    return var, dels


def statement_lines(stmts, var, dels, indent, comments) -> list:
    lines = []
    for st, dead in zip(stmts, dels):
        target = ", ".join(var[t] for t in st.targets)
        text = f"{indent}{target} = {st.expr([var[v] for v in st.reads])}"
        if comments and st.shape:
            text += f"  # {' x '.join(map(str, st.shape))}"
        lines.append(text)
        if dead:
            lines.append(f"{indent}del {', '.join(dead)}")
    return lines


# ------------------------------------------------------------------------------ the module tree

@dataclass
class Scope:
    """A module of the network being written: a composite instance, a dotted group of blocks, or the root."""
    path: str                      # module path ("" for the root)
    composite: object = None       # ir.Composite for a composite instance
    children: dict = field(default_factory=dict)  # name -> Scope | ir.Node, in the network's order
    reads: list = field(default_factory=list)     # values from outside it read inside, first read first
    makes: list = field(default_factory=list)     # values made inside it read outside (or returned)
    training_only: bool = True
    context: str = ""              # the composite whose arguments its symbolic widths name ("" at top level)


def build_tree(ir: IR) -> Scope:
    root = Scope("", training_only=False)
    scopes = {"": root}
    for n in ir.nodes:
        if _structural(n):  # an Input is an argument of forward, an Output a returned value: no module
            root.children[n.id] = n
            continue
        parts = n.id.split(".")
        cur, path = root, ""
        context = ""
        for part in parts[:-1]:
            path = f"{path}.{part}" if path else part
            s = scopes.get(path)
            if s is None:
                comp = ir.composites.get(path)
                s = scopes[path] = Scope(path, comp, context=context)
                cur.children[part] = s
            if s.composite is not None:
                context = path
            s.training_only = s.training_only and n.training_only
            cur = s
        cur.children[parts[-1]] = n
    producer_scopes = {}
    for n in ir.nodes:
        producer_scopes[n.id] = set() if _structural(n) else _prefixes(n.id)
    for n in ir.nodes:
        mine = producer_scopes[n.id]
        for v in n.inputs:
            theirs = producer_scopes[v]
            for p in mine - theirs:
                _add(scopes[p].reads, v)
            for p in theirs - mine:
                _add(scopes[p].makes, v)
    for v in ir.outputs:
        for p in producer_scopes[v]:
            _add(scopes[p].makes, v)
    order = {n.id: i for i, n in enumerate(ir.nodes)}
    for s in scopes.values():
        s.makes.sort(key=order.__getitem__)
    return root


def _structural(n) -> bool:
    return not n.scope and n.kind in ("input", "output")


def _prefixes(node_id: str) -> set:
    parts = node_id.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _add(seq, v):
    if v not in seq:
        seq.append(v)


def _nodes(item):
    if isinstance(item, Scope):
        for c in item.children.values():
            yield from _nodes(c)
    else:
        yield item


def _reads(item):
    return item.reads if isinstance(item, Scope) else list(item.inputs)


def _makes(item):
    return item.makes if isinstance(item, Scope) else [item.id]


def _callable(scope: Scope, siblings: dict, position: dict) -> bool:
    """A scope can be one call in its parent: it is wholly main-path or wholly training-only, and no sibling
    whose blocks run between its first and last block exchanges values with it (the parent's statements stay in
    one order; a cycle between siblings is found when they are ordered)."""
    mixed = any(n.training_only for n in _nodes(scope)) and not scope.training_only
    if mixed:
        return False
    mine = {n.id for n in _nodes(scope)}
    start = min(position[i] for i in mine)
    end = max(position[i] for i in mine)
    for other in siblings.values():
        if other is scope:
            continue
        ids = [n.id for n in _nodes(other)]
        inside = [position[i] for i in ids if start < position[i] < end]
        if inside:  # interleaved with a sibling: fine only if neither reads the other
            made = set(_makes(other))
            if made & set(scope.reads) or set(scope.makes) & set(_reads(other)):
                return False
    return True


class Writer:
    """Writes the classes of one network and its model class; ``classes`` in the order they are defined."""

    def __init__(self, ir: IR, heads: dict, num_classes):
        self.ir = ir
        self.fixed = inplace_plan(ir)
        self.heads, self.num_classes = heads, num_classes
        self.classes: dict = {}       # class text (with a placeholder name) -> class name
        self.sources: list = []       # class sources, dependencies first
        self.used_names: set = set()
        self.used_kinds: set = set()
        self.position = {n.id: i for i, n in enumerate(ir.nodes)}
        self.channels = self._channels()

    # -- widths: every value's channels, symbolic inside composites
    def _channels(self) -> dict:
        ch = {}
        for n in self.ir.nodes:
            if n.kind == "input":
                ch[n.id] = n.shape[0]
                continue
            ctx = n.scope[-1] if n.scope else ""
            ins = [self.seen_from(v, ctx, ch) for v in n.inputs]
            try:
                ch[n.id] = REGISTRY[n.kind].channels(n.params, ins, n.in_shapes, n.shape)
            except (TypeError, IndexError, ValueError):
                ch[n.id] = n.shape[0] if n.shape else None
        return ch

    def seen_from(self, v, ctx: str, ch=None):
        """The channels of value ``v`` as code inside composite ``ctx`` writes them: its own expression when
        made there, ``in_channels`` when it is the composite's input, a number when made elsewhere."""
        ch = self.channels if ch is None else ch
        src = self.ir.by_id[v]
        src_ctx = src.scope[-1] if src.scope else ""
        if src_ctx == ctx:
            return ch.get(v)
        if ctx and not src_ctx.startswith(ctx + "."):
            return SymInt(int(src.shape[0]), "in_channels") if src.shape else None
        return int(src.shape[0]) if src.shape else None

    def _in_ch(self, item, scope: Scope):
        """The input channels of a child of ``scope``, as the code of ``scope`` writes them."""
        reads = _reads(item)
        if not reads:
            return None
        ctx = scope.composite.id if scope.composite is not None else scope.context
        c = self.seen_from(self._alias(reads[0]), ctx)
        return int(c) if not ctx and isinstance(c, SymInt) else c

    # -- constructors
    def ctor(self, item, scope: Scope, symbols: set) -> str | None:
        """The constructor source of a child of ``scope``; adds the symbols (arguments) it uses to ``symbols``."""
        if isinstance(item, Scope):
            return self.scope_ctor(item, scope, symbols)
        spec = REGISTRY[item.kind]
        if spec.defines is not None:
            return self.defined(spec, item.params)
        if spec.torch is None:
            return None
        self.used_kinds.add(item.kind)
        params = self.fixed.get(item.id, item.params)
        if not (scope.composite is not None or scope.context):
            params = plain(params)  # a block of a composite written outside its class: its numbers
        out_sym = None
        if not item.scope and self.heads.get(item.id) == spec.width_param and self.num_classes is not None:
            out_sym = Sym("num_classes")
            symbols.add("num_classes")
        in_ch = self._in_ch(item, scope)
        _symbols_of(params, symbols)
        _symbols_of(in_ch, symbols)
        return spec.torch.source(params, in_ch, out_sym)

    def defined(self, spec, params) -> str:
        """``Name()`` for a kind that writes its own class (a captured module): each class text once, named after
        the kind's label (``BatchNormAct2d``)."""
        params = plain(params)
        key = spec.defines(params, "_")
        entry = self.classes.get(key)
        if entry is None:
            base = class_name_for(spec.class_label(params) if spec.class_label else spec.type_id)
            name, n = base, 2
            while name in self.used_names or name in MODULE_NAMES:
                name, n = f"{base}{n}", n + 1
            self.used_names.add(name)
            entry = self.classes[key] = {"name": name, "index": len(self.sources), "parts": set(), "args": []}
            self.sources.append(key.replace("class _(", f"class {name}(", 1))
        return f"{entry['name']}()"

    def scope_ctor(self, s: Scope, parent: Scope, symbols: set) -> str:
        seq = self._chain(s)
        if seq is not None:
            parts = [self.ctor(c, s, symbols) for c in seq]
            return "nn.Sequential(\n" + "".join("\t" + p.replace("\n", "\n\t") + ",\n" for p in parts) + ")"
        name, args, flags = self.define(s)
        in_ch = self._in_ch(s, parent)
        call = []
        if s.composite is not None:
            comp = s.composite
            spec = REGISTRY[comp.kind]
            call.append(literal(in_ch) if in_ch is not None else "0")
            _symbols_of(in_ch, symbols)
            values = {p.arg: comp.params[p.name] for p in spec.params if p.kind in ("int", "float")}
            for a in args[1:]:
                v = values[a]
                if not comp.scope and self.heads.get(comp.id) == a and self.num_classes is not None:
                    call.append(f"{a}=num_classes")
                    symbols.add("num_classes")
                elif isinstance(v, (SymInt, SymFloat)) and (parent.context or parent.composite is not None):
                    call.append(f"{a}={literal(v)}")
                    _symbols_of(v, symbols)
                else:
                    call.append(f"{a}={int(v)}" if isinstance(v, int) else f"{a}={float(v)!r}")
            call += [f"{f}=True" for f in flags if comp.optional[f][2]]
        else:
            call += [f"{a}={a}" for a in args]
            symbols.update(args)
        return f"{name}({', '.join(call)})"

    def _chain(self, s: Scope):
        """The children of ``s`` when they form a chain ``0, 1, ...`` (an nn.Sequential), else None."""
        if s.composite is not None or not s.path:
            return None
        kids = list(s.children.items())
        if [k for k, _ in kids] != [str(i) for i in range(len(kids))] or len(s.reads) != 1 or len(s.makes) != 1:
            return None
        prev = s.reads
        for i, (_, c) in enumerate(kids):
            if isinstance(c, Scope):
                if self._chain(c) is None and (len(c.reads) != 1 or len(c.makes) != 1 or
                                               not _callable(c, s.children, self.position)):
                    return None
            elif REGISTRY[c.kind].torch is None or len(c.inputs) != 1:
                return None
            if _reads(c) != prev:
                return None
            made = _makes(c)
            if i < len(kids) - 1 and (len(made) != 1 or made[0] in s.makes or any(
                    made[0] in _reads(o) for j, (_, o) in enumerate(kids) if j != i + 1)):
                return None
            prev = made
        if prev != s.makes:
            return None
        return [c for _, c in kids]

    # -- classes
    def define(self, s: Scope) -> tuple[str, list, list]:
        """The class of scope ``s``, defined once per kind and structure: its name, its arguments, and the
        optional parts this instance has (``downsample``), which the class takes as ``bool`` arguments. Instances
        with and without an optional part share one class: they are compared with the part left out."""
        parts = self._flags(s)
        present = [p for p in parts if s.composite.optional[p][2]]
        key = self._render(s, [], drop=parts)[0] if parts else None
        full, args = self._render(s, present)
        key = _DOC.sub("", key or full)  # instances alike but for the path their docstring names share it
        entry = self.classes.get(key)
        if entry is None:
            base = self._class_base(s)
            name, n = base, 2
            while name in self.used_names:
                name, n = f"{base}{n}", n + 1
            self.used_names.add(name)
            entry = self.classes[key] = {"name": name, "index": len(self.sources), "parts": set(present),
                                         "args": args}
            self.sources.append(full.replace("class _(", f"class {name}(", 1))
        elif set(present) - entry["parts"]:  # written again from an instance that has the part
            entry["parts"] |= set(present)
            entry["args"] = args
            self.sources[entry["index"]] = full.replace("class _(", f"class {entry['name']}(", 1)
        return entry["name"], entry["args"], present

    def _render(self, s: Scope, flags, drop=()) -> tuple[str, list]:
        """The class source of ``s`` (named ``_``) and its arguments; ``drop``: optional parts left out."""
        init, forward, symbols = self.body(s, flags, drop)
        spec = REGISTRY[s.composite.kind] if s.composite is not None else None
        if spec is not None:
            args = ["in_channels"] + [p.arg for p in spec.params if p.arg in symbols and p.arg != "in_channels"]
            defaults = {p.arg: p.default for p in spec.params}
        else:
            args = sorted(symbols - {"in_channels"}) if not s.context else sorted(symbols)
            defaults = {}
        kinds = {p.arg: p.kind for p in spec.params} if spec is not None else {}
        sig = [f"{a}: {'float' if kinds.get(a) == 'float' else 'int'}" + (f" = {defaults[a]!r}" if a in defaults
                                                                          else "") for a in args]
        sig += [f"{f}: bool = False" for f in flags]
        head = ", ".join(["self"] + sig)
        if len(head) > 80:
            head = "\n" + "".join(f"        {a},\n" for a in ["self"] + sig) + "    "
        if spec is not None:
            doc = spec.description.replace("\\", "/").replace('"""', "'")  # our own text, never the user's
            doc = f"{spec.title}: {doc}"
        else:
            inner = s.path[len(s.context) + 1:] if s.context and s.path.startswith(s.context + ".") else s.path
            owner = REGISTRY[self.ir.composites[s.context].kind].title if s.context in self.ir.composites else ""
            doc = (f"The blocks under {inner!r}" + (f" of a {owner.split(' (')[0]}." if owner else ".")) \
                if _plain(inner) else "A group of blocks."
        text = "\n".join(init + ["", "    def forward(" + ", ".join(["self"] + forward[0]) + "):"] + forward[1])
        return (f'class _(nn.Module):\n    """{doc}"""\n\n    def __init__({head}) -> None:\n'
                f"        super().__init__()\n{text}\n"), args

    def _class_base(self, s: Scope) -> str:
        if s.composite is not None:
            spec = REGISTRY[s.composite.kind]
            if spec.params and spec.params[0].name == "name" and spec.params[0].kind == "str":
                base = class_name_for(s.composite.params["name"])  # a group: named by the user
            else:
                base = spec.class_name or class_name_for(spec.type_id)
        else:
            parts = s.path.split(".")
            base = class_name_for("_".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1])
        if base in MODULE_NAMES:
            base += "Block"
        return base

    def _flags(self, s: Scope) -> list:
        """Optional parts (a projection shortcut) written as ``bool`` arguments: those a child chain forms."""
        if s.composite is None or not s.composite.optional:
            return []
        return [part for part in s.composite.optional if part in s.children]

    def body(self, s: Scope, flags, drop=()) -> tuple[list, tuple, set]:
        """__init__ lines, (forward arguments, forward lines), and the symbols the code uses; the children in
        ``drop`` (optional parts) are left out, their readers read what they read instead."""
        items = self._order(s)
        sub = {v: self._alias(_reads(s.children[d])[0]) for d in drop for v in _makes(s.children[d])}

        def al(v):
            return self._alias(sub.get(v, v))
        symbols: set = set()
        init = []
        stmts = []
        inputs = self._inputs(s)
        names = {}
        made: set = set()  # containers made for blocks of an inlined group
        for name, item in items:
            if name in drop:
                continue
            if not isinstance(item, Scope) and item.kind == "input":
                continue
            if not isinstance(item, Scope) and item.kind == "output":
                continue
            if isinstance(item, Scope) and not _callable(item, s.children, self.position):
                raise _Inline(item)
            ctor = self.ctor(item, s, symbols)
            section = 1 if not s.path and item.training_only else 0
            ref = "self"
            for part in name.split("."):
                ref = attr(ref, part)
            if ctor is not None:
                init.append((section, name, _assign(name, ctor, made)))
                expr = (lambda r: lambda args: f"{r}({', '.join(args)})")(ref)
            else:
                spec = REGISTRY[item.kind]
                expr = spec.forward
            reads = [al(v) for v in _reads(item)]
            targets = _makes(item) if isinstance(item, Scope) else [item.id]
            for t in targets:
                names[t] = name if len(targets) == 1 else self.ir.by_id[t].local.replace(".", "_")
            shape = None
            if not s.path and len(targets) == 1:
                shape = self.ir.by_id[targets[0]].shape
            stmts.append(Stmt(targets, reads, expr, shape, section))
            if name in flags:
                absent = al(s.composite.optional[name][3] or reads[0])
                stmts[-1].expr = (lambda e, r, a: lambda args: f"{e(args[:-1])} if {r} is not None else {args[-1]}")(
                    expr, ref, absent)
                stmts[-1].reads = reads + [absent]
        stmts.sort(key=lambda st: st.section)  # the training-only section after the main path
        returns = self._returns(s, al)
        var, dels = name_values(stmts, inputs, returns, names, frees=not s.path)
        indent = "        "
        lines = []
        main = [(st, d) for st, d in zip(stmts, dels) if st.section == 0]
        aux = [(st, d) for st, d in zip(stmts, dels) if st.section == 1]
        comments = not s.path
        lines += statement_lines([m[0] for m in main], var, [m[1] for m in main], indent, comments)
        outs = [al(o) for o in (s.makes if s.path else self.ir.outputs)]
        if not s.path and len(outs) > 1:
            lines.append(f"{indent}if self.training and self.aux_logits:")
            lines += statement_lines([m[0] for m in aux], var, [m[1] for m in aux], indent + "    ", comments)
            lines.append(f"{indent}    return {', '.join(var[o] for o in outs)}")
            lines.append(f"{indent}return {var[outs[0]]}")
        elif s.path and len(outs) == 1 and lines and lines[-1].startswith(f"{indent}{var[outs[0]]} = ") and \
                stmts and stmts[-1].targets == outs and var[outs[0]] in POOL:
            lines[-1] = lines[-1].replace(f"{indent}{var[outs[0]]} = ", f"{indent}return ", 1)  # return torch.cat(...)
        else:
            lines.append(f"{indent}return {', '.join(var[o] for o in outs) if outs else 'None'}")
        init_lines = self._init_lines(init, flags, s)
        args = [f"{v}: Tensor" for v in inputs.values()]
        return init_lines, (args, lines), symbols

    def _init_lines(self, init, flags, s):
        lines = []
        guard = False

        def put(indent, text):
            for line in text.split("\n"):
                tabs = len(line) - len(line.lstrip("\t"))
                lines.append(indent + "    " * tabs + line[tabs:])
        for section, name, line in init:
            if name in flags:
                lines += [f"        self.{name} = None", f"        if {name}:"]
                put("            ", line)
                continue
            if section == 1 and not guard:
                lines.append("        if aux_logits:")
                guard = True
            elif section == 0 and guard:
                guard = False
            put("            " if section == 1 else "        ", line)
        if not s.path and any(sec == 1 for sec, _, _ in init):
            lines.insert(0, "        self.aux_logits = aux_logits")
        return _hoist(lines)

    def _order(self, s: Scope) -> list:
        """Children in the order their values can be computed: the network's order, each scope at its first
        block, moved after a sibling it reads from (a later block of that sibling may come first)."""
        items = list(s.children.items())
        made_by = {}
        for name, item in items:
            for v in _makes(item):
                made_by[v] = name
        done, out = set(), []
        pending = {name: item for name, item in items}

        def visit(name, stack=()):
            if name in done:
                return
            if name in stack:  # siblings that read each other: write one of the scopes among them inline
                cycle = [pending[n] for n in stack[stack.index(name):]]
                raise _Inline(next(c for c in cycle if isinstance(c, Scope)))
            item = pending[name]
            for v in _reads(item):
                dep = made_by.get(v)
                if dep is not None and dep != name:
                    visit(dep, stack + (name,))
            done.add(name)
            out.append((name, item))
        for name, _ in items:
            visit(name)
        return out

    def _inputs(self, s: Scope) -> dict:
        if s.path:
            reads = s.reads
        else:
            reads = [n.id for n in self.ir.inputs]
        if len(reads) == 1:
            return {reads[0]: "x"}
        taken = set(RESERVED_NAMES)
        return {v: var_name(self.ir.by_id[v].local, taken) for v in reads}

    def _returns(self, s: Scope, al) -> list:
        if s.path:
            return [[al(v) for v in s.makes]]
        outs = [al(o) for o in self.ir.outputs]
        return [outs, outs[:1]] if len(outs) > 1 else [outs]

    def _alias(self, v):
        """An Output block's value is its input's."""
        n = self.ir.by_id.get(v)
        while n is not None and n.kind == "output":
            v = n.inputs[0]
            n = self.ir.by_id.get(v)
        return v


class _Inline(Exception):
    """A scope that cannot be one call in its parent (interleaved with a sibling both ways)."""

    def __init__(self, scope):
        super().__init__(getattr(scope, "path", ""))
        self.scope = scope


_DOC = re.compile(r'^    """.*"""$', re.M)


def _plain(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.]*", text))


def _symbols_of(value, symbols: set) -> None:
    """The argument names a value is written with (a SymInt's parameters, a Sym)."""
    if isinstance(value, (SymInt, SymFloat)):
        symbols.update(value.names)
    elif isinstance(value, Sym):
        symbols.add(str(value))
    elif isinstance(value, (list, tuple)):
        for v in value:
            _symbols_of(v, symbols)
    elif isinstance(value, dict):
        for v in value.values():
            _symbols_of(v, symbols)


def _assign(name: str, ctor: str, made: set) -> str:
    """``self.name = ctor``; a dotted name (a block of an inlined group) gets plain containers on the way."""
    parts = name.split(".")
    lines, ref = [], "self"
    for i, part in enumerate(parts[:-1]):
        path = ".".join(parts[:i + 1])
        if path not in made:
            made.add(path)
            lines.append(f"{ref}.{part} = nn.Module()" if _ident(part) else f"{ref}.add_module({part!r}, nn.Module())")
        ref = attr(ref, part)
    last = parts[-1]
    lines.append(f"{ref}.{last} = {ctor}" if _ident(last) else f"{ref}.add_module({last!r}, {ctor})")
    return "\n".join(lines)


def _hoist(lines: list) -> list:
    """A width expression written more than once (``planes * base_width // 64 * groups``) becomes a local
    (``width``) set once at the top of ``__init__``, as torchvision writes it."""
    text = "\n".join(lines)
    found = re.findall(r"\(([a-z_]\w*(?: (?:\*|//|\+|-) (?:[a-z_]\w*|\d+))+)\)|(?<=[(, ])([a-z_]\w*(?: (?:\*|//|\+|-) "
                       r"(?:[a-z_]\w*|\d+))+)(?=[,)])", text)
    exprs = {e for pair in found for e in pair if e and len(e) > 12}
    hoisted = []
    for expr in sorted(exprs, key=len, reverse=True):
        whole = re.compile(rf"(?<![\w.]){re.escape(expr)}(?![\w])")
        if len(whole.findall(text)) >= 2:
            name = "width" if not hoisted else f"width{len(hoisted) + 1}"
            text = whole.sub(name, text)
            hoisted.append(f"        {name} = {expr}")
    return hoisted + text.split("\n") if hoisted else lines


# Names the exported file defines or imports at module level: a class named after a graph or a group never
# takes one of them (a group called INPUT_SHAPE, a graph called F).
# Classes of blocks.modules the generated code builds (BasicConv2d, LayerNorm2d, ...; Permute inside ConvNeXt's):
# the compiler takes them from there, the exporter copies their source into the file.
HELPER_CLASSES = frozenset(s.torch.cls for s in REGISTRY if s.torch is not None and not s.torch.cls.startswith("nn.")) \
    | {"Permute"}
MODULE_NAMES = frozenset({"torch", "F", "nn", "Tensor", "PROJECT_NAME", "INPUT_SHAPE", "LOSS_WEIGHTS",
                          "build_model", "safetensors", "load_file"}) | HELPER_CLASSES


@dataclass
class ModuleSource:
    classes: list        # class sources, dependencies first
    model: str           # the model class's name
    model_source: str
    kinds: set           # primitive kinds the code builds (the helper classes it needs)
    defaults: dict       # the model's constructor arguments and their values

    @property
    def text(self) -> str:
        return "\n\n".join(self.classes + [self.model_source])


def class_heads(ir: IR) -> dict:
    """Top-level blocks whose output width is the class count of an output: their parameter (``out_features``,
    ``num_classes``) becomes the model's ``num_classes``. Found by walking back through kinds that keep the width
    (dropout, flatten) to the block that sets it."""
    heads = {}
    for out_id in ir.outputs:
        n = ir.by_id[out_id]
        shape = n.shape
        if not shape or len(shape) != 1:
            continue
        while n.scope == () and REGISTRY[n.kind].keeps_width and n.inputs:
            n = ir.by_id[n.inputs[0]]
        if n.scope:
            comp = ir.composites[n.scope[0]]
            spec = REGISTRY[comp.kind]
            for p in spec.params:
                if p.kind == "int" and comp.params.get(p.name) == shape[0] and p.arg == "num_classes":
                    heads[comp.id] = p.arg
            continue
        spec = REGISTRY[n.kind]
        if spec.width_param and n.params.get(spec.width_param) == shape[0]:
            heads[n.id] = spec.width_param
    return heads


def module_source(ir: IR, model_name: str) -> ModuleSource:
    """The classes and the model class of the network (the model's constructor takes ``num_classes``, and
    ``aux_logits`` where there are auxiliary heads)."""
    main_shape = ir.by_id[ir.outputs[0]].shape if ir.outputs else None
    num_classes = main_shape[0] if main_shape and len(main_shape) == 1 else None
    heads = class_heads(ir)
    root = build_tree(ir)
    model = class_name_for(model_name)
    while True:
        writer = Writer(ir, heads, num_classes)
        try:
            init, (args, lines), _ = writer.body(root, [])
            break
        except _Inline as e:
            _inline(e.scope, root)
    for c in writer.sources:
        m = re.match(r"class (\w+)\(", c)
        if m and m.group(1) == model:
            model += "Model"
    if model in MODULE_NAMES:
        model += "Model"
    has_aux = len(ir.outputs) > 1
    init_args = []
    defaults = {}
    if num_classes is not None:
        init_args.append(f"num_classes: int = {num_classes}")
        defaults["num_classes"] = num_classes
    if has_aux:
        init_args.append("aux_logits: bool = True")
        defaults["aux_logits"] = True
    src = [f"class {model}(nn.Module):", '    """Generated by Block Builder (the project is named in PROJECT_NAME)."""',
           "", f"    def __init__(self{''.join(', ' + a for a in init_args)}) -> None:", "        super().__init__()"]
    src += init
    src += ["", f"    def forward({', '.join(['self'] + args)}):"] + lines
    return ModuleSource(writer.sources, model, "\n".join(src) + "\n", writer.used_kinds, defaults)


def _inline(scope: Scope, root: Scope) -> None:
    """Write a scope that cannot be one call (it and a sibling read each other) as its children, each at its
    own dotted path in the parent (so state_dict keys stay the block ids)."""
    def find(s):
        for name, c in list(s.children.items()):
            if c is scope:
                items = list(s.children.items())
                s.children.clear()
                for k, v in items:
                    if v is scope:
                        for ck, cv in scope.children.items():
                            s.children[f"{k}.{ck}"] = cv
                    else:
                        s.children[k] = v
                return True
            if isinstance(c, Scope) and find(c):
                return True
        return False
    if not find(root):
        raise RuntimeError(f"cannot write {scope.path!r}")
