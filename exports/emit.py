"""Constructor expressions of the primitive blocks, as readable PyTorch source.

Each kind's arguments come from its BlockSpec's TorchCall. Channel arguments may be symbols (names of constructor
arguments) instead of numbers; every other value is written with ``repr()`` of an already validated number,
bool or choice, so no user text reaches the code.
"""
from __future__ import annotations


from blocks import REGISTRY
from blocks.spec import Sym


def ctor(type_id: str, p: dict, in_ch, out_sym=None) -> str:
    """Source of ``nn.X(...)`` for one primitive, from the kind's own torch description (the one the compiler
    builds the module from); ``in_ch``/``out_sym`` are numbers or names of constructor arguments."""
    spec = REGISTRY[type_id]
    if spec.torch is None:
        raise ValueError(f"block kind {type_id!r} has no torch module")
    as_sym = (lambda v: Sym(v) if isinstance(v, str) else v)
    return spec.torch.source(p, as_sym(in_ch), None if out_sym is None else as_sym(out_sym))


def width_param(type_id: str) -> str | None:
    """The parameter that sets a kind's output width (``out_channels``, ``out_features``), if any."""
    spec = REGISTRY.get(type_id)
    return spec.width_param if spec is not None else None


# Classes of blocks.modules that exported files define (BasicConv2d, LayerNorm2d, ...): their source is copied
# from there, so the exported class and the compiled one are the same code.
HELPER_CLASSES = frozenset(s.torch.cls for s in REGISTRY if s.torch is not None and not s.torch.cls.startswith("nn.")) \
    | {"Permute"}


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
