"""Block kinds: the registry of everything that can be placed on the canvas (no Qt, no torch at import)."""
from .spec import REGISTRY, BlockError, BlockSpec, Cost, Param, ParamError, Shape, fmt_shape, register
from . import primitives as _primitives  # noqa: F401  (registers the primitive kinds)
from . import composites as _composites  # noqa: F401  (registers the composite kinds)
from . import mobile as _mobile  # noqa: F401  (MobileNet, SqueezeNet, DenseNet composites)
from .composite import IN, Subgraph

__all__ = ["REGISTRY", "BlockError", "BlockSpec", "Cost", "Param", "ParamError", "Shape", "fmt_shape", "register",
           "IN", "Subgraph"]
