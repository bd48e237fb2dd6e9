"""An ``nn.Module`` as a block graph, through torch.fx symbolic tracing.

Every module the trace calls becomes a block whose id is its module path (so the compiled network's state_dict
keys equal the source's), every function a merge or a primitive. Modules the library knows as a whole
(torchvision's BasicConv2d, Inception and InceptionA-E, InceptionAux, BasicBlock, Bottleneck) are not traced
into: they become the library's composite with its parameters read from their children. Containers with one input
and one output (InvertedResidual, Fire, MBConv, a dense block, ...) become groups named after their class, with
the module path as the group's id. What cannot be mapped is collected and reported at once.

The trace runs in training mode, so auxiliary classifiers (GoogLeNet, Inception-v3) are part of the graph.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

from ..core.errors import ImportProblem, ModelImportError
from ..core.graph import Graph
from . import progress
from .structure import group_containers, place
from .torch_rules import block_path, read_module, rules, trace



@dataclass
class Imported:
    graph: Graph
    state: dict                      # the source's state_dict: the compiled graph's, key for key
    notes: list = field(default_factory=list)

    @property
    def captured(self) -> list:
        """The notes that name a captured block (a module, a call, an ONNX node); the others say what was left
        out."""
        return [n for n in self.notes if " captured " in n]


# --------------------------------------------------------------------------------------------- the trace

class _Builder:
    def __init__(self, model, input_shape, name, captured=frozenset()):
        self.model, self.name = model, name
        self.captured = captured     # module paths captured whole (no kind, or their inside cannot be mapped)
        self.wanted: set = set()     # modules found to hold something unmappable: captured whole next time
        self.graph = Graph(name)
        self.problems: list[ImportProblem] = []
        self.value: dict = {}        # fx node -> block id, BATCH, a constant, or a tuple of those
        self.used: dict = {}         # module path -> times called
        self.input_shape = input_shape
        self.module_names = {block_path(n) for n, _ in model.named_modules() if n}
        self.rules = rules()

    def problem(self, kind, path, why):
        self.problems.append(ImportProblem(kind, path, why))

    # ---------------------------------------------------------------- ids
    def fresh(self, base: str) -> str:
        """An id for a block that is not a module (an add, a concat, an output), free of every module path."""
        base = block_path(base)
        cand, n = base, 2
        while cand in self.graph or cand in self.module_names:
            cand, n = f"{base}_{n}", n + 1
        return cand

    def block(self, kind, params, inputs, block_id, node):
        try:
            bid = self.graph.add_block(kind, params, block_id)
        except Exception as e:  # noqa: BLE001  a parameter out of the library's range: reported with the path
            self.problem("parameter", block_id, str(e))
            return None
        for src in inputs:
            if src is None:
                continue  # its producer could not be mapped: that problem is already listed
            if not isinstance(src, str) or src not in self.graph:
                self.problem("input", block_id, f"takes {type(src).__name__} where a tensor is expected")
                continue
            self.graph.connect(src, bid, check_cycle=False)
        return bid

    # ---------------------------------------------------------------- nodes
    def run(self, fx_graph):
        from ..core.errors import GraphEditError
        for node in fx_graph.nodes:
            try:
                self.value[node] = getattr(self, f"_{node.op}")(node)
            except _Skip as s:
                self.value[node] = self._instead(node, ImportProblem(s.kind, self._where(node), s.why))
            except GraphEditError as e:  # a size or value the library refuses (an input over the largest size)
                self.value[node] = self._instead(node, ImportProblem("parameter", self._where(node), str(e)))
            except Exception as e:  # noqa: BLE001  the model's arguments break a rule: named with the call
                what = getattr(node.target, "__name__", str(node.target))
                self.value[node] = self._instead(node, ImportProblem(
                    "function" if node.op != "call_module" else "module", self._where(node),
                    f"{what} cannot be mapped with these arguments ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:160] if str(e) else ''})"))

    def _instead(self, node, problem: ImportProblem):
        """What a node no kind maps becomes: the module it belongs to, captured whole on the next trace; at the
        model's own level the call itself, captured; else (shared weights, a tensor attribute the model reads
        itself) the problem is listed."""
        owner = node.target if node.op == "call_module" else self._owner(node)
        if owner and owner not in self.captured:
            self.wanted.add(owner)
            return None
        if not owner and node.op in ("call_function", "call_method") and not self._after_problem(node):
            from .capture import CaptureError, capture_call
            try:
                made, inputs = capture_call(node, [self._arg(a) for a in node.args],
                                            {k: self._arg(v) for k, v in node.kwargs.items()}, self._example)
            except CaptureError as e:
                self.problems.append(ImportProblem(e.kind, problem.path, f"{problem.why}; {e.why}"))
                return None
            return self._captured_block(made, inputs, self.fresh(node.name))
        self.problems.append(problem)
        return None

    def _owner(self, node) -> str:
        """The innermost module (not a plain container) whose forward made ``node``; "" for the model's own."""
        from torch import nn
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        for path, cls in reversed(stack):
            if path and not (isinstance(cls, type) and issubclass(cls, (nn.Sequential, nn.ModuleList,
                                                                         nn.ModuleDict))):
                return path
        return ""

    def _example(self, value):
        """A zero batch of two shaped like block ``value``'s output (None when it is not a block)."""
        import torch
        if not (isinstance(value, str) and value in self.graph):
            return None
        shape = self._shape(value)
        return None if shape is None else torch.zeros(2, *shape)

    def _captured_block(self, made: dict, inputs: list, block_id: str):
        from blocks import REGISTRY
        return self.block(REGISTRY.capture_kind(), made, inputs, block_id, None)

    def _capture_module(self, node, m, path, ins):
        from .capture import CaptureError, capture
        if node.kwargs:
            raise _Skip("module", f"{type(m).__name__} called with keyword arguments")
        args = []
        for a in ins:
            if isinstance(a, str) and a in self.graph:
                ex = self._example(a)
                if ex is None:
                    raise _Skip("module", f"the shape of {a} is not known")
                args.append(ex)
            elif a is None or isinstance(a, (bool, int, float, str)):
                args.append(a)
            else:
                raise _Skip("module", f"{type(m).__name__} takes a {type(a).__name__} argument")
        progress.step(f"Capturing {path} ({type(m).__name__}): no kind stands for it")
        try:
            made = capture(m, args, type(m).__name__, f"{type(m).__module__}.{type(m).__qualname__}")
        except CaptureError as e:
            self.problems.append(ImportProblem(e.kind, path, f"{type(m).__name__}: {e.why}"))
            return None
        return self._captured_block(made, [a for a in ins if isinstance(a, str) and a in self.graph],
                                    self._module_id(m, path))

    def _module_id(self, m, path) -> str:
        """The block id of a call of module ``path``: its path; a second call of a module without weights gets
        ``path_2`` (shared weights have no block)."""
        calls = self.used.get(path, 0)
        self.used[path] = calls + 1
        block_id = block_path(path)
        if calls:
            if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
                raise _Skip("module", f"{type(m).__name__} is called {calls + 1} times (shared weights have no "
                                      "block)")
            block_id = self.fresh(f"{block_id}_{calls + 1}")
        return block_id

    def _where(self, node):
        stack = node.meta.get("nn_module_stack") or {}
        path = next(reversed(stack.values()))[0] if stack else ""
        return path or node.name

    def _arg(self, a):
        import torch.fx as fx
        if isinstance(a, fx.Node):
            return self.value.get(a)
        if isinstance(a, (list, tuple)):
            return type(a)(self._arg(x) for x in a) if not hasattr(a, "_fields") else tuple(self._arg(x) for x in a)
        return a

    def _placeholder(self, node):
        from blocks.primitives import input_params
        return self.graph.add_block("input", input_params(self.input_shape), self.fresh("input"))

    def _get_attr(self, node):
        raise _Skip("parameter", f"a tensor attribute ({node.target}) used directly in forward has no block")

    def _call_module(self, node):
        path = node.target
        m = self.model.get_submodule(path)
        ins = [self._arg(a) for a in node.args]
        entry = None if path in self.captured else self.rules.modules.get(type(m))
        made = read_module(*entry, m, self.rules) if entry is not None and not node.kwargs else None
        if made is None or isinstance(made, str):  # no kind stands for it, or its kind refuses this one
            return self._capture_module(node, m, path, ins)
        block_id = self._module_id(m, path)
        value = None
        for i, (kind, params, child) in enumerate(made):  # the first block has the module's path (its weights)
            value = self.block(kind, params, ins if i == 0 else [value],
                               block_id if i == 0 else self.fresh(f"{block_id}_{child.replace('.', '_')}"), node)
        return value

    def _call_method(self, node):
        return None if self._after_problem(node) else self._function(node.target, node)

    def _call_function(self, node):
        return None if self._after_problem(node) else self._function(node.target, node)

    def _after_problem(self, node) -> bool:
        """True for plumbing (an attribute, an index) on a value that could not be mapped: that problem is already
        listed. Real operations after it are still checked, so every unmappable op is listed at once."""
        import torch.fx as fx
        if node.target not in (getattr, operator.getitem):
            return False
        found = []
        fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n))
        return any(n in self.value and self.value[n] is None and n.op != "output" for n in found)

    def _output(self, node):
        outs = self._arg(node.args[0])
        fields = getattr(outs, "fields", None)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        names = list(fields) if fields else [f"aux{i}" for i in range(len(outs))]
        for i, (o, field) in enumerate(zip(outs, names)):
            if o is None:
                continue
            bid = self.fresh("output" if i == 0 else f"{field}_output")
            params = {} if i == 0 else dict(role="aux", loss_weight=0.3)
            self.block("output", params, [o], bid, node)
        return None

    # ---------------------------------------------------------------- functions and methods
    def _function(self, target, node):
        """Plumbing (sizes, shapes, indexing, named outputs) here; every operation by the kind that says it
        stands for that function or method (``FromTorch.functions``)."""
        from blocks.imports import BATCH, Call, Chain, Made, Split
        name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        args = [self._arg(a) for a in node.args]
        kw = {k: self._arg(v) for k, v in node.kwargs.items()}
        where = self._where(node)

        def new(kind, params, inputs, base=None):
            return self.block(kind, params, inputs, self.fresh(f"{where}.{base or kind}" if where != node.name
                                                              else (base or node.name)), node)

        if target == "size":
            if args[1:] == [0] or kw.get("dim") == 0:
                return BATCH
            raise _Skip("function", "sizes other than the batch size have no block")
        if target is getattr and args[1:] == ["shape"]:
            return ("shape",)
        if target is operator.getitem:
            seq, index = args
            if seq == ("shape",) and index == 0:
                return BATCH
            if isinstance(seq, tuple) and isinstance(index, int):
                return seq[index]
            if not (isinstance(seq, str) and seq in self.graph):
                raise _Skip("function", f"indexing {type(seq).__name__} has no block")
        if target in ("contiguous",):
            return args[0]
        if isinstance(target, type) and issubclass(target, tuple) and hasattr(target, "_fields"):
            return _Named(target._fields, [*args, *(kw[f] for f in target._fields[len(args):])])  # outputs
        entry = self.rules.functions.get(f"Tensor.{target}" if isinstance(target, str) else target)
        if entry is None:
            raise _Skip("function", f"{name} has no block kind")
        spec, rule, path = entry
        call = Call(path, args, kw, lambda a: isinstance(a, str) and a in self.graph, self._shape)
        if rule is not None:
            made = rule(call)
        else:
            made = {"inplace": bool(kw.get("inplace", False))} if spec.inplace else {}
        if isinstance(made, str):
            raise _Skip("function", made)
        if isinstance(made, Made):
            return new(made.kind or spec.type_id, made.params, made.inputs)
        if isinstance(made, Chain):
            value = args[0]
            for i, (kind, params) in enumerate(made.steps):
                value = new(kind, params, [value], name if i == 0 else f"{name}_{kind}")
            return value
        if isinstance(made, Split):
            return tuple(new(kind, params, [args[0]], base) for (kind, params), base in zip(made.steps, made.names))
        return new(spec.type_id, made, [args[0]])

    def _shape(self, block_id):
        from ..core.analysis import analyze
        try:
            return analyze(self.graph).blocks[block_id].out_shape
        except Exception:  # noqa: BLE001  not a block, or not analysable yet
            return None


class _Named(tuple):
    """A named tuple of outputs (GoogLeNetOutputs, InceptionOutputs): the values and their field names."""

    def __new__(cls, fields, values):
        obj = super().__new__(cls, values)
        obj.fields = tuple(fields)
        return obj


class _Skip(Exception):
    def __init__(self, kind, why):
        super().__init__(why)
        self.kind, self.why = kind, why


def _key(key: str) -> str:
    """A state_dict key with its module path made a block path (the tensor's own name kept)."""
    path, _, leaf = key.rpartition(".")
    return f"{block_path(path)}.{leaf}" if path else key


def default_input(model) -> tuple:
    """The input a model is made for: 3x299x299 for Inception-v3, else 3x224x224."""
    try:
        from torchvision.models import Inception3
        if isinstance(model, Inception3):
            return (3, 299, 299)
    except ImportError:
        pass
    return (3, 224, 224)


def _whole(model, shape, name, why) -> Imported:
    """A model whose own forward cannot be traced, as one captured block between its input and output."""
    import torch

    from blocks import REGISTRY

    from .capture import CaptureError, capture
    try:
        made = capture(model, [torch.zeros(2, *shape)], type(model).__name__,
                       f"{type(model).__module__}.{type(model).__qualname__}")
    except CaptureError as e:
        if e.kind == "control flow":  # the reason fx could not trace it either
            raise ModelImportError(name, [e.problem(type(model).__name__)]) from None
        raise ModelImportError(name, [ImportProblem("trace", type(model).__name__, why),
                                      e.problem(type(model).__name__)]) from None
    from blocks.primitives import input_params
    graph = Graph(name)
    graph.add_block("input", input_params(shape), "input")
    graph.add_block(REGISTRY.capture_kind(), made, "model")
    graph.add_block("output", {}, "output")
    graph.connect("input", "model")
    graph.connect("model", "output")
    return _finish(graph, model, shape, name,
                   {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}, group=False)


def import_module(model, input_shape=None, name: str | None = None) -> Imported:
    """The block graph of ``model`` with its weights. A module no kind stands for (or whose inside no kind maps)
    becomes a captured block with its exact operators; :class:`ModelImportError` lists what cannot be computed
    exactly (control flow on tensor values, shared weights)."""
    name = name or type(model).__name__
    shape = tuple(input_shape or default_input(model))
    captured: set = set()
    for n in range(len(list(model.modules())) + 1):  # each pass captures more modules whole: it ends
        progress.step(f"Tracing {name}'s forward" + (f" (pass {n + 1}: {len(captured)} modules captured whole)"
                                                     if n else ""))
        traced, failed = trace(model, captured)
        if traced is None:
            return _whole(model, shape, name, failed)
        captured |= failed
        b = _Builder(model, shape, name, frozenset(captured))
        b.run(traced)
        if not b.wanted - captured:
            break
        captured |= b.wanted
    if b.problems:  # what no block of its own can hold (a tensor the forward reads itself, shared weights)
        if any(p.kind == "control flow" for p in b.problems):
            raise ModelImportError(name, b.problems)
        from ..core.errors import GraphEditError
        try:  # the whole model is still computed exactly by one captured block
            whole = _whole(model, shape, name, "")
        except (ModelImportError, GraphEditError):
            raise ModelImportError(name, b.problems) from None
        whole.notes.insert(0, "the whole model is one captured block: " + "; ".join(f"{p.path}: {p.why}"
                                                                                      for p in b.problems[:5]))
        return whole
    state = {_key(k): v.detach().clone() for k, v in model.state_dict().items()}
    return _finish(b.graph, model, shape, name, state)


def _finish(graph: Graph, model, shape, name, state: dict, group: bool = True) -> Imported:
    """The imported graph in the model's order, its containers grouped, checked (shapes, the weights key for key,
    the outputs against the model's) and laid out."""
    import torch
    renamed = {k: n for k, n in zip(model.state_dict(), state) if k != n}
    if renamed:
        graph.meta["renamed_weights"] = renamed
    progress.step(f"Checking {len(graph)} blocks: shapes, weights, outputs against the model's")
    if group:
        graph = _in_registration_order(graph, model)
        group_containers(graph, model)
        graph = _in_registration_order(graph, model)  # a group where its first block was
    from ..core.analysis import analyze
    a = analyze(graph)
    if a.errors:
        raise ModelImportError(name, [ImportProblem("shape", e.block or "", e.message) for e in a.errors[:20]])
    from ..backend.compiler import compile_graph
    from ..train.weights import weights_problems
    with torch.device("meta"):
        expected = compile_graph(graph, a).state_dict()
    unused = [k for k in state if k not in expected]  # tensors the model's forward never reads
    state = {k: v for k, v in state.items() if k in expected}
    problems = weights_problems(expected, state)
    if problems:
        raise ModelImportError(name, [ImportProblem("weights", "", p) for p in problems])
    from .verify import check_module
    check_module(graph, state, model, shape, name, a)  # the same outputs as the model's, or refused
    graph.meta["imported_from"] = type(model).__module__ + "." + type(model).__name__
    progress.step(f"Laying out {len(graph)} blocks")
    place(graph)
    from ..core.ir import lower
    notes = [f"{n.id}: {n.params['label']} captured whole ({n.params['program']['source']})"
             for n in lower(graph, a).nodes if n.spec.captures]  # those inside groups too (stem.0)
    notes += [f"{k}: not read by the model's forward, left out" for k in unused]
    return Imported(graph, state, notes)


def _in_registration_order(graph: Graph, model) -> Graph:
    """The graph with its blocks listed in the order the model registers its modules (a function block right
    after what it reads), so the network runs, and registers, them in the source's order wherever the wiring
    leaves a choice: GoogLeNet's aux heads after inception5b, RegNet's projection before its branch."""
    rank = {block_path(p): i for i, (p, _) in enumerate(model.named_modules()) if p}
    keys: dict = {}
    for pos, bid in enumerate(graph.ids()):  # the traced order: a block's inputs come before it
        parts = bid.split(".")
        r = next((rank[".".join(parts[:i])] for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in rank), None)
        if r is None:
            r = max((keys[s][0] for _, s in graph.inputs(bid) if s in keys), default=-1)
        keys[bid] = (r, pos)
    order = sorted(keys, key=keys.__getitem__)
    return graph.copy(order) if order != graph.ids() else graph


__all__ = ["Imported", "import_module", "default_input"]
