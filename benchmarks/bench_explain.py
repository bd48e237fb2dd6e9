"""One explanation of one image, on the CPU, against a plain forward and backward of the same compiled network on
the same image measured in the same run (what Grad-CAM and saliency need at least).

Networks: LeNet-5 (Fashion-MNIST's test image 0, 1x32x32) and ResNet-18 (a random 3x224x224 image). Each
explanation is the whole call the app and the command line make: preparing the image, compiling the network
with the weights checked and loaded, the attribution. Integrated gradients (50 steps) and occlusion run the
network many times (their progress is shown); they are measured on LeNet-5 only.
Target: <= 1 s per explanation (Grad-CAM, guided Grad-CAM, saliency).
Run: .venv/bin/python -m benchmarks explain
"""
from __future__ import annotations

import torch

import templates
from builder.backend.compiler import compile_graph
from builder.train.explain import explain
from builder.train.samples import sample

from .common import median_time, report


def _plain(model, x):
    def run():
        y = model(x.clone().requires_grad_(True))
        y[0, int(y[0].argmax())].backward()
    return run


def run():
    torch.set_num_threads(max(1, torch.get_num_threads()))
    figures = {}
    for name, source, fast in (("lenet5", ("dataset", "fashion-mnist", 0), True), ("resnet18", ("random",), False)):
        g = templates.build(name)
        torch.manual_seed(0)
        model = compile_graph(g).eval()
        sd = model.state_dict()
        shape = model.input_shapes[0]
        x = sample(source, shape).x
        t_plain = median_time(_plain(model, x), repeat=10, warmup=2)
        figures[f"{name}_forward_backward_ms"] = t_plain * 1e3
        methods = ("gradcam", "guided-gradcam", "saliency") + (("integrated-gradients", "occlusion") if fast else ())
        for m in methods:
            t = median_time(lambda m=m: explain(g, sd, source, m), repeat=5 if fast else 3, warmup=1)
            figures[f"{name}_{m}_ms"] = t * 1e3
            figures[f"{name}_{m}_over_forward_backward"] = t / t_plain
    figures["target_ms"] = 1000.0
    return report("explain", figures)
