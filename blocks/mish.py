"""Mish, x * tanh(softplus(x)) (Misra, 2019): an activation kind in one file (docs/adding-a-kind.md shows it as
the worked example; this file also maps ``F.mish``)."""
from .imports import FromOnnx, FromTorch
from .spec import BlockSpec, Cost, TorchCall, register

register(BlockSpec(
    "mish", "Mish", "Activation", shape=lambda p, ins: ins[0], cost=lambda p, ins, out: Cost(0, 0),
    torch=TorchCall("nn.Mish"), keeps_width=True, in_table=False, description="x * tanh(softplus(x))",
    from_torch=FromTorch(functions=("torch.nn.functional.mish",)),
    from_onnx=(FromOnnx("Mish"), FromOnnx(pattern=("Softplus", "Tanh", ("Mul", "x"))))))
