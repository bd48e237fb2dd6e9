"""What a kind says about the models it is imported from: the PyTorch module classes and functions it stands
for (:class:`FromTorch`) and the ONNX operators or operator patterns it stands for (:class:`FromOnnx`).

The importers hold no table of kinds: they read these from the registry. Classes and functions are named by
their import path (``torch.nn.Conv2d``, ``torchvision.models.resnet.BasicBlock``, ``torch.nn.functional.relu``;
``Tensor.view`` for a tensor method) and resolved when an importer runs, so this package imports no torch.

A rule returns the kind's parameters, or a string saying why this instance has no block; a function or ONNX rule
may also return :class:`Made` (parameters and the inputs it reads), :class:`Chain` (several blocks one after the
other) or :class:`Split` (several blocks reading the same input: the value is the tuple of their outputs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

BATCH = object()  # x.size(0) / x.shape[0]: the batch dimension, as view and reshape use it


def pair(v) -> list:
    """``3`` or ``(3, 3)`` -> ``[3, 3]``."""
    return [int(v[0]), int(v[1])] if isinstance(v, (tuple, list)) else [int(v), int(v)]


@dataclass(frozen=True)
class Made:
    """Parameters and the blocks the call reads; ``kind``: another kind's block (a sum with a number is a
    constant operation, not a merge)."""
    params: dict
    inputs: list
    kind: str = ""


@dataclass(frozen=True)
class Chain:
    """Blocks one after the other on the call's first input: ``[(kind, params), ...]``. A module rule's steps
    may also name a child module (:class:`Sub`), read like any module; the first step's block has the module's
    path, so its weights keep their keys."""
    steps: list


@dataclass(frozen=True)
class Sub:
    """A step that is the child module at ``path`` (timm's BatchNormAct2d: its ``act``): read by the kind that
    stands for it; left out when that kind returns its input unchanged (``nn.Identity``). A child with weights
    cannot be a step (its keys would move): the rule's module is then captured whole."""
    path: str


@dataclass(frozen=True)
class Split:
    """Blocks that each read the call's first input: ``[(kind, params), ...]``; the value is their tuple."""
    steps: list
    names: tuple = ()  # the id suffix of each (``chunk0``, ``chunk1``)


def attributes(spec, m) -> dict:
    """The kind's parameters read from the module's attributes of the same (torch) names."""
    return {p.name: getattr(m, p.arg) for p in spec.params if hasattr(m, p.arg)}


@dataclass(frozen=True)
class FromTorch:
    """The PyTorch modules and functions a kind stands for.

    ``modules``: classes whose instances become one block of the kind (not traced into); ``module(m)`` reads the
    parameters (default: the module's attributes named as the kind's parameters). ``functions``: functions
    (``torch.cat``, ``operator.add``) and tensor methods (``Tensor.flatten``) a traced forward calls;
    ``call(c: Call)`` reads the parameters (default: the first argument's block, with ``inplace`` where the kind
    has it). ``wrap``: functions the tracer must not trace into (torchvision's ``channel_shuffle``)."""
    modules: tuple = ()
    module: Callable | None = None
    functions: tuple = ()
    call: Callable | None = None
    wrap: tuple = ()


class Call:
    """One traced function or method call, as a :class:`FromTorch` rule reads it."""

    def __init__(self, name: str, args: list, kwargs: dict, is_tensor: Callable, shape: Callable):
        self.name, self.args, self.kwargs = name, args, kwargs
        self._is_tensor, self._shape = is_tensor, shape

    def opt(self, i: int, key: str, default=None):
        """Argument ``i`` or keyword ``key``."""
        return self.args[i] if len(self.args) > i else self.kwargs.get(key, default)

    @property
    def tensors(self) -> list:
        """The arguments that are tensors (block outputs), in order."""
        return [a for a in self.args if self._is_tensor(a)]

    def shape(self, value) -> tuple | None:
        """The shape of a tensor argument without the batch dimension (None when unknown)."""
        return self._shape(value)

    def channels(self, value) -> int | None:
        """The channels of a tensor argument (None when unknown)."""
        shape = self._shape(value)
        return shape[0] if shape else None


@dataclass(frozen=True)
class FromOnnx:
    """The ONNX operators a kind stands for.

    ``op``: the operator (``Conv``), from opset ``since`` on (until another rule for the same operator takes
    over); ``read(n: OnnxNode)`` returns the parameters (or :class:`Made`/:class:`Chain`), the weights through
    ``n.weights``; it refuses with ``n.refuse(why)``.

    ``pattern``: a chain of operators that together compute the kind (``("Sigmoid", "Mul")`` is SiLU): each step
    reads the previous step's output, and ``("Mul", "x")`` also the chain's input; the importer replaces a match
    whose inner values are read by nothing else with one block. ``read`` then gets the matched nodes as
    ``n.nodes`` and may check their constants (GELU's 1/sqrt(2))."""
    op: str = ""
    read: Callable | None = None
    since: int = 1
    pattern: tuple = ()
    extra: dict = field(default_factory=dict)


def children(paths: dict, **fixed) -> Callable:
    """A module rule for a composite whose width parameters are the ``out_channels`` of named children
    (``ch1x1="branch1.conv"``); ``fixed`` values (or functions of the module) complete the parameters."""
    def rule(m):
        return {**{name: m.get_submodule(path).out_channels for name, path in paths.items()},
                **{k: (v(m) if callable(v) else v) for k, v in fixed.items()}}
    return rule
