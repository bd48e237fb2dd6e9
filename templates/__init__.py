"""Network templates: functions that build graphs (no Qt).

``build(name, **options)`` gives a :class:`builder.core.graph.Graph`; ``TEMPLATES`` lists the names with a line of
description each. Options common to all: ``num_classes``, ``input_size`` ((C, H, W) or an int for H = W),
``aux`` (auxiliary heads on/off) and ``batch_norm`` where they apply.
"""
from .gallery import TEMPLATES, build, describe

__all__ = ["TEMPLATES", "build", "describe"]
