"""Graph -> ``torch.nn.Module``: the generated module source (:mod:`builder.backend.codegen`, the one the exporter
writes), executed.

So the compiled and the exported network are one code: the same classes, the same state_dict keys in the same
order (the block ids, in torchvision's order for its models), and every composite a module with its own forward
(``net.layer1(x)`` runs; hooks on it fire). The auxiliary heads sit in an ``if self.training:`` section, so eval
mode never computes them. The result works with ``torch.compile``, ``torch.jit.trace`` and ``torch.export``.
"""
from __future__ import annotations

from ..core.analysis import Analysis
from ..core.graph import Graph
from ..core.ir import lower
from .codegen import module_source


def compile_graph(graph: Graph, analysis: Analysis | None = None):
    """Compile to the network's module: train mode returns (main, aux...) when there are aux outputs, eval
    mode returns the main output only. ``.code`` holds its source; ``.output_ids``, ``.loss_weights`` and ``.input_shapes`` what the trainer needs."""
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn

    from blocks import modules
    ir = lower(graph, analysis)
    src = module_source(ir, graph.name)
    namespace = {"torch": torch, "nn": nn, "F": F, "Tensor": Tensor, "__name__": "block_builder_compiled"}
    namespace.update({k: v for k, v in vars(modules).items() if isinstance(v, type)})
    exec(compile(src.text, f"<block-builder {graph.name!r}>", "exec"), namespace)  # our own generated code
    model = namespace[src.model]()
    model.code = src.text
    model.output_ids = list(ir.outputs)
    model.loss_weights = list(ir.loss_weights)
    model.input_shapes = [n.shape for n in ir.inputs]
    return model
