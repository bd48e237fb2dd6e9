"""Why the network predicted what it did for one image, with captum: Grad-CAM and guided Grad-CAM on any block of
the diagram with a spatial output, saliency (absolute input gradients), integrated gradients and occlusion.

The network is the project's own compiled module with its trained weights (refused, naming the blocks, when they
do not fit); the block is watched through an identity inserted after it (every block, a merge too, can be chosen),
and nothing runs in place (captum keeps the activations it differentiates).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch

from blocks import REGISTRY

from .settings import TrainingError

METHODS = ("gradcam", "guided-gradcam", "saliency", "integrated-gradients", "occlusion")
ON_A_BLOCK = ("gradcam", "guided-gradcam")  # need a block with a C x H x W output
TITLES = {"gradcam": "Grad-CAM", "guided-gradcam": "guided Grad-CAM", "saliency": "saliency",
          "integrated-gradients": "integrated gradients", "occlusion": "occlusion"}


@dataclass
class Explanation:
    method: str
    block: str | None          # the block Grad-CAM looked at (None for the input-level methods)
    target: int
    predicted: int
    probabilities: list
    true: int | None
    classes: list
    attribution: np.ndarray    # float32: Grad-CAM (h, w) at the block's resolution; the others (C, H, W)
    heat: np.ndarray = field(default=None)  # (H, W) in 0..1 at the input's resolution, for the overlay
    picture: np.ndarray = field(default=None)  # the image as shown: (H, W) or (H, W, 3) in 0..1
    caption: str = ""

    def name(self, k: int) -> str:
        return self.classes[k] if 0 <= k < len(self.classes) else str(k)


def spatial_blocks(graph, analysis) -> list:
    """Blocks whose output is a C x H x W map in the network that predicts (Grad-CAM's choices), in running
    order."""
    return [b for b, r in analysis.blocks.items()
            if r.inference and r.out_shape is not None and len(r.out_shape) == 3 and not r.errors
            and graph.block(b).type != "input"]


def _probed(graph, blocks) -> tuple:
    """A copy of ``graph`` with an identity after each of ``blocks`` (its output, as a module a hook can watch);
    and {identity id: block id}."""
    from builder.core.graph import make_id
    g = graph.copy()
    watched = {}
    for block in blocks:
        probe = make_id(f"{block}_watched", g)
        consumers = g.consumers(block)
        g.add_block(REGISTRY.watch_kind(), {}, probe)
        for v, port in consumers:
            g.disconnect(block, v, port)
            g.connect(probe, v, port, check_cycle=False)
        g.connect(block, probe, check_cycle=False)
        watched[probe] = block
    return g, watched


def fitting(graph, tensors: dict, where: str = "the weights"):
    """The compiled network with ``tensors`` loaded, or a TrainingError naming the blocks that differ."""
    from builder.backend.compiler import compile_graph
    from .weights import weights_problems
    model = compile_graph(graph)
    problems = weights_problems(model.state_dict(), tensors)
    if problems:
        keys = [k for k in set(tensors) ^ set(model.state_dict())] + [
            k for k in tensors if k in model.state_dict() and tuple(tensors[k].shape) !=
            tuple(model.state_dict()[k].shape)]
        blocks = sorted({k.rsplit(".", 1)[0] for k in keys})
        raise TrainingError(f"{where} do not fit this network (blocks that differ: {', '.join(blocks[:8])}"
                            f"{' ...' if len(blocks) > 8 else ''}): {'; '.join(problems[:3])}")
    model.load_state_dict(tensors, strict=True)
    return model


def _counted(model, expected: int, progress):
    """``model`` as the forward function of a method that runs it many times, saying how far it is (0..1)."""
    if progress is None:
        return model
    calls = [0]

    def forward(*args):
        calls[0] += 1
        progress(min(1.0, calls[0] / max(expected, 1)))
        return model(*args)
    return forward


def explain(graph, tensors: dict, source, method: str = "gradcam", block: str | None = None, target=None,
            analysis=None, steps: int = 50, progress=None) -> Explanation:
    """One explanation of ``graph`` with weights ``tensors`` for the image ``source`` (as
    :func:`builder.train.samples.load_image` takes it). ``progress(fraction)``: called as integrated gradients
    and occlusion, which run the network many times, go on."""
    from captum.attr import (GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion,
                             Saliency)

    from builder.core.analysis import analyze

    from .samples import sample
    if method not in METHODS:
        raise TrainingError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    a = analysis if analysis is not None and analysis.describes(graph) else analyze(graph)
    if not a.ok:
        raise TrainingError(f"the network has errors: {a.errors[0]}")
    inputs = [b for b in graph.ids() if graph.block(b).type == "input"]
    in_shape = a.blocks[inputs[0]].out_shape if len(inputs) == 1 else None
    if in_shape is None or len(in_shape) != 3:
        raise TrainingError("explaining needs a network with one C x H x W image input")
    choices = spatial_blocks(graph, a)
    if method in ON_A_BLOCK:
        if block is None:  # the last map with more than one position (a 1 x 1 map places nothing)
            wide = [b for b in choices if a.blocks[b].out_shape[1] * a.blocks[b].out_shape[2] > 1]
            if not wide:
                raise TrainingError("no block of this network has a C x H x W output for Grad-CAM")
            block = wide[-1]
        elif block not in graph:
            raise TrainingError(f"--block {block}: no such block")
        elif block not in choices:
            shape = a.blocks[block].out_shape
            raise TrainingError(f"--block {block}: its output {'x'.join(map(str, shape or ()))} is not a C x H x W "
                                f"map, so Grad-CAM has nothing to place; blocks that have one: "
                                f"{', '.join(choices[-6:])}")
    elif block is not None and block not in graph:
        raise TrainingError(f"--block {block}: no such block")
    image = sample(source, in_shape)
    x = image.x
    model_graph, watched = _probed(graph, [block]) if method in ON_A_BLOCK else (graph, {})
    probe = next(iter(watched), None)
    model = fitting(model_graph, tensors).eval()
    for m in model.modules():  # captum differentiates activations a module would overwrite in place
        if hasattr(m, "inplace"):
            m.inplace = False
    with torch.no_grad():
        out = model(x)
    out = out[0] if isinstance(out, (tuple, list)) else out
    prob = out.float().softmax(1)[0]
    predicted = int(prob.argmax())
    k = predicted if target is None else int(target)
    if not 0 <= k < prob.numel():
        raise TrainingError(f"--target {target}: the network has {prob.numel()} classes (0 to {prob.numel() - 1})")
    x = x.clone().requires_grad_(True)
    layer = model.get_submodule(probe) if probe else None
    h, w = in_shape[1:]
    if method == "gradcam":
        attr = LayerGradCam(model, layer).attribute(x, target=k, relu_attributions=True)
        raw = attr[0, 0]
        heat = LayerAttribution.interpolate(attr, (h, w), "bilinear")[0, 0]
    else:
        if method == "guided-gradcam":
            attr = GuidedGradCam(model, layer).attribute(x, target=k)
        elif method == "saliency":
            attr = Saliency(model).attribute(x, target=k, abs=True)
        elif method == "integrated-gradients":
            batch = min(steps, 16)
            attr = IntegratedGradients(_counted(model, -(-steps // batch), progress)).attribute(
                x, baselines=torch.zeros_like(x), target=k, n_steps=steps, internal_batch_size=batch)
        else:
            side = max(1, min(h, w) // 8)
            stride = max(1, side // 2)
            windows = ((h - side) // stride + 1) * ((w - side) // stride + 1)
            attr = Occlusion(_counted(model, windows + 1, progress)).attribute(
                x, sliding_window_shapes=(in_shape[0], side, side), strides=(in_shape[0], stride, stride),
                baselines=0, target=k)
        raw = attr[0]
        heat = attr[0].abs().sum(0)
    heat = heat.detach().float()
    top = float(heat.max())
    heat = (heat / top) if top > 0 else heat * 0
    names = list(image.classes or [])[:prob.numel()]
    names += [str(i) for i in range(len(names), prob.numel())]
    return Explanation(method, block if method in ON_A_BLOCK else None, k, predicted, prob.tolist(), image.label,
                       names, raw.detach().float().numpy().astype(np.float32), heat.numpy(), image.picture,
                       image.caption)


# ---------------------------------------------------------------- the picture

def _colours(heat: np.ndarray) -> np.ndarray:
    """A heat map (0..1) as RGB in 0..1: dark blue, cyan, yellow, red (the familiar 'jet' order)."""
    t = np.clip(heat, 0, 1)[..., None]
    stops = np.array([[0.0, 0.0, 0.5], [0.0, 0.6, 1.0], [1.0, 0.9, 0.0], [0.85, 0.0, 0.0]])
    pos = t * (len(stops) - 1)
    i = np.clip(np.floor(pos).astype(int), 0, len(stops) - 2)
    f = pos - i
    return stops[i[..., 0]] * (1 - f) + stops[i[..., 0] + 1] * f


def overlay_png(e: Explanation, size: int = 280, caption: bool = True) -> bytes:
    """The image with the heat map over it, enlarged to ``size`` pixels, and (``caption``) a line naming the
    method, the block, the predicted and the true class."""
    from PIL import Image, ImageDraw
    pic = e.picture if e.picture.ndim == 3 else np.repeat(e.picture[..., None], 3, axis=2)
    mixed = pic * 0.55 + _colours(e.heat) * 0.45 * (0.35 + 0.65 * e.heat[..., None])
    img = Image.fromarray((np.clip(mixed, 0, 1) * 255).astype(np.uint8))
    scale = max(1, size // max(img.size))
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    lines = [f"{TITLES[e.method]}" + (f" on {e.block}" if e.block else "") + f", target {e.name(e.target)}",
             f"predicted {e.name(e.predicted)} ({e.probabilities[e.predicted] * 100:.1f}%)"
             + (f", true {e.name(e.true)}" if e.true is not None else "")]
    band = 14 * len(lines) + 6 if caption else 0
    page = Image.new("RGB", (max(img.width, 280) if caption else img.width, img.height + band), "white")
    page.paste(img, (0, band))
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines if caption else ()):
        draw.text((4, 3 + 14 * i), line, fill=(33, 33, 33))
    buf = io.BytesIO()
    page.save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- one image through every block

def block_outputs(graph, tensors: dict, x) -> dict:
    """Every drawn block's output for the image ``x`` (1 x C x H x W): ``{block id: array}`` (its first sample),
    watched through an identity after each block, the network in eval mode with ``tensors`` (which must fit)."""
    g, watched = _probed(graph, [b for b in graph.ids() if graph.block(b).type not in ("input", "output")])
    model = fitting(g, tensors).eval()  # the identities hold no weights: the same keys as the network's
    seen: dict = {}
    hooks = [model.get_submodule(p).register_forward_hook(
        lambda _m, _i, out, b=b: seen.__setitem__(b, out[0].detach().float().numpy().copy()))
        for p, b in watched.items()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def strongest(maps: np.ndarray, k: int = 4) -> list:
    """The channels of a C x H x W output that respond most (by mean activation), strongest first."""
    if maps.ndim != 3:
        return []
    score = maps.reshape(maps.shape[0], -1).mean(1)
    return [int(i) for i in np.argsort(-score, kind="stable")[:k]]
