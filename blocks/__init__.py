"""Block kinds: the registry of everything that can be placed on the canvas (no Qt, no torch at import).

Every module of this package that is not one of its libraries (below) is a file of kinds and is imported here,
so a new kind is one new file: ``blocks/mish.py`` registering a ``BlockSpec`` is on the palette, analysed,
compiled, exported and imported with no other file changed (docs/adding-a-kind.md)."""
import importlib
import pkgutil

from .spec import REGISTRY, BlockError, BlockSpec, Cost, Param, ParamError, Shape, fmt_shape, register
from . import primitives as _primitives  # noqa: F401  (registers the primitive kinds first: the palette's order)
from . import composites as _composites  # noqa: F401  (registers the composite kinds)
from . import mobile as _mobile  # noqa: F401  (MobileNet, SqueezeNet, DenseNet composites)
from .composite import IN, Subgraph

LIBRARIES = {"spec", "composite", "names", "modules", "fields", "tables", "program"}  # not kinds (modules imports torch)
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name not in LIBRARIES and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
del _info

__all__ = ["REGISTRY", "BlockError", "BlockSpec", "Cost", "Param", "ParamError", "Shape", "fmt_shape", "register",
           "IN", "Subgraph"]
