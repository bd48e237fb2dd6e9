"""A captured computation as data: what a "captured" block runs when no kind stands for a module.

An importer captures such a module with ``torch.export`` (:mod:`builder.importers.capture`) and stores its graph
of ATen operators here as plain JSON: the tensors it owns (parameters and buffers, with their state_dict names;
small constants with their values), and one list of nodes per mode (training and evaluation differ where the
module does: batch statistics, dropout). Nothing in it is code: :func:`validate_program` checks every name,
operator and value, and :func:`class_source` writes the module's class from it, with user text only as validated
identifiers or through ``repr()``. The compiler runs that class; the exporter writes it into the file.

Format::

    {"source": "timm.layers.norm_act.BatchNormAct2d",     # the original class, for people
     "inputs": [[32, 112, 112]], "output": [32, 112, 112],  # shapes without the batch dimension
     "tensors": [{"name": "weight", "kind": "parameter", "shape": [32], "dtype": "float32", "init": "ones"},
                 {"name": "k", "kind": "constant", "shape": [3], "dtype": "float32", "values": [1, 2, 1]}, ...],
     "train": {"nodes": [[name, target, args, kwargs], ...], "result": name},
     "eval": {...} or null (the same as train),
     "params": 64, "macs": 401408}

An argument is a number, a bool, null, a string, a list of arguments, or one of ``{"ref": value name}`` (an
input ``x0``, ``x1``, ... or an earlier node), ``{"self": tensor name}``, ``{"dtype": "float32"}``,
``{"device": "input"}`` (the first input's device), ``{"layout": "strided"}``, ``{"memory_format": name}``,
``{"float": "inf" | "-inf" | "nan"}``. A target is ``aten.NAME.OVERLOAD`` or one of :data:`OPERATORS`.
"""
from __future__ import annotations

import keyword
import math
import re

from .names import PART, torch_name_clash
from .spec import MAX_SPATIAL, ParamError

NAME = re.compile(r"[a-z_][a-z0-9_]{0,79}\Z")
ATEN = re.compile(r"aten\.[a-z_][a-z0-9_]{0,79}\.[A-Za-z_][A-Za-z0-9_]{0,39}\Z")
# ATen operators that touch files or print: a project file may never run them
DENIED = re.compile(r"(from_file|save|load|print|_debug|_assert_async)")
# Python operators a graph of shapes uses (the batch size times a width): written as expressions
OPERATORS = {"operator.getitem": "{0}[{1}]", "operator.add": "{0} + {1}", "operator.sub": "{0} - {1}",
             "operator.mul": "{0} * {1}", "operator.floordiv": "{0} // {1}", "operator.truediv": "{0} / {1}",
             "operator.mod": "{0} % {1}", "operator.neg": "-{0}", "operator.pow": "{0} ** {1}"}
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
          "complex64")
LAYOUTS = ("strided",)
MEMORY_FORMATS = ("contiguous_format", "channels_last", "preserve_format")
RESERVED = frozenset({"self", "torch", "nn", "F", "Tensor", "super", "math", "operator", "None", "True", "False"})
INITS = ("zeros", "ones", "kaiming", "empty")
MAX_NODES = 50000
MAX_TENSORS = 20000
MAX_CONSTANT = 65536        # numbers a constant may hold in the file
MAX_NUMEL = 2 ** 31


def value_name(name: str) -> bool:
    """Whether ``name`` may name a value in a program's code: lower case, no dunder, keyword or reserved name."""
    return bool(NAME.match(name)) and not name.startswith("__") and not keyword.iskeyword(name) and \
        name not in RESERVED


def _fail(where: str, why: str):
    raise ParamError(f"program: {where}: {why}")


def _shape(v, where: str, rank=(1, 4), low: int = 1) -> list:
    if not isinstance(v, list) or not rank[0] <= len(v) <= rank[1] or \
            not all(isinstance(d, int) and not isinstance(d, bool) and low <= d <= MAX_SPATIAL * 8 for d in v):
        _fail(where, f"must be a list of {rank[0]} to {rank[1]} sizes")
    return list(v)


def _tensor_name(name, where: str) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= 300:
        _fail(where, "a tensor needs a name")
    parts = name.split(".")
    if not all(PART.match(p) and not keyword.iskeyword(p) and not torch_name_clash(p) for p in parts) or \
            not parts[-1].isidentifier():
        _fail(where, f"{name!r} is not a dotted path of names (none of them a torch module's own attribute)")
    return name


def _arg(v, names: set, tensors: set, where: str, depth: int = 0):
    """One validated argument (raises ParamError)."""
    if depth > 4:
        _fail(where, "arguments nest too deep")
    if v is None or isinstance(v, (bool, int, str)):
        if isinstance(v, str) and len(v) > 200:
            _fail(where, "a string argument is longer than 200 characters")
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            _fail(where, "numbers must be finite (write {\"float\": \"inf\"})")
        return v
    if isinstance(v, list):
        if len(v) > 64:
            _fail(where, "a list argument has more than 64 items")
        return [_arg(x, names, tensors, where, depth + 1) for x in v]
    if isinstance(v, dict) and len(v) == 1:
        (key, value), = v.items()
        ok = {"ref": lambda x: x in names, "self": lambda x: x in tensors, "dtype": lambda x: x in DTYPES,
              "device": lambda x: x == "input", "layout": lambda x: x in LAYOUTS,
              "memory_format": lambda x: x in MEMORY_FORMATS, "float": lambda x: x in ("inf", "-inf", "nan")}
        if key in ok and isinstance(value, str) and ok[key](value):
            return {key: value}
        _fail(where, f"{key!r}: {value!r} is not a known value, tensor or option")
    _fail(where, f"{type(v).__name__} is not an argument a program may hold")


def _nodes(block, n_inputs: int, tensors: set, where: str) -> dict:
    if not isinstance(block, dict) or not isinstance(block.get("nodes"), list) or \
            not isinstance(block.get("result"), str):
        _fail(where, "needs 'nodes' and a 'result'")
    nodes = block["nodes"]
    if not 0 < len(nodes) <= MAX_NODES:
        _fail(where, f"holds 1 to {MAX_NODES} nodes")
    names = {input_name(i, n_inputs) for i in range(n_inputs)}
    out = []
    for i, node in enumerate(nodes):
        at = f"{where} node {i}"
        if not (isinstance(node, list) and len(node) == 4 and isinstance(node[0], str) and isinstance(node[1], str)
                and isinstance(node[2], list) and isinstance(node[3], dict)):
            _fail(at, "must be [name, target, args, kwargs]")
        name, target, args, kwargs = node
        if not value_name(name) or name in names:
            _fail(at, f"{name!r} is not a free lower-case name")
        if not (target in OPERATORS or (ATEN.match(target) and not DENIED.search(target))):
            _fail(at, f"{target!r} is not an ATen operator or a Python operator a program may call")
        if target in OPERATORS and (kwargs or len(args) != OPERATORS[target].count("{")):
            _fail(at, f"{target} takes {OPERATORS[target].count('{')} arguments")
        if len(args) > 32 or len(kwargs) > 16 or not all(isinstance(k, str) and NAME.match(k) for k in kwargs):
            _fail(at, "too many arguments, or a keyword that is not a name")
        out.append([name, target, [_arg(a, names, tensors, at) for a in args],
                    {k: _arg(a, names, tensors, at) for k, a in kwargs.items()}])
        names.add(name)
    if block["result"] not in names:
        _fail(where, f"its result {block['result']!r} is not one of its values")
    return {"nodes": out, "result": block["result"]}


def _tensor(t, i: int) -> dict:
    at = f"tensors[{i}]"
    if not isinstance(t, dict):
        _fail(at, "must be an object")
    name = _tensor_name(t.get("name"), at)
    kind, dtype = t.get("kind"), t.get("dtype")
    if kind not in ("parameter", "buffer", "constant"):
        _fail(at, "kind must be parameter, buffer or constant")
    if dtype not in DTYPES:
        _fail(at, f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    shape = _shape(t.get("shape"), at, rank=(0, 8), low=0)
    numel = math.prod(shape)
    if numel > MAX_NUMEL:
        _fail(at, "is too big")
    out = {"name": name, "kind": kind, "shape": shape, "dtype": dtype}
    if kind == "constant":
        values = t.get("values")
        if not isinstance(values, list) or len(values) != numel or numel > MAX_CONSTANT or \
                not all(isinstance(v, (int, float)) and (not isinstance(v, float) or math.isfinite(v))
                        for v in values):
            _fail(at, f"a constant holds its {numel} finite numbers (at most {MAX_CONSTANT})")
        out["values"] = list(values)
    else:
        init = t.get("init", "zeros")
        if init not in INITS:
            _fail(at, f"init must be one of {', '.join(INITS)}")
        out["init"] = init
    return out


def validate_program(value, name: str = "program") -> dict:
    """The program, checked and normalised (raises :class:`ParamError` naming the first problem)."""
    if not isinstance(value, dict):
        raise ParamError(f"{name}: must be an object (a captured module's graph)")
    inputs = value.get("inputs")
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= 16:
        _fail("inputs", "one to 16 input shapes")
    inputs = [_shape(s, f"inputs[{i}]") for i, s in enumerate(inputs)]
    output = _shape(value.get("output"), "output")
    tensors_in = value.get("tensors", [])
    if not isinstance(tensors_in, list) or len(tensors_in) > MAX_TENSORS:
        _fail("tensors", f"a list of at most {MAX_TENSORS}")
    tensors = [_tensor(t, i) for i, t in enumerate(tensors_in)]
    names = [t["name"] for t in tensors]
    if len(set(names)) != len(names):
        _fail("tensors", "a name is used twice")
    prefixes = {".".join(n.split(".")[:k]) for n in names for k in range(1, n.count(".") + 1)}
    if prefixes & set(names):
        _fail("tensors", "a tensor's name is also a module's")
    src = value.get("source", "")
    if not isinstance(src, str) or len(src) > 300:
        _fail("source", "the original class's name, as text")
    out = {"source": src, "inputs": inputs, "output": output, "tensors": tensors,
           "train": _nodes(value.get("train"), len(inputs), set(names), "train")}
    out["eval"] = None if value.get("eval") is None else _nodes(value["eval"], len(inputs), set(names), "eval")
    for key in ("params", "macs"):
        v = value.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2 ** 62:
            _fail(key, "a count")
        out[key] = v
    return out


def input_name(i: int, n: int) -> str:
    return "x" if n == 1 else f"x{i}"


# ------------------------------------------------------------------------------------------- source text

def _ref(name: str) -> str:
    """``self.conv.weight``; a part that is a number is an index (the containers are ModuleDicts)."""
    out = "self"
    for part in name.split("."):
        out += f".{part}" if part.isidentifier() else f"[{part!r}]"
    return out


def _text(v, first_input: str) -> str:
    if isinstance(v, dict):
        (key, value), = v.items()
        return {"ref": lambda: value, "self": lambda: _ref(value), "dtype": lambda: f"torch.{value}",
                "device": lambda: f"{first_input}.device", "layout": lambda: f"torch.{value}",
                "memory_format": lambda: f"torch.{value}", "float": lambda: f"float({value!r})"}[key]()
    if isinstance(v, list):
        return "[" + ", ".join(_text(x, first_input) for x in v) + "]"
    return repr(v)


# ATen operators written as the PyTorch a person writes: each is the same operator with the same positional
# arguments (torch.batch_norm and torch.layer_norm are ATen's own, whose arguments F's reorder). An infix form
# needs its exact arguments and no keywords; anything else stays ``torch.ops.aten...``.
_INFIX = {"aten.add.Tensor": ("{0} + {1}", 2), "aten.sub.Tensor": ("{0} - {1}", 2), "aten.mul.Tensor": ("{0} * {1}", 2),
          "aten.div.Tensor": ("{0} / {1}", 2), "aten.matmul.default": ("{0} @ {1}", 2),
          "aten.pow.Tensor_Scalar": ("{0} ** {1}", 2), "aten.pow.Tensor_Tensor": ("{0} ** {1}", 2),
          "aten.neg.default": ("-{0}", 1)}
_CALLS = {"aten.conv1d.default": "F.conv1d", "aten.conv2d.default": "F.conv2d", "aten.conv3d.default": "F.conv3d",
          "aten.linear.default": "F.linear", "aten.max_pool2d.default": "F.max_pool2d",
          "aten.avg_pool2d.default": "F.avg_pool2d", "aten.adaptive_avg_pool2d.default": "F.adaptive_avg_pool2d",
          "aten.pad.default": "F.pad", "aten.hardtanh.default": "F.hardtanh", "aten.silu.default": "F.silu",
          "aten.gelu.default": "F.gelu", "aten.relu.default": "torch.relu", "aten.sigmoid.default": "torch.sigmoid",
          "aten.tanh.default": "torch.tanh", "aten.batch_norm.default": "torch.batch_norm",
          "aten.layer_norm.default": "torch.layer_norm", "aten.cat.default": "torch.cat",
          "aten.where.self": "torch.where", "aten.softmax.int": "torch.softmax"}
_METHODS = {"aten.mean.dim": "mean", "aten.sum.dim_IntList": "sum", "aten.amax.default": "amax",
            "aten.amin.default": "amin", "aten.view.default": "view", "aten.reshape.default": "reshape",
            "aten.permute.default": "permute", "aten.flatten.using_ints": "flatten", "aten.transpose.int": "transpose",
            "aten.unsqueeze.default": "unsqueeze", "aten.squeeze.dim": "squeeze", "aten.expand.default": "expand",
            "aten.index_select.default": "index_select", "aten.cumsum.default": "cumsum", "aten.abs.default": "abs",
            "aten.sqrt.default": "sqrt", "aten.rsqrt.default": "rsqrt", "aten.exp.default": "exp",
            "aten.log.default": "log", "aten.clamp.default": "clamp", "aten.unfold.default": "unfold",
            "aten.contiguous.default": "contiguous", "aten.add_.Tensor": "add_", "aten.copy_.default": "copy_",
            "aten.roll.default": "roll"}


def _expr(target: str, texts: list, keywords: list) -> str:
    if target in OPERATORS:
        return OPERATORS[target].format(*texts)
    infix = _INFIX.get(target)
    if infix is not None and len(texts) == infix[1] and not keywords:
        return infix[0].format(*texts)
    if target in _CALLS:
        return f"{_CALLS[target]}({', '.join(texts + keywords)})"
    if target in _METHODS and texts:
        return f"{texts[0]}.{_METHODS[target]}({', '.join(texts[1:] + keywords)})"
    return f"torch.ops.{target}({', '.join(texts + keywords)})"


def _lines(block: dict, first_input: str, indent: str) -> list:
    lines = []
    for name, target, args, kwargs in block["nodes"]:
        texts = [_text(a, first_input) for a in args]
        keywords = [f"{k}={_text(a, first_input)}" for k, a in kwargs.items()]
        lines.append(f"{indent}{name} = {_expr(target, texts, keywords)}")
    lines.append(f"{indent}return {block['result']}")
    return lines


def _new_tensor(t: dict) -> str:
    shape = ", ".join(map(str, t["shape"])) if t["shape"] else "()"
    dtype = "" if t["dtype"] == "float32" else f", dtype=torch.{t['dtype']}"
    if t["kind"] == "constant":
        return f"torch.tensor({t['values']!r}{dtype}).reshape({shape})"
    init = t["init"]
    if init == "kaiming" and len(t["shape"]) >= 2:
        return f"nn.init.kaiming_uniform_(torch.empty({shape}{dtype}), a=5 ** 0.5)"
    return f"torch.{'ones' if init == 'ones' else 'zeros'}({shape}{dtype})"


def class_source(program: dict, class_name: str, label: str) -> str:
    """The ``nn.Module`` class that runs ``program``: its tensors under their state_dict names, its forward the
    captured operators (a training and an evaluation branch where they differ)."""
    init = ["        super().__init__()"]
    made = set()
    for t in program["tensors"]:
        parts = t["name"].split(".")
        for k in range(1, len(parts)):
            path = ".".join(parts[:k])
            if path not in made:
                made.add(path)
                owner = _ref(".".join(parts[:k - 1])) if k > 1 else "self"
                init.append(f"        {owner}.add_module({parts[k - 1]!r}, nn.ModuleDict())")
        owner = _ref(".".join(parts[:-1])) if len(parts) > 1 else "self"
        value = _new_tensor(t)
        if t["kind"] == "parameter":
            grad = "" if t["dtype"].startswith("float") or t["dtype"] == "bfloat16" else ", requires_grad=False"
            init.append(f"        {owner}.{parts[-1]} = nn.Parameter({value}{grad})")
        else:
            persistent = "" if t["kind"] == "buffer" else ", persistent=False"
            init.append(f"        {owner}.register_buffer({parts[-1]!r}, {value}{persistent})")
    n = len(program["inputs"])
    args = [input_name(i, n) for i in range(n)]
    first = args[0]
    forward = []
    if program["eval"] is not None:
        forward.append("        if self.training:")
        forward += _lines(program["train"], first, "            ")
        forward += _lines(program["eval"], first, "        ")
    else:
        forward += _lines(program["train"], first, "        ")
    shapes = ", ".join("x".join(map(str, s)) for s in program["inputs"])
    doc = f"{label}: {program['source'] or 'a module'} as torch.export captured it at input {shapes}."
    doc = f'"""{doc}"""' if re.fullmatch(r"[\w .,:()/-]+", doc) else repr(doc)
    return "\n".join([f"class {class_name}(nn.Module):", f"    {doc}", "", "    def __init__(self) -> None:",
                      *init, "", f"    def forward(self, {', '.join(args)}):", *forward]) + "\n"
