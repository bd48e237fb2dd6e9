"""What the kinds say about PyTorch, resolved (module classes and functions to kinds), and the torch.fx trace
of a model with them: a module a kind stands for, or one captured whole, is one call; a module fx cannot trace
into becomes one call too, to be captured."""
from __future__ import annotations

from dataclasses import dataclass


def block_path(path: str) -> str:
    """A module path as a block id: torch allows any name without a dot ("block1-0" in RegNet), a block id's
    parts are identifiers or numbers and its first part a name, so other characters become "_", a leading number
    takes "m_" (and names torch modules own get a free one); the same rule renames the state_dict's keys."""
    import re

    from blocks.names import PART, renamed_for_torch
    parts = [p if PART.match(p) else (re.sub(r"\W", "_", p) if re.sub(r"\W", "_", p)[:1].isalpha()
                                      else "m_" + re.sub(r"\W", "_", p)) for p in path.split(".")]
    if parts[0].isdigit():  # a top-level nn.Sequential's children ("0", "1.conv"): an id starts with a name
        parts[0] = "m_" + parts[0]
    return renamed_for_torch(".".join(parts))


def resolve(path: str):
    """The object an import path names (``torch.nn.Conv2d``, ``torch.nn.functional.relu``, ``operator.add``), or
    None when it does not exist here (a torchvision without that model)."""
    import importlib
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


@dataclass
class Rules:
    """The registry's PyTorch facts, resolved: module class -> (kind, rule); function or ``Tensor.method`` ->
    (kind, rule); the functions the tracer keeps whole."""
    modules: dict
    functions: dict
    wrapped: tuple


_RULES: list = []


def rules() -> Rules:
    """What every kind says it imports from (``BlockSpec.from_torch``), plus the modules of ``torch.nn`` a
    kind's constructor names whose parameters are that module's attributes (``nn.Mish``), so a new kind needs no
    entry here."""
    from torch import nn

    from blocks import REGISTRY
    key = tuple(spec.type_id for spec in REGISTRY)  # a kind added since (a plug-in) is seen
    if _RULES and _RULES[0][0] == key:
        return _RULES[0][1]
    modules, functions, wrapped = {}, {}, []
    for spec in REGISTRY:
        ft = spec.from_torch
        if ft is None:
            continue
        for path in ft.modules:
            cls = resolve(path)
            if isinstance(cls, type):
                modules.setdefault(cls, (spec, ft.module))
        for path in ft.functions:
            fn = path if path.startswith("Tensor.") else resolve(path)
            if fn is not None:
                functions.setdefault(fn, (spec, ft.call, path))
        wrapped += [f for f in map(resolve, ft.wrap) if f is not None]
    for spec in REGISTRY:
        call = spec.torch
        if spec.is_composite or call is None or not call.cls.startswith("nn."):
            continue
        cls = getattr(nn, call.cls[3:], None)
        if isinstance(cls, type):
            modules.setdefault(cls, (spec, None))
    made = Rules(modules, functions, tuple(wrapped))
    _RULES[:] = [(key, made)]
    return made


def read_module(spec, rule, m, table=None):
    """``[(kind, params, child path or "")]`` of module ``m`` by its kind's rule (one block, or a chain whose
    steps may be its children), or the reason it has no block."""
    from blocks import REGISTRY
    from blocks.imports import Chain, Sub, attributes
    made = rule(m) if rule is not None else attributes(spec, m)
    if isinstance(made, str):
        return made
    if not isinstance(made, Chain):
        return [(spec.type_id, made, "")]
    steps = []
    for step in made.steps:
        if not isinstance(step, Sub):
            steps.append((*step, ""))
            continue
        child = m.get_submodule(step.path)
        entry = (table or rules()).modules.get(type(child))
        if entry is None:
            return f"its {step.path} ({type(child).__name__}) has no block kind"
        if any(True for _ in child.parameters()) or any(True for _ in child.buffers()):
            return f"its {step.path} ({type(child).__name__}) has weights of its own"
        inner = read_module(*entry, child, table)
        if isinstance(inner, str):
            return inner
        steps += [(k, p, step.path) for k, p, _ in inner if not REGISTRY[k].watches]
    return steps


def trace(model, captured: set):
    """The model's fx graph (training mode: auxiliary heads run) with the modules of ``captured``, and those of a
    kind, as calls; a module whose forward fx cannot trace (control flow on shapes, calls it cannot proxy) is made
    a call too, and named in the second value. (None, why) when the model's own forward cannot be traced."""
    import torch.fx as fx
    from torch import nn
    table = rules()
    leaves = tuple(table.modules)
    plain = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    failed: set = set()

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return qualname in captured or qualname in failed or (isinstance(m, leaves) and type(m) in set(leaves)) \
                or (super().is_leaf_module(m, qualname) and not isinstance(m, plain))

        def call_module(self, m, forward, args, kwargs):
            path = self.path_of_module(m)
            if self.is_leaf_module(m, path):
                return super().call_module(m, forward, args, kwargs)
            last, stack = self.graph._root.prev, dict(self.module_stack)
            try:
                return super().call_module(m, forward, args, kwargs)
            except Exception:  # noqa: BLE001  fx cannot trace into it: it becomes one call, captured whole
                while self.graph._root.prev is not last:
                    self.graph.erase_node(self.graph._root.prev)
                self.module_stack.clear()
                self.module_stack.update(stack)
                failed.add(path)
                return super().call_module(m, forward, args, kwargs)

    was_training = model.training
    model.train()  # auxiliary heads run in training only
    try:
        return Tracer(autowrap_functions=table.wrapped).trace(model), failed
    except Exception as e:  # noqa: BLE001  the model's own forward: fx refuses control flow on tensors, ...
        return None, f"torch.fx cannot trace its forward: {type(e).__name__}: " \
                     f"{str(e).splitlines()[0][:300] if str(e) else ''}"
    finally:
        model.train(was_training)
