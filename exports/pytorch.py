"""Graph -> one standalone, readable PyTorch source file (needs only torch).

It reads like torchvision's model files: one class per composite block kind, defined once and reused by every
instance, channel counts as constructor arguments, ``nn.Sequential`` where blocks form a chain, output shapes as
comments in ``forward``, a top-level model class with ``num_classes`` (and ``aux_logits`` when there are
auxiliary heads) and ``build_model(**kwargs)``. Identifiers come from block ids, which the graph model keeps
valid; names and labels reach the file only through ``repr()``.
"""
from __future__ import annotations

import keyword
import re

from blocks import IN, REGISTRY
from blocks.spec import SymInt
from builder.analysis import Analysis, analyze, walk
from builder.expansion import expand_composite
from builder.codegen import Names, Node, forward_body, freeing, statements
from builder.compiler import flatten, inplace_plan
from builder.errors import CompileError
from builder.graph import Graph, freeze

from .emit import HELPER_CLASSES, ctor, helper_sources, width_param


CLASS_NAMES = {"inception_v1": "Inception", "inception_naive": "InceptionNaive", "inception_a": "InceptionA",
               "inception_b": "InceptionB", "inception_c": "InceptionC", "inception_d": "InceptionD",
               "inception_e": "InceptionE", "aux_googlenet": "InceptionAux", "aux_inception_v3": "InceptionAuxV3",
               "resnet_basic": "BasicBlock", "resnet_bottleneck": "Bottleneck", "mlpconv": "MlpConv",
               "classifier_head": "ClassifierHead", "grid_reduction": "GridReduction"}


# Names the exported file defines or imports at module level: a class named after a graph or a group never
# takes one of them (a group called INPUT_SHAPE, a graph called F).
MODULE_NAMES = frozenset({"torch", "F", "nn", "Tensor", "PROJECT_NAME", "INPUT_SHAPE", "LOSS_WEIGHTS", "build_model",
                          "safetensors", "load_file"}) | HELPER_CLASSES


def camel(type_id: str) -> str:
    if type_id in CLASS_NAMES:
        return CLASS_NAMES[type_id]
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[_\W]+", type_id) if w) or "Block"


def class_name_for(name: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_]", " ", name)
    words = [w for w in text.split() if w]
    out = "".join(w if w[:1].isupper() else w[:1].upper() + w[1:] for w in words) or "Network"
    if out[0].isdigit() or keyword.iskeyword(out):
        out = "Net" + out
    return out


# ------------------------------------------------------------------------------ modules and containers

def _chains(nodes: list[Node]) -> dict:
    """Dotted groups whose numbered children form a chain become one nn.Sequential: prefix -> [nodes]."""
    groups: dict = {}
    for n in nodes:
        if "." in n.local and n.ctor is not None:  # modules (a merge or an Output has no module)
            prefix, rest = n.local.rsplit(".", 1)
            groups.setdefault(prefix, []).append(n)
    readers: dict = {}
    for n in nodes:
        for s in n.sources:
            readers[s] = readers.get(s, 0) + 1
    out = {}
    ids = {n.local for n in nodes}
    for prefix, members in groups.items():
        rests = [m.local.rsplit(".", 1)[1] for m in members]
        if rests != [str(i) for i in range(len(members))]:
            continue
        if any(i.startswith(prefix + ".") and i not in {m.local for m in members} for i in ids):
            continue
        ok = all(len(m.sources) == 1 for m in members)
        ok = ok and all(members[i].sources[0] == members[i - 1].local for i in range(1, len(members)))
        ok = ok and all(readers.get(m.local, 0) == 1 for m in members[:-1])
        ok = ok and len({m.training_only for m in members}) == 1
        if ok:
            out[prefix] = members
    return out


def _module_ref(path: str) -> str:
    parts = path.split(".")
    first = parts[0]
    ref = f"self.{first}" if _ident(first) else f"getattr(self, {first!r})"
    for part in parts[1:]:
        ref += f".{part}" if _ident(part) else f"[{part!r}]"  # ModuleDict keys are strings
    return ref


def _ident(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _assignments(nodes: list[Node], chains: dict, indent: str, guard=None) -> list[str]:
    """``self.x = ...`` lines: Sequentials for chains, ModuleDicts for other dotted groups."""
    in_chain = {m.local for ms in chains.values() for m in ms}
    lines = []
    tree: dict = {}
    order: dict = {}  # top-level names in first-seen order (a dict: membership in O(1))
    for n in nodes:
        if n.ctor is None or n.local in in_chain:
            continue
        parts = n.local.split(".")
        node = tree
        for part in parts[:-1]:
            if part not in node:
                node[part] = {}
            node = node[part]
        node[parts[-1]] = n
        order.setdefault(parts[0])
    for prefix, members in chains.items():
        parts = prefix.split(".")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = members
        order.setdefault(parts[0])

    def render(value, depth):
        pad = indent + "    " * depth
        if isinstance(value, Node):
            return value.ctor
        if isinstance(value, list):
            inner = ",\n".join(f"{pad}    {m.ctor}" for m in value)
            return f"nn.Sequential(\n{inner},\n{pad})"
        inner = ",\n".join(f"{pad}    {k!r}: {render(v, depth + 1)}" for k, v in value.items())
        return f"nn.ModuleDict({{\n{inner},\n{pad}}})"

    for top in order:
        value = tree[top]
        if _ident(top):
            lines.append(f"{indent}self.{top} = {render(value, 0)}")
        else:
            lines.append(f"{indent}self.add_module({top!r}, {render(value, 0)})")
    return lines


# ------------------------------------------------------------------------------ composite classes

class CompositeClass:
    """One exported class: a composite kind and structure. ``args``: its constructor arguments (the composite's
    parameters that its widths are made of, ``in_channels`` first)."""

    def __init__(self, type_id, name, rows, output):
        self.type, self.name, self.rows, self.output = type_id, name, rows, output
        self.instances = {}  # block id -> {optional part: present?}
        self.args: list[str] = []
        self.optional: dict = {}      # part -> {present?, ...} over the instances
        self.part_rows: dict = {}     # part -> rows of an instance that has it
        self.absent_source: dict = {}  # part -> what its reader reads without it

    def flags(self) -> list[str]:
        """Optional parts some instances have and others not: a ``bool`` argument each (``downsample``)."""
        return [name for name, seen in self.optional.items() if seen == {True, False}]


def _inner(type_id, params, in_shape, prefix, fixed):
    """The composite's inside as rows; widths stay symbolic (SymInt) where the expansion made them so."""
    inside, output = walk(type_id, params, in_shape)
    rows = []
    for n in inside:
        if REGISTRY[n.type].is_composite:
            raise CompileError(f"{prefix}: composite blocks inside composite blocks cannot be exported yet")
        p = n.params
        override = fixed.get(f"{prefix}.{n.local}")
        if override is not None:  # in-place turned off here: the same parameters, symbols kept
            p = {**p, "inplace": override["inplace"]}
        rows.append({"local": n.local, "type": n.type, "params": p, "sources": n.sources,
                     "in_shape": n.in_shapes[0] if n.in_shapes else None, "shape": n.result.out_shape})
    return rows, output


def _symbolic_key(value):
    """Like ``freeze``, but a width is compared by the expression it came from, never by its value: two
    instances share a class exactly when their insides are built the same way from their arguments."""
    if isinstance(value, SymInt):
        return ("$", value.expr)
    if isinstance(value, dict):
        return tuple(sorted((k, _symbolic_key(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_symbolic_key(v) for v in value)
    return value


def _structure_key(rows, output, optional=None):
    """Rows compared by kind, symbolic parameters and wiring. An optional part (a projection shortcut) is left
    out, and the input that reads it becomes a marker: instances with and without it share one class."""
    optional = optional or {}
    part_of = {f"{name}." for name in optional}
    reads = {(reader, port): name for name, (reader, port, _, _) in optional.items()}
    key = []
    for r in rows:
        if any(r["local"].startswith(pfx) for pfx in part_of):
            continue
        if reads:
            ports = _ports(r)
            sources = tuple(("optional", reads[(r["local"], port)]) if (r["local"], port) in reads else s
                            for s, port in zip(r["sources"], ports))
            r = {**r, "sources": sources}
        extra = None
        if r["type"] == "flatten":  # the features a Linear after it takes depend on the grid
            extra = r["in_shape"][1:] if len(r["in_shape"]) == 3 else ()
        key.append((r["local"], r["type"], _symbolic_key(r["params"]), tuple(r["sources"]), extra))
    return (tuple(key), output, tuple(sorted(optional)))


def _ports(row) -> list[str]:
    spec = REGISTRY[row["type"]]
    return [f"in{i}" for i in range(len(row["sources"]))] if spec.variadic else list(spec.ports)


def _channels(rows, in_channels):
    """Each inner node's output channels: a SymInt expression where the widths are symbolic, else a number."""
    ch = {IN: in_channels}
    for r in rows:
        spec = REGISTRY[r["type"]]
        src = [ch[s] for s in r["sources"]]
        if spec.width_param:
            ch[r["local"]] = r["params"][spec.width_param]
        elif r["type"] == "concat":
            total = src[0]
            for c in src[1:]:
                total = total + c
            ch[r["local"]] = total
        elif r["type"] == "flatten":
            hw = 1
            for d in (r["in_shape"][1:] if len(r["in_shape"]) == 3 else ()):
                hw *= d
            ch[r["local"]] = src[0] if hw == 1 else src[0] * hw
        elif r["type"] in ("add", "mul"):  # broadcasting merges: the width of an input that is not 1 (a gate)
            ch[r["local"]] = next((c for c in src if int(c) != 1), src[0])
        elif r["type"] == "channel_slice":
            ch[r["local"]] = r["params"]["stop"] - r["params"]["start"]
        elif spec.keeps_width or r["type"] == "output":
            ch[r["local"]] = src[0]
        else:
            ch[r["local"]] = r["shape"][0]
    return ch


def _class_args(cls) -> list[str]:
    """The arguments the class's code uses, in the composite's parameter order, ``in_channels`` first."""
    used = set()

    def collect(v):
        if isinstance(v, SymInt):
            used.update(v.names)
        elif isinstance(v, (list, tuple)):
            for x in v:
                collect(x)
        elif isinstance(v, dict):
            for x in v.values():
                collect(x)
    for r in cls.rows:
        collect(r["params"])
    for c in _channels(cls.rows, IN_CHANNELS).values():
        collect(c)
    spec = REGISTRY[cls.type]
    return ["in_channels"] + [p.arg for p in spec.params if p.arg in used and p.arg != "in_channels"]


IN_CHANNELS = SymInt(0, "in_channels")


def _plan_classes(graph, analysis, fixed):
    """Group composite instances into classes: same kind and same symbolic structure -> one class."""
    classes: dict = {}
    by_block = {}
    names_used: dict = {}
    for bid, rep in analysis.blocks.items():
        b = graph.block(bid)
        if not rep.training or not b.spec.is_composite:
            continue
        rows, output = _inner(b.type, b.params, rep.in_shapes[0], bid, fixed)
        optional = expand_composite(b.type, b.params, rep.in_shapes[0]).optional
        key = (b.type, _structure_key(rows, output, optional))
        cls = classes.get(key)
        if cls is None:
            base = class_name_for(b.params["name"]) if b.type == "group" else camel(b.type)
            if base in MODULE_NAMES:
                base += "Block"
            n = names_used.get(base, 0) + 1
            names_used[base] = n
            cls = classes[key] = CompositeClass(b.type, base if n == 1 else f"{base}{n}", rows, output)
        present = {name: info[2] for name, info in optional.items()}
        for name, has in present.items():
            cls.optional.setdefault(name, set()).add(has)
            if has and name not in cls.part_rows:  # the class is written from an instance that has the part
                cls.part_rows[name] = rows
            if not has:
                cls.absent_source[name] = optional[name][3]
        cls.instances[bid] = present
        by_block[bid] = cls
    for cls in classes.values():
        for rows in cls.part_rows.values():
            cls.rows = rows
        cls.args = _class_args(cls)
    return {c.name: c for c in classes.values()}, by_block


def _arg_values(type_id, params) -> dict:
    """Exported argument name -> this instance's value."""
    return {p.arg: params[p.name] for p in REGISTRY[type_id].params if p.kind == "int"}


def _hoist(nodes, ch, rows) -> dict:
    """A width expression written more than once (``planes * base_width // 64 * groups``) becomes a local
    (``width``) set once at the top of ``__init__``, as torchvision writes it; returns {expression: name}."""
    exprs = {}
    for v in list(ch.values()) + [x for r in rows for x in r["params"].values()]:
        if isinstance(v, SymInt) and v.prec < 3 and len(v.expr) > 12:
            exprs[v.expr] = None
    hoisted = {}
    for expr in sorted(exprs, key=len, reverse=True):  # longest first: a shorter one may be inside it
        whole = re.compile(rf"(?<![\w.]){re.escape(expr)}(?!\w)")  # the expression itself, not a longer one
        uses = sum(len(whole.findall(n.ctor)) for n in nodes if n.ctor)
        if uses >= 2:
            name = "width" if not hoisted else f"width{len(hoisted) + 1}"
            hoisted[expr] = name
            for n in nodes:
                if n.ctor:
                    n.ctor = whole.sub(name, n.ctor)
    return hoisted


def _class_source(cls) -> str:
    ch = _channels(cls.rows, IN_CHANNELS)
    nodes = []
    for r in cls.rows:
        t = r["type"]
        c = None
        if REGISTRY[t].torch is not None:
            c = ctor(t, r["params"], ch[r["sources"][0]] if r["sources"] else None)
        nodes.append(Node(r["local"], t, c, r["sources"], r["shape"]))
    hoisted = _hoist(nodes, ch, cls.rows)
    chains = _chains(nodes)
    spec = REGISTRY[cls.type]
    defaults = {p.arg: p.default for p in spec.params}
    flags = [f for f in cls.flags() if f in chains]  # an optional part is one chain: one module or None
    params = [f"{a}: int" + (f" = {defaults[a]!r}" if a in defaults else "") for a in cls.args]
    params += [f"{f}: bool = False" for f in flags]
    args = ", ".join(params)
    if len(args) > 70:
        args = "\n" + "".join(f"        {a},\n" for a in params) + "    "
    doc = spec.description.replace("\\", "/").replace('"""', "'")  # our own text, never the user's
    sep = "" if args.startswith("\n") else " "
    lines = [f"class {cls.name}(nn.Module):", f'    """{spec.title}: {doc}"""', "",
             f"    def __init__(self,{sep}{args}) -> None:", "        super().__init__()"]
    lines += [f"        {name} = {expr}" for expr, name in hoisted.items()]
    in_part = {m.local for f in flags for m in chains[f]}
    lines += _assignments([n for n in nodes if n.local not in in_part],
                          {p: ms for p, ms in chains.items() if p not in flags}, "        ")
    for f in flags:  # torchvision's way: the module, or None
        lines += [f"        self.{f} = None", f"        if {f}:"]
        lines += _assignments(chains[f], {f: chains[f]}, "            ")
    lines += ["", "    def forward(self, x: Tensor) -> Tensor:"]
    stmts, var = statements(nodes, chains, Names(), {IN: "x"}, "        ", False, _module_ref)
    for f in flags:
        absent = var[cls.absent_source[f]]
        call = f"{_module_ref(f)}("
        for i, (text, args_) in enumerate(stmts):
            if f" = {call}" in text:
                stmts[i] = (f"{text} if {_module_ref(f)} is not None else {absent}", args_ + [absent])
    # the last statement produces the output: return it directly
    out_var = var[cls.output]
    if stmts and stmts[-1][0].strip().startswith(f"{out_var} = "):
        body = freeing(stmts[:-1], {out_var} | set(stmts[-1][1]))
        body.append(stmts[-1][0].replace(f"{out_var} = ", "return ", 1))
    else:
        body = freeing(stmts, {out_var}) + [f"        return {out_var}"]
    lines += body
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ the whole file

def _class_heads(graph, analysis) -> dict:
    """Blocks whose output width is the class count of an output: their parameter becomes ``num_classes``."""
    heads = {}
    for out_id in analysis.outputs:
        shape = analysis.blocks[out_id].out_shape
        if not shape or len(shape) != 1:
            continue
        cur = out_id
        while True:
            b = graph.block(cur)
            if not b.spec.keeps_width:
                break
            ins = graph.inputs(cur)
            if not ins:
                break
            cur = ins[0][1]
        b = graph.block(cur)
        for pname in ("out_features", "num_classes", "last_channels", "out_channels"):
            if b.params.get(pname) == shape[0]:
                heads[cur] = pname
                break
    return heads


def generate(graph: Graph, analysis: Analysis | None = None) -> str:
    a = analysis or analyze(graph)
    flat, outputs, _ = flatten(graph, a)  # raises CompileError with the graph's errors
    fixed = inplace_plan(flat)  # once for the whole network
    classes, by_block = _plan_classes(graph, a, fixed)
    heads = _class_heads(graph, a)
    main = a.outputs[0]
    main_shape = a.blocks[main].out_shape
    num_classes = main_shape[0] if main_shape and len(main_shape) == 1 else None
    has_aux = len(a.outputs) > 1
    model = class_name_for(graph.name)
    if model in {c.name for c in classes.values()} or model in MODULE_NAMES:
        model += "Model"

    nodes = []
    inputs = {}
    names = Names({c.name for c in classes.values()} | {model, "build_model"})
    for bid, rep in a.blocks.items():
        if not rep.training:
            continue
        b = graph.block(bid)
        srcs = [s for _, s in graph.inputs(bid)]
        if b.type == "input":
            inputs[bid] = names(bid)
            continue
        in_ch = rep.in_shapes[0][0] if rep.in_shapes and rep.in_shapes[0] else None
        c = None
        if b.spec.is_composite:
            cls = by_block[bid]
            vals = _arg_values(b.type, b.params)
            kws = []
            for arg in cls.args[1:]:
                v = "num_classes" if heads.get(bid) == arg and num_classes is not None else repr(int(vals[arg]))
                kws.append(f"{arg}={v}")
            kws += [f"{f}=True" for f in cls.flags() if cls.instances[bid].get(f)]
            c = f"{cls.name}({', '.join([repr(in_ch)] + kws)})"
        elif b.spec.torch is not None:
            out_sym = "num_classes" if heads.get(bid) == width_param(b.type) and num_classes is not None else None
            c = ctor(b.type, fixed.get(bid, b.params), in_ch, out_sym)
        nodes.append(Node(bid, b.type, c, srcs, rep.out_shape, training_only=not rep.inference))
    main_nodes = [n for n in nodes if not n.training_only]
    aux_nodes = [n for n in nodes if n.training_only]
    chains = _chains(nodes)
    main_chains = {p: ms for p, ms in chains.items() if not ms[0].training_only}
    aux_chains = {p: ms for p, ms in chains.items() if ms[0].training_only}

    init_args = []
    if num_classes is not None:
        init_args.append(f"num_classes: int = {num_classes}")
    if has_aux:
        init_args.append("aux_logits: bool = True")
    lines = [f"class {model}(nn.Module):",
             '    """Generated by Block Builder (the project is named in PROJECT_NAME)."""', "",
             f"    def __init__(self{''.join(', ' + x for x in init_args)}) -> None:", "        super().__init__()"]
    if has_aux:
        lines.append("        self.aux_logits = aux_logits")
    lines += _assignments(main_nodes, main_chains, "        ")
    if has_aux:
        lines.append("        if aux_logits:")
        lines += _assignments(aux_nodes, aux_chains, "            ")
    in_names = list(inputs.values())
    lines += ["", f"    def forward(self, {', '.join(f'{n}: Tensor' for n in in_names)}):"]
    lines += forward_body(inputs, nodes, a.outputs, names, chains, guard="self.training and self.aux_logits",
                          ref=_module_ref)

    in_shapes = [a.blocks[i].out_shape for i in inputs]
    defaults = {}
    if num_classes is not None:
        defaults["num_classes"] = num_classes
    if has_aux:
        defaults["aux_logits"] = True
    header = [
        '"""' + f"{model}: PyTorch code exported by Block Builder." + "",
        "",
        "It needs only torch. build_model() returns the network with the project's settings; in training mode",
        "it returns the main output and the auxiliary outputs, in eval mode the main output only.",
        '"""',
        "import torch",
        "import torch.nn.functional as F",
        "from torch import Tensor, nn",
        "",
        f"PROJECT_NAME = {graph.name!r}",
        f"INPUT_SHAPE = {tuple(in_shapes[0]) if len(in_shapes) == 1 else tuple(map(tuple, in_shapes))!r}",
        f"LOSS_WEIGHTS = {[graph.block(o).params['loss_weight'] for o in a.outputs]!r}",
    ]
    parts = ["\n".join(header) + "\n"]
    parts += [src.strip("\n") + "\n" for src in helper_sources(fb.type for fb in flat)]
    for cls in classes.values():
        parts.append(_class_source(cls))
    parts.append("\n".join(lines) + "\n")
    parts.append(f"def build_model(weights: str | None = None, **kwargs) -> {model}:\n"
                 f'    """The network with the project\'s settings; keyword arguments override them. ``weights``: a\n'
                 f'    .safetensors file of trained weights (e.g. the one exported beside this file)."""\n'
                 f"    settings = {defaults!r}\n"
                 f"    settings.update(kwargs)\n"
                 f"    model = {model}(**settings)\n"
                 f"    if weights is not None:\n"
                 f"        from safetensors.torch import load_file\n"
                 f"        model.load_state_dict(load_file(weights), strict=True)\n"
                 f"    return model\n")
    parts.append('if __name__ == "__main__":\n'
                 "    model = build_model().eval()\n"
                 "    shapes = [INPUT_SHAPE] if isinstance(INPUT_SHAPE[0], int) else list(INPUT_SHAPE)\n"
                 "    with torch.no_grad():\n"
                 "        out = model(*(torch.randn(1, *shape) for shape in shapes))\n"
                 "    print(type(model).__name__, tuple(out.shape), sum(p.numel() for p in model.parameters()), "
                 '"parameters")\n')
    return "\n\n".join(parts)
