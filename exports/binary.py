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
                with warnings.catch_warnings():  # PRESERVE on a model in eval mode: the eval graph, norms kept
                    warnings.filterwarnings("ignore", message=".*constant folding.*training-amenable")
                    torch.onnx.export(model, example, buf, opset_version=opset, input_names=["input"],
                                      output_names=["logits"], training=mode, dynamo=False,
                                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
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
