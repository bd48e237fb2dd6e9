"""Templates of networks imported from torchvision (MobileNetV2, SqueezeNet 1.1, DenseNet-121, EfficientNet-B0):
project files in ``templates/zoo/`` written by ``scripts/make_zoo_templates.py`` through the importer, so each is
torchvision's network block for block (a test imports them again and compares)."""
from __future__ import annotations

from pathlib import Path

from .net import parse_input

ZOO = {
    "mobilenet_v2": ("MobileNetV2: inverted residuals with linear bottlenecks, ReLU6 (3.5M params)", "sgd"),
    "squeezenet1_1": ("SqueezeNet 1.1: Fire modules (squeeze 1x1, expand 1x1 + 3x3), 1.2M params", "sgd"),
    "densenet121": ("DenseNet-121: dense blocks (every layer reads all before it) and transitions (8.0M)", "sgd"),
    "efficientnet_b0": ("EfficientNet-B0: MBConv with squeeze-and-excitation, SiLU, stochastic depth (5.3M)",
                        "sgd"),
}


def zoo(name: str, num_classes: int | None = None, input_size=None, **_):
    from builder.core import project
    g = project.load(Path(__file__).parent / "zoo" / f"{name}.json")
    if input_size is not None:
        inp = next(b for b in g.blocks() if b.type == "input")
        c, h, w = parse_input(input_size, inp.params["height"], inp.params["channels"])
        g.set_params(inp.id, {"channels": c, "height": h, "width": w})
    if num_classes is not None:
        head = _classifier(g)
        g.set_params(head, {g.block(head).spec.width_param: num_classes})
    g.meta.update(template=name, recipe=ZOO[name][1], description=ZOO[name][0].split(":")[0])
    return g


def _classifier(g) -> str:
    """The layer whose width is the class count: the Linear (or SqueezeNet's final 1x1 conv) that gives the main
    output through blocks that keep the width (flatten, dropout, ReLU, global pooling)."""
    out = next(b.id for b in g.blocks() if b.type == "output" and b.params["role"] == "main")
    bid = g.inputs(out)[0][1]
    while g.block(bid).spec.keeps_width and g.inputs(bid):
        bid = g.inputs(bid)[0][1]
    if g.block(bid).type not in ("linear", "conv2d"):
        raise ValueError(f"{g.name}: the main output does not come from a Linear or a convolution")
    return bid
