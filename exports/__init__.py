"""Exports of a graph: PyTorch source, ONNX, TorchScript, torch.export, diagrams, a training script. No Qt."""
from .api import EXPORTS, FORMATS, ExportError, ExportFormat, export_graph

__all__ = ["EXPORTS", "FORMATS", "ExportError", "ExportFormat", "export_graph"]
