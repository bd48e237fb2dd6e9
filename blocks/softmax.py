"""Softmax over an axis (the classes or the channels by default): a kind in one file, imported from
``nn.Softmax``, ``F.softmax`` and ONNX's Softmax, as classifiers exported by other tools end."""
from .activations import axis_shape
from .imports import FromOnnx, FromTorch
from .spec import BlockSpec, Cost, Param, TorchCall, register


def _call(c):
    dim = c.opt(1, "dim")
    return "softmax without a dim has no block" if dim is None else dict(dim=int(dim))


def _from_onnx(n):
    rank = len(n.shape(n.x(0))) + 1
    axis = int(n.attrs.get("axis", 1 if n.opset < 13 else -1))
    if n.opset < 13 and axis % rank != rank - 1:  # before 13 the input is flattened from the axis on
        n.refuse(f"softmax over axis {axis} of a rank-{rank} tensor before opset 13 (flattened from it)")
    return dict(dim=1 if axis % rank == 1 else axis)


register(BlockSpec(
    "softmax", "Softmax", "Activation",
    params=(Param("dim", "int", 1, "The axis (1: the channels or classes; -1: the last)", min=-5, max=4),),
    shape=axis_shape("Softmax"), cost=lambda p, ins, out: Cost(0, 0),
    torch=TorchCall("nn.Softmax", lambda p, i, o: [("dim", p["dim"], None)]), keeps_width=True, in_table=False,
    from_torch=FromTorch(("torch.nn.Softmax",), lambda m: dict(dim=m.dim) if m.dim is not None else
                         "softmax without a dim has no block",
                         ("torch.nn.functional.softmax", "torch.softmax", "Tensor.softmax"), _call),
    from_onnx=(FromOnnx("Softmax", _from_onnx),),
    description="exp(x) / sum(exp(x)) over an axis (the classes by default): probabilities (for a network that "
                "ends in them; training's cross-entropy wants the logits before it)."))
