"""Softmax over the classes (or the channels): a kind in one file, imported from ``nn.Softmax``,
``F.softmax`` and ONNX's Softmax, as classifiers exported by other tools end."""
from .imports import FromOnnx, FromTorch
from .spec import BlockSpec, Cost, TorchCall, register


def _from_torch(dim):
    return {} if dim == 1 else f"softmax over dim {dim} (only over the classes or channels, dim 1, has a block)"


def _call(c):
    dim = c.opt(1, "dim")
    shape = c.shape(c.args[0])
    if dim == -1 and shape is not None and len(shape) == 1:  # the last axis of N x classes is dim 1
        dim = 1
    return _from_torch(dim)


def _from_onnx(n):
    rank = len(n.shape(n.x(0))) + 1
    axis = int(n.attrs.get("axis", 1 if n.opset < 13 else -1))
    axis = axis + rank if axis < 0 else axis
    if axis != 1 or (n.opset < 13 and rank != 2):  # before 13 the input is flattened from the axis on
        n.refuse(f"softmax over axis {axis} of a rank-{rank} tensor (only over the classes or channels)")
    return {}


register(BlockSpec(
    "softmax", "Softmax", "Activation",
    shape=lambda p, ins: ins[0], cost=lambda p, ins, out: Cost(0, 0),
    torch=TorchCall("nn.Softmax", lambda p, i, o: [("dim", 1, None)]), keeps_width=True, in_table=False,
    from_torch=FromTorch(("torch.nn.Softmax",), lambda m: _from_torch(m.dim),
                         ("torch.nn.functional.softmax", "torch.softmax", "Tensor.softmax"), _call),
    from_onnx=(FromOnnx("Softmax", _from_onnx),),
    description="exp(x) / sum(exp(x)) over the classes: probabilities (for a network that ends in them; "
                "training's cross-entropy wants the logits before it)."))
