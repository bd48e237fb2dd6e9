"""A module no kind stands for, captured exactly: ``torch.export`` in training and in evaluation mode, with the
batch dimension dynamic, gives its ATen operators; they become a "captured" block's program
(:mod:`blocks.program`), its weights keep their state_dict names, its MACs are measured (FlopCounterMode / 2).

Shape arithmetic and shape checks are evaluated by the capture (a same-padding convolution's padding becomes
numbers); control flow on the *values* of a tensor cannot be captured and is refused with one message.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import re

from ..core.errors import ImportProblem

CHECKS = {"aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default",
          "aten.sym_constrain_range.default", "aten._assert_tensor_metadata.default"}  # guards: not computation
MAX_CONSTANT = 65536


class CaptureError(Exception):
    """Why a module cannot be captured exactly (for an :class:`ImportProblem`)."""

    def __init__(self, kind: str, why: str):
        super().__init__(why)
        self.kind, self.why = kind, why

    def problem(self, path: str) -> ImportProblem:
        return ImportProblem(self.kind, path, self.why)


def _bound(module, template):
    """``module`` called with ``template`` (its arguments, tensors as ``None``) filled from the tensors given."""
    from torch import nn

    class Bound(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = module

        def forward(self, tensors):
            it = iter(tensors)
            return self.m(*[next(it) if a is None else a for a in template])
    return Bound()


def _dtype(d) -> str:
    return str(d).removeprefix("torch.")


def _init(t, parameter: bool) -> str:
    if t.numel() and bool((t == 0).all()):
        return "zeros"
    if t.numel() and bool((t == 1).all()):
        return "ones"
    return "kaiming" if parameter and t.dim() >= 2 else "zeros"


def _values(t) -> list:
    flat = t.detach().reshape(-1).tolist()
    if any(isinstance(v, float) and not math.isfinite(v) for v in flat):
        raise CaptureError("capture", "a constant tensor holds inf or nan")
    return flat


def _fresh_state(module) -> dict:
    """The module's state as a new one would have it (each submodule's ``reset_parameters`` and
    ``reset_running_stats``): what a captured block's tensors start from without weights."""
    import copy
    fresh = copy.deepcopy(module)
    for sub in fresh.modules():
        for reset in ("reset_parameters", "reset_running_stats"):
            fn = getattr(sub, reset, None)
            if callable(fn):
                try:
                    fn()
                except Exception:  # noqa: BLE001  a module's own reset: the values it has are kept
                    pass
    return fresh.state_dict()


def _tensors(module) -> tuple[list, dict]:
    """Every tensor of ``module`` in its state_dict's order and names, and its non-persistent buffers (kept as
    constants, with their values)."""
    import torch
    state = module.state_dict(keep_vars=True)
    fresh = _fresh_state(module)
    params = {name for name, _ in module.named_parameters(remove_duplicate=False)}
    out = []
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise CaptureError("capture", f"its state {name} is not a tensor")
        kind = "parameter" if name in params else "buffer"
        out.append({"name": name, "kind": kind, "shape": list(t.shape), "dtype": _dtype(t.dtype),
                    "init": _init(fresh[name].detach(), kind == "parameter")})
    for name, t in module.named_buffers(remove_duplicate=False):
        if name in state:
            continue
        if t.numel() > MAX_CONSTANT:
            raise CaptureError("capture", f"buffer {name} ({t.numel()} numbers) is not saved with the weights and "
                                          "too big to keep in the project")
        out.append({"name": name, "kind": "constant", "shape": list(t.shape), "dtype": _dtype(t.dtype),
                    "values": _values(t)})
    return out, {t["name"]: t for t in out}


class _Names:
    def __init__(self, inputs):
        self.taken = set(inputs)

    def __call__(self, name: str) -> str:
        from blocks.program import value_name
        base = re.sub(r"[^a-z0-9_]", "_", name.lower())[:60] or "v"
        if not value_name(base):  # the validator's own rule: a keyword, a dunder, a reserved name
            base = "v_" + base.lstrip("_")
        cand, n = base, 2
        while cand in self.taken:
            cand, n = f"{base}_{n}", n + 1
        self.taken.add(cand)
        return cand


def _program(ep, n_inputs: int, tensors: dict, constants: list) -> dict:
    """The program of one exported graph: its nodes, with parameters and buffers read from ``self``."""
    import torch
    import torch.fx as fx
    from torch.export.graph_signature import InputKind, OutputKind

    from blocks.program import OPERATORS, input_name
    sig = ep.graph_signature
    names = _Names([input_name(i, n_inputs) for i in range(n_inputs)])
    value: dict = {}
    users = 0
    for spec in sig.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            value[spec.arg.name] = {"ref": input_name(users, n_inputs)}
            users += 1
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            target = spec.target.removeprefix("m.")
            if target not in tensors:
                raise CaptureError("capture", f"it reads {target}, which is not one of its own tensors")
            value[spec.arg.name] = {"self": target}
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            t = ep.constants[spec.target]
            if t.numel() > MAX_CONSTANT:
                raise CaptureError("capture", f"a constant of {t.numel()} numbers made in its forward")
            name = f"const_{len(constants)}"
            while name in tensors:
                name += "_"
            constants.append({"name": name, "kind": "constant", "shape": list(t.shape), "dtype": _dtype(t.dtype),
                              "values": _values(t)})
            value[spec.arg.name] = {"self": name}
        else:
            raise CaptureError("capture", f"its graph takes a {spec.kind.name.lower()} input")
    if users != n_inputs:
        raise CaptureError("capture", f"takes {users} tensors where {n_inputs} were given")

    def arg(a):
        if isinstance(a, fx.Node):
            if a.name not in value:
                raise CaptureError("capture", f"reads {a.name}, which it has not computed")
            return value[a.name]
        if isinstance(a, (list, tuple)):
            return [arg(x) for x in a]
        if isinstance(a, torch.dtype):
            return {"dtype": _dtype(a)}
        if isinstance(a, torch.device):
            return {"device": "input"}
        if isinstance(a, torch.layout):
            return {"layout": str(a).removeprefix("torch.")}
        if isinstance(a, torch.memory_format):
            return {"memory_format": str(a).removeprefix("torch.")}
        if isinstance(a, float) and not math.isfinite(a):
            return {"float": "nan" if a != a else ("inf" if a > 0 else "-inf")}
        if a is None or isinstance(a, (bool, int, float, str)):
            return a
        raise CaptureError("capture", f"an argument of type {type(a).__name__} cannot be kept")

    nodes, result = [], None
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            outs = node.args[0]
            user = [o for o, s in zip(outs, sig.output_specs) if s.kind == OutputKind.USER_OUTPUT]
            for o, s in zip(outs, sig.output_specs):
                if s.kind == OutputKind.BUFFER_MUTATION:
                    target = s.target.removeprefix("m.")
                    nodes.append([names("copy"), "aten.copy_.default", [{"self": target}, arg(o)], {}])
                elif s.kind != OutputKind.USER_OUTPUT:
                    raise CaptureError("capture", f"it changes its {s.kind.name.lower()}")
            if len(user) != 1 or not isinstance(user[0], fx.Node):
                raise CaptureError("capture", f"it returns {len(user)} values (a block has one output)")
            result = value[user[0].name]["ref"] if "ref" in value[user[0].name] else None
            if result is None:
                raise CaptureError("capture", "it returns one of its own tensors")
            continue
        if node.op != "call_function":
            raise CaptureError("capture", f"its graph has a {node.op} node")
        t = node.target
        if isinstance(t, torch._ops.OpOverload) and str(t) in CHECKS:
            continue
        if isinstance(t, torch._ops.OpOverload) and str(t).startswith("aten."):
            target = str(t)
        elif getattr(t, "__module__", None) in ("_operator", "operator") and f"operator.{t.__name__}" in OPERATORS:
            target = f"operator.{t.__name__}"
        else:
            raise CaptureError("capture", f"it calls {getattr(t, '__name__', t)}, which is not an ATen operator")
        name = names(node.name)
        nodes.append([name, target, [arg(a) for a in node.args], {k: arg(v) for k, v in node.kwargs.items()}])
        value[node.name] = {"ref": name}
    return {"nodes": nodes, "result": result}


def _why(e: Exception) -> CaptureError:
    seen = e
    while seen is not None:  # a refusal raised by the module's own forward, perhaps wrapped by torch.export
        if isinstance(seen, CaptureError):
            return seen
        if getattr(seen, "refusal", False):
            return CaptureError("operator", str(seen))
        seen = seen.__cause__ or seen.__context__
    text = f"{type(e).__name__}: {e}"
    if re.search(r"data.dependent|GuardOnDataDependent|DataDependent|dynamic control flow", text, re.I):
        return CaptureError("control flow", "its forward branches on the values of a tensor (data-dependent "
                                            "control flow): no fixed graph computes it")
    first = next((line for line in str(e).splitlines() if line.strip()), "")
    return CaptureError("capture", f"torch.export cannot capture it: {type(e).__name__}: {first[:240]}")


_INTERNALS = frozenset({"_parameters", "_buffers", "_non_persistent_buffers_set", "_modules", "_state_dict_hooks",
                        "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
                        "_backward_pre_hooks", "_backward_hooks", "_is_full_backward_hook", "_forward_hooks",
                        "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
                        "_forward_pre_hooks_with_kwargs"})
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_CACHE: dict = {}


def _plain(v, depth=0):
    """``v`` as part of a cache key, or raise TypeError when it could change what forward does unseen."""
    if v is None or isinstance(v, (bool, int, float, str, type)):
        return (type(v), v)
    if isinstance(v, (tuple, list)) and depth < 3:
        return (type(v), tuple(_plain(x, depth + 1) for x in v))
    if callable(v) and hasattr(v, "__qualname__"):  # a function or class: the same object, the same code
        return ("fn", v)
    raise TypeError(type(v).__name__)


def _signature(module, args):
    """What the capture of ``module`` with ``args`` depends on: its classes, their plain attributes, its tensors'
    names, shapes and dtypes (a non-persistent buffer's values), the arguments' shapes; None when something else
    could matter (a hook, an attribute of another type), so it is captured afresh."""
    import torch
    try:
        parts = []
        for name, sub in module.named_modules(remove_duplicate=False):
            if any(getattr(sub, h, None) for h in _HOOKS):
                return None
            attrs = tuple((k, _plain(v)) for k, v in sorted(vars(sub).items()) if k not in _INTERNALS)
            parts.append((name, type(sub), attrs))
        state = module.state_dict(keep_vars=True)
        tensors = tuple((n, tuple(t.shape), t.dtype, t.requires_grad) for n, t in state.items())
        loose = tuple((n, t.detach().numpy().tobytes()) for n, t in module.named_buffers() if n not in state
                      and t.numel() <= MAX_CONSTANT)
        call = tuple((tuple(a.shape[1:]), a.dtype) if isinstance(a, torch.Tensor) else _plain(a) for a in args)
        return (tuple(parts), tensors, loose, call)
    except (TypeError, AttributeError, RuntimeError):
        return None


def capture(module, args: list, label: str, source: str) -> dict:
    """The "captured" block parameters of ``module`` called with ``args`` (tensors with their batch dimension,
    and constants); raises :class:`CaptureError`. Modules alike (the same classes, attributes, tensor shapes and
    input shapes: a network's many equal blocks) are captured once."""
    import copy
    key = _signature(module, args)
    hit = _CACHE.get(key) if key is not None else None
    if hit is None:
        hit = _capture(module, args, source)
        if key is not None:
            if len(_CACHE) > 256:
                _CACHE.clear()
            _CACHE[key] = hit
    return {"label": label[:200] or "Module", "program": copy.deepcopy(hit)}


def _capture(module, args: list, source: str) -> dict:
    import torch
    from torch.export import Dim, export
    from torch.utils.flop_counter import FlopCounterMode

    from blocks.program import validate_program
    tensors_in = [a for a in args if isinstance(a, torch.Tensor)]
    if not tensors_in:
        raise CaptureError("capture", "it takes no tensor")
    template = [None if isinstance(a, torch.Tensor) else a for a in args]
    shapes = [list(t.shape[1:]) for t in tensors_in]
    if any(not s or len(s) > 4 for s in shapes):
        raise CaptureError("capture", "an input is not a batch of C, C x L, C x H x W or C x D x H x W tensors")
    tensors, by_name = _tensors(module)
    wrapper = _bound(module, template)
    example = tuple(torch.zeros(2, *s, dtype=t.dtype) for s, t in zip(shapes, tensors_in))
    batch = Dim("batch", min=1, max=1 << 20)
    programs, constants = {}, []
    was = module.training
    try:
        for mode in ("train", "eval"):
            wrapper.train(mode == "train")
            logging.disable(logging.WARNING)  # torch.export logs (and prints) the graph of a failed capture
            try:
                with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                    ep = export(wrapper, (example,), dynamic_shapes=(tuple({0: batch} for _ in example),),
                                strict=False)
            except Exception as e:  # noqa: BLE001  torch.export's many refusals: named for the person
                raise _why(e) from None
            finally:
                logging.disable(logging.NOTSET)
            programs[mode] = _program(ep, len(example), by_name, constants)
        wrapper.eval()
        with torch.no_grad():
            with FlopCounterMode(display=False) as fc:  # the MACs of one sample
                out = wrapper(tuple(t[:1] for t in example))
            two = wrapper(example)
            if not isinstance(two, torch.Tensor) or not isinstance(out, torch.Tensor) or two.dim() < 1 or \
                    out.dim() < 1 or two.shape[0] != 2 or out.shape[0] != 1 or two.shape[1:] != out.shape[1:]:
                raise CaptureError("capture", "its output's first dimension is not the batch (it mixes the batch "
                                              "with the other sizes)")
    finally:
        module.train(was)
    if not isinstance(out, torch.Tensor) or not 1 <= out.dim() - 1 <= 4:
        raise CaptureError("capture", "its output is not one tensor of C, C x L or C x H x W values")
    same = programs["train"] == programs["eval"]
    program = {"source": source, "inputs": shapes, "output": list(out.shape[1:]), "tensors": tensors + constants,
               "train": programs["train"], "eval": None if same else programs["eval"],
               "params": sum(p.numel() for p in module.parameters()), "macs": fc.get_total_flops() // 2}
    from blocks.spec import ParamError
    try:
        return validate_program(program)
    except ParamError as e:
        raise CaptureError("capture", f"its capture cannot be kept: {e}") from None


def capture_call(node, args: list, kwargs: dict, example) -> tuple[dict, list]:
    """One call of the model's own forward (``x.mean((2, 3))``, ``x * 0.5``) captured as a block: its
    parameters and the blocks it reads, in order. ``args``/``kwargs`` hold block ids for tensors; ``example(id)``
    gives a batch shaped like that block's output."""
    import torch
    import torch.fx as fx
    from torch import nn

    from blocks.imports import BATCH
    g = fx.Graph()
    inputs, examples, placeholders = [], [], {}

    def conv(a):
        if isinstance(a, str) and example(a) is not None:
            if a not in placeholders:
                placeholders[a] = g.placeholder(f"x{len(inputs)}")
                inputs.append(a)
                examples.append(example(a))
            return placeholders[a]
        if a is BATCH:
            if not placeholders:
                raise CaptureError("capture", "it reads the batch size of no tensor")
            return g.call_method("size", (next(iter(placeholders.values())), 0))
        if isinstance(a, (list, tuple)) and not hasattr(a, "fields"):
            return type(a)(conv(x) for x in a) if type(a) in (list, tuple) else tuple(conv(x) for x in a)
        if isinstance(a, slice):  # x[:, :, :7]: its bounds may be sizes
            return slice(conv(a.start), conv(a.stop), conv(a.step))
        if a is None or a is Ellipsis or isinstance(a, (bool, int, float, str, torch.dtype, torch.device)):
            return a
        raise CaptureError("capture", f"it takes a {type(a).__name__} that is not a tensor of the network")
    cargs = [conv(a) for a in args]
    ckwargs = {k: conv(v) for k, v in kwargs.items()}
    if not inputs:
        raise CaptureError("capture", "it reads no tensor of the network")
    if node.op == "call_method":
        out = g.call_method(node.target, tuple(cargs), ckwargs)
        label, source = node.target, f"torch.Tensor.{node.target}"
    else:
        out = g.call_function(node.target, tuple(cargs), ckwargs)
        label = getattr(node.target, "__name__", "call")
        source = f"{getattr(node.target, '__module__', None) or 'torch'}.{label}"
    g.output(out)
    return capture(fx.GraphModule(nn.Module(), g), examples, label, source), inputs


__all__ = ["capture", "capture_call", "CaptureError"]
