"""The activations imported models use beyond the classic ones: ELU, SELU, CELU, PReLU (one learned slope, or one
per channel), Softplus and LogSoftmax over any axis. Each is a kind with its PyTorch module and function and its
ONNX operator."""
from __future__ import annotations

import numpy as np

from .imports import FromOnnx, FromTorch
from .spec import MAX_CHANNELS, BlockError, BlockSpec, Cost, Param, TorchCall, fmt_shape, register

ZERO = Cost(0, 0)


def _elementwise(type_id, title, cls, description, params=(), args=lambda p, i, o: [], **rest):
    register(BlockSpec(type_id, title, "Activation", params=params, shape=rest.pop("shape", lambda p, ins: ins[0]),
                       cost=rest.pop("cost", lambda p, ins, out: ZERO), torch=TorchCall(cls, args),
                       keeps_width=True, in_table=False, description=description, **rest))


def _alpha(default):
    return lambda n: dict(alpha=float(n.attrs.get("alpha", default)))


_elementwise("elu", "ELU", "nn.ELU", "x if x > 0 else alpha * (exp(x) - 1)",
             (Param("alpha", "float", 1.0, "The negative saturation value", min=0.0, max=100.0),),
             lambda p, i, o: [("alpha", float(p["alpha"]), 1.0)],
             from_torch=FromTorch(("torch.nn.ELU",), lambda m: dict(alpha=m.alpha), ("torch.nn.functional.elu",),
                                  lambda c: dict(alpha=float(c.opt(1, "alpha", 1.0)))),
             from_onnx=(FromOnnx("Elu", _alpha(1.0)),))
_elementwise("celu", "CELU", "nn.CELU", "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
             (Param("alpha", "float", 1.0, "The negative saturation value", min=1e-6, max=100.0),),
             lambda p, i, o: [("alpha", float(p["alpha"]), 1.0)],
             from_torch=FromTorch(("torch.nn.CELU",), lambda m: dict(alpha=m.alpha), ("torch.nn.functional.celu",),
                                  lambda c: dict(alpha=float(c.opt(1, "alpha", 1.0)))),
             from_onnx=(FromOnnx("Celu", _alpha(1.0)),))


def _selu_from_onnx(n):
    alpha, gamma = float(n.attrs.get("alpha", 1.67326319)), float(n.attrs.get("gamma", 1.05070102))
    if abs(alpha - 1.6732632423543772) > 1e-6 or abs(gamma - 1.0507009873554805) > 1e-6:
        n.refuse(f"SELU with alpha {alpha}, gamma {gamma} (only the self-normalising constants have a block)")
    return {}


_elementwise("selu", "SELU", "nn.SELU", "scale * (max(0, x) + min(0, alpha * (exp(x) - 1))), self-normalising",
             from_torch=FromTorch(functions=("torch.nn.functional.selu", "torch.selu")),
             from_onnx=(FromOnnx("Selu", _selu_from_onnx),))


def _softplus_from_torch(beta, threshold):
    return dict(beta=float(beta), threshold=float(threshold))


_elementwise("softplus", "Softplus", "nn.Softplus", "log(1 + exp(beta * x)) / beta",
             (Param("beta", "float", 1.0, "Sharpness", min=1e-6, max=1e6),
              Param("threshold", "float", 20.0, "Above it the function is linear", min=0.0, max=1e6)),
             lambda p, i, o: [("beta", float(p["beta"]), 1.0), ("threshold", float(p["threshold"]), 20.0)],
             from_torch=FromTorch(("torch.nn.Softplus",), lambda m: _softplus_from_torch(m.beta, m.threshold),
                                  ("torch.nn.functional.softplus",),
                                  lambda c: _softplus_from_torch(c.opt(1, "beta", 1.0), c.opt(2, "threshold", 20.0))),
             from_onnx=(FromOnnx("Softplus"),))  # log(1 + exp(x)); torch's linear part above 20 is equal in float32

def _prelu_shape(p, ins):
    n = p["num_parameters"]
    if n != 1 and (len(ins[0]) < 1 or ins[0][0] != n):
        raise BlockError(f"PReLU with {n} slopes needs {n} channels, gets {fmt_shape(ins[0])}", "shape")
    return ins[0]


def _prelu_from_onnx(n):
    slope = np.asarray(n.const(1), dtype=np.float32)
    c = n.channels(n.x(0))
    if slope.size not in (1, c) or (slope.size == c and slope.reshape(-1).shape != (c,)):
        n.refuse(f"PReLU with slopes of shape {list(slope.shape)} (one, or one per channel)")
    n.weights.update(weight=slope.reshape(-1))
    return dict(num_parameters=int(slope.size))


_elementwise("prelu", "PReLU", "nn.PReLU", "x if x > 0 else a * x, a learned (one slope, or one per channel)",
             (Param("num_parameters", "int", 1, "Learned slopes: 1, or the input's channels", min=1,
                    max=MAX_CHANNELS),),
             lambda p, i, o: [("num_parameters", p["num_parameters"], 1)],
             shape=_prelu_shape, cost=lambda p, ins, out: Cost(p["num_parameters"], 0),
             from_torch=FromTorch(("torch.nn.PReLU",), lambda m: dict(num_parameters=m.num_parameters)),
             from_onnx=(FromOnnx("PRelu", _prelu_from_onnx),))


def axis_shape(what):
    """The shape rule of a kind over one axis (``p["dim"]``, the batch's excluded): its input's."""
    def shape(p, ins):
        rank = len(ins[0]) + 1
        if not -rank <= p["dim"] < rank or p["dim"] % rank == 0:
            raise BlockError(f"{what} over dim {p['dim']} of a batch of {fmt_shape(ins[0])} (dim 0 is the batch)",
                             "invalid")
        return ins[0]
    return shape


def _log_softmax_from_onnx(n):
    rank = len(n.shape(n.x(0))) + 1
    axis = int(n.attrs.get("axis", 1 if n.opset < 13 else -1))
    if n.opset < 13 and axis % rank != rank - 1:
        n.refuse(f"log-softmax over axis {axis} before opset 13 (flattened from it)")
    return dict(dim=axis)


register(BlockSpec(
    "log_softmax", "LogSoftmax", "Activation",
    params=(Param("dim", "int", 1, "The axis (1: the channels or classes; -1: the last)", min=-5, max=4),),
    shape=axis_shape("LogSoftmax"), cost=lambda p, ins, out: ZERO,
    torch=TorchCall("nn.LogSoftmax", lambda p, i, o: [("dim", p["dim"], None)]), keeps_width=True, in_table=False,
    from_torch=FromTorch(("torch.nn.LogSoftmax",), lambda m: dict(dim=m.dim),
                         ("torch.nn.functional.log_softmax", "torch.log_softmax", "Tensor.log_softmax"),
                         lambda c: dict(dim=int(c.opt(1, "dim", 1)))),
    from_onnx=(FromOnnx("LogSoftmax", _log_softmax_from_onnx),),
    description="log(softmax(x)) over an axis: what NLL loss reads."))
