"""Exports of a graph: PyTorch source, ONNX, TorchScript, torch.export, diagrams, a training script. No Qt."""
from .api import FORMATS, ExportError, export_graph

__all__ = ["FORMATS", "ExportError", "export_graph"]
