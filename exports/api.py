"""One entry point for every export format; every file is written atomically."""
from __future__ import annotations

from pathlib import Path

from builder.errors import CompileError, ProjectError
from builder.project import atomic_write

FORMATS = ("py", "onnx", "torchscript", "export", "dot", "svg", "png", "train")


class ExportError(Exception):
    """An export that cannot be made; the message says why."""


def export_graph(graph, fmt: str, path, **options) -> list[Path]:
    """Write ``graph`` as ``fmt`` to ``path``; returns the files written."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    try:
        if fmt == "py":
            from .pytorch import generate
            atomic_write(path, generate(graph))
            written = [path]
            if options.get("weights") is not None:  # ship trained weights beside the code
                from builder.compiler import compile_graph
                from builder.train.engine import _save_tensors
                compile_graph(graph).load_state_dict(options["weights"], strict=True)
                w = path.with_suffix(".safetensors")
                _save_tensors(options["weights"], w)
                written.append(w)
            return written
        if fmt in ("onnx", "torchscript", "export"):
            from .binary import write_binary
            return write_binary(graph, fmt, path, **options)
        if fmt in ("dot", "svg", "png"):
            from .diagram import write_diagram
            return write_diagram(graph, fmt, path)
        if fmt == "train":
            from .training import write_training_script
            return write_training_script(graph, path, **options)
    except CompileError as e:
        raise ExportError(f"cannot export {graph.name!r}: {e}") from None
    except ProjectError as e:
        raise ExportError(str(e)) from None
    raise ExportError(f"format {fmt!r} is not available")
