"""ONNX, TorchScript and torch.export programs of the compiled network (eval mode, the main output)."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from builder.backend.compiler import compile_graph
from builder.core.project import atomic_write


def _example(model, batch=1):
    import torch
    return tuple(torch.randn(batch, *s) for s in model.input_shapes)


def _lrn_as_onnx_op(module):
    """nn.LocalResponseNorm as ONNX's own LRN operator (the same formula: alpha is divided by the size), not the
    reshapes, pads and pools torch.onnx decomposes it into (which lose the sizes later operators need)."""
    import torch
    import torch.nn.functional as F

    class LRN(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return F.local_response_norm(x, module.size, module.alpha, module.beta, module.k)

        @staticmethod
        def symbolic(g, x):
            return g.op("LRN", x, size_i=module.size, alpha_f=module.alpha, beta_f=module.beta, bias_f=module.k)
    return lambda x: LRN.apply(x)


# module class path -> a forward to trace instead, that writes one ONNX operator: the ONNX exporter's registry
ONNX_OPERATORS = {"torch.nn.LocalResponseNorm": _lrn_as_onnx_op}


def _onnx_forwards(model):
    """The model's modules that have an ONNX operator of their own, each with that forward set (undone by the
    caller)."""
    changed = []
    for m in model.modules():
        make = ONNX_OPERATORS.get(f"{type(m).__module__.split('.modules')[0]}.{type(m).__name__}")
        if make is not None:
            m.forward = make(m)
            changed.append(m)
    return changed


def write_binary(graph, fmt: str, path: Path, opset: int = 17, weights=None, fold_batch_norm: bool = False) -> list[Path]:
    """``fold_batch_norm`` (ONNX): fold batch norms into the convolutions before them, as deployment runtimes
    like it; by default they stay BatchNormalization nodes, so the file re-imports as the same network (the same
    parameters) and can be fine-tuned."""
    import torch
    from .errors import ExportError
    model = compile_graph(graph).eval()
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    example = _example(model)
    buf = io.BytesIO()
    try:
        with torch.no_grad():
            if fmt == "onnx":
                mode = torch.onnx.TrainingMode.EVAL if fold_batch_norm else torch.onnx.TrainingMode.PRESERVE
                changed = _onnx_forwards(model)
                try:
                    with warnings.catch_warnings():  # PRESERVE on a model in eval mode: the eval graph, norms kept
                        warnings.filterwarnings("ignore", message=".*constant folding.*training-amenable")
                        torch.onnx.export(model, example, buf, opset_version=opset, input_names=["input"],
                                          output_names=["logits"], training=mode, dynamo=False,
                                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
                finally:
                    for m in changed:
                        del m.forward
            elif fmt == "torchscript":
                torch.jit.save(torch.jit.trace(model, example), buf)
            else:
                batch = torch.export.Dim("batch", min=1, max=65536)
                example = _example(model, batch=2)
                shapes = tuple({0: batch} for _ in example)
                torch.export.save(torch.export.export(model, example, dynamic_shapes=shapes), buf)
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001  torch's exporters raise many kinds; the user needs the message
        raise ExportError(f"{fmt} export failed: {type(e).__name__}: {str(e)[:500]}") from None
    atomic_write(path, buf.getvalue())
    return [path]
