"""The helper classes exported code defines (BasicConv2d, LayerNorm2d, ...): their source is copied from
:mod:`blocks.modules`, so the exported class and the compiled one are the same code."""
from __future__ import annotations

from blocks import REGISTRY
from builder.backend.codegen import HELPER_CLASSES


def helper_sources(type_ids) -> list[str]:
    """The source of every helper class the given kinds build, in a fixed order."""
    import inspect

    from blocks import modules
    used = sorted({REGISTRY[t].torch.cls for t in set(type_ids)
                   if REGISTRY.get(t) is not None and REGISTRY[t].torch is not None} & HELPER_CLASSES)
    order: list = []

    def need(name):  # the classes a helper builds come before it
        for dep in modules.NEEDS.get(name, ()):
            need(dep)
        if name not in order:
            order.append(name)
    for name in used:
        need(name)
    return [inspect.getsource(getattr(modules, name)) for name in order]
