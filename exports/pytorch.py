"""Graph -> one standalone, readable PyTorch source file (needs only torch).

The file is the compiled network's own source (:mod:`builder.backend.codegen`: the compiler executes the same text), with
a header, the helper classes it builds (copied from :mod:`blocks.modules`), ``build_model(**kwargs)`` and a
``__main__`` check. Identifiers come from block ids, which the graph model keeps valid; names and labels reach
the file only through ``repr()``.
"""
from __future__ import annotations

from builder.core.analysis import Analysis
from builder.backend.codegen import module_source
from builder.core.graph import Graph
from builder.core.ir import lower

from .emit import helper_sources


def generate(graph: Graph, analysis: Analysis | None = None) -> str:
    ir = lower(graph, analysis)  # raises CompileError with the graph's errors
    src = module_source(ir, graph.name)
    in_shapes = [n.shape for n in ir.inputs]
    header = [
        '"""' + f"{src.model}: PyTorch code exported by Block Builder." + "",
        "",
        "It needs only torch. build_model() returns the network with the project's settings; in training mode",
        "it returns the main output and the auxiliary outputs, in eval mode the main output only.",
        '"""',
        "import torch",
        "import torch.nn.functional as F",
        "from torch import Tensor, nn",
        "",
        f"PROJECT_NAME = {graph.name!r}",
        f"INPUT_SHAPE = {tuple(in_shapes[0]) if len(in_shapes) == 1 else tuple(map(tuple, in_shapes))!r}",
        f"LOSS_WEIGHTS = {list(ir.loss_weights)!r}",
    ]
    parts = ["\n".join(header) + "\n"]
    parts += [s.strip("\n") + "\n" for s in helper_sources(src.kinds)]
    parts += src.classes
    parts.append(src.model_source)
    model = src.model
    parts.append(f"def build_model(weights: str | None = None, **kwargs) -> {model}:\n"
                 f'    """The network with the project\'s settings; keyword arguments override them. ``weights``: a\n'
                 f'    .safetensors file of trained weights (e.g. the one exported beside this file)."""\n'
                 f"    settings = {src.defaults!r}\n"
                 f"    settings.update(kwargs)\n"
                 f"    model = {model}(**settings)\n"
                 f"    if weights is not None:\n"
                 f"        from safetensors.torch import load_file\n"
                 f"        model.load_state_dict(load_file(weights), strict=True)\n"
                 f"    return model\n")
    parts.append('if __name__ == "__main__":\n'
                 "    model = build_model().eval()\n"
                 "    shapes = [INPUT_SHAPE] if isinstance(INPUT_SHAPE[0], int) else list(INPUT_SHAPE)\n"
                 "    with torch.no_grad():\n"
                 "        out = model(*(torch.randn(1, *shape) for shape in shapes))\n"
                 "    print(type(model).__name__, tuple(out.shape), sum(p.numel() for p in model.parameters()), "
                 '"parameters")\n')
    return "\n\n".join(p.rstrip("\n") + "\n" for p in parts)
