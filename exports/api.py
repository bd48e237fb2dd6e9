"""One entry point for every export format; every file is written atomically."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from builder.core.errors import CompileError, ProjectError
from builder.core.project import atomic_write

from .errors import ExportError


def _python(graph, path: Path, weights=None) -> list[Path]:
    from .pytorch import generate
    atomic_write(path, generate(graph))
    written = [path]
    if weights is not None:  # ship trained weights beside the code
        from builder.backend.compiler import compile_graph
        from builder.train.weights import save_tensors
        compile_graph(graph).load_state_dict(weights, strict=True)
        w = path.with_suffix(".safetensors")
        save_tensors(weights, w)
        written.append(w)
    return written


def _binary(fmt):
    def write(graph, path, **options):
        from .binary import write_binary
        return write_binary(graph, fmt, path, **options)
    return write


def _diagram(fmt):
    def write(graph, path):
        from .diagram import write_diagram
        return write_diagram(graph, fmt, path)
    return write


def _training(graph, path, **options):
    from .training import write_training_script
    return write_training_script(graph, path, **options)


def _figure(graph, path, style=None):
    from .figure import write_figure
    return write_figure(graph, path, style)


@dataclass(frozen=True)
class ExportFormat:
    """One export format, as the menu, the file dialog and the command line show it, and its writer."""
    key: str
    label: str
    filter: str          # the file dialog's filter
    suffix: str          # the default file's suffix
    weights: bool        # can ship trained weights
    write: Callable      # (graph, path, **options) -> the files written


# The one registry of export formats: the app's Export menu and the CLI's --format both read it.
EXPORTS = {f.key: f for f in (
    ExportFormat("py", "PyTorch code (.py)", "Python (*.py)", ".py", True, _python),
    ExportFormat("train", "Training script (train.py + model)", "Python (*.py)", ".py", True, _training),
    ExportFormat("onnx", "ONNX (.onnx)", "ONNX (*.onnx)", ".onnx", True, _binary("onnx")),
    ExportFormat("torchscript", "TorchScript (.pt)", "TorchScript (*.pt)", ".pt", True, _binary("torchscript")),
    ExportFormat("export", "torch.export program (.pt2)", "torch.export (*.pt2)", ".pt2", True, _binary("export")),
    ExportFormat("dot", "Graphviz DOT (.dot)", "DOT (*.dot *.gv)", ".dot", False, _diagram("dot")),
    ExportFormat("svg", "Diagram (.svg)", "SVG (*.svg)", ".svg", False, _diagram("svg")),
    ExportFormat("png", "Diagram (.png)", "PNG (*.png)", ".png", False, _diagram("png")),
    ExportFormat("figure", "Paper figure (.svg, .pdf, TikZ .tex)", "Figure (*.svg *.pdf *.tex)", ".svg", False,
                 _figure),
)}
FORMATS = tuple(EXPORTS)


def export_graph(graph, fmt: str, path, **options) -> list[Path]:
    """Write ``graph`` as ``fmt`` to ``path``; returns the files written."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # "-o out/train.py" makes out/
    except OSError as e:
        raise ExportError(f"{path}: cannot make the folder {path.parent}: {e.strerror or e}") from None
    try:
        return EXPORTS[fmt].write(graph, path, **options)
    except CompileError as e:
        raise ExportError(f"cannot export {graph.name!r}: {e}") from None
    except ProjectError as e:
        raise ExportError(str(e)) from None
    except OSError as e:  # weights written beside the export
        raise ExportError(f"{e.filename or path}: could not write it: {e.strerror or e}") from None
