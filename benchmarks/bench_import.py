"""Importing torchvision's CNNs (issue 13): for each model, the time of ``import_source`` (trace, map, group,
verify the weights, lay out) against the time torch.fx alone takes to trace it (the reference, same run), and
the time to open the imported graph in the canvas (analysis, items, painted) against opening the Inception-v3
template.

Run: .venv/bin/python -m benchmarks import
"""
from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

MODELS = ["googlenet", "inception_v3", "resnet50", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_small",
          "squeezenet1_1", "densenet121", "efficientnet_b0", "shufflenet_v2_x1_0", "vgg16_bn", "alexnet",
          "regnet_y_400mf", "convnext_tiny"]


def run():
    import torch.fx as fx
    from PySide6.QtWidgets import QApplication
    from torchvision import models

    from builder.importers import import_source
    from builder.importers.torch_module import rules
    from builder.ui.main_window import MainWindow

    from .common import report
    app = QApplication.instance() or QApplication([])
    win = MainWindow()
    win.show()
    app.processEvents()

    def open_time(graph):
        times = []
        for _ in range(3):
            win.doc.undo_stack.setClean()
            t = time.perf_counter()
            win.load_graph(graph.copy(), layout=False)
            win.doc.refresh()
            win.view.viewport().repaint()
            app.processEvents()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    import templates
    reference_open = open_time(templates.build("inception_v3"))
    figures = {"open_inception_v3_template_ms": reference_open * 1e3}
    for name in MODELS:
        kw = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
        model = models.get_model(name, weights=None, **kw).train()
        t = time.perf_counter()
        fx.Tracer(autowrap_functions=rules().wrapped).trace(model)
        trace = time.perf_counter() - t
        t = time.perf_counter()
        imported = import_source(f"torchvision:{name}")
        took = time.perf_counter() - t
        opened = open_time(imported.graph)
        figures[f"{name}_blocks"] = len(imported.graph)
        figures[f"{name}_import_s"] = took
        figures[f"{name}_import_vs_fx_trace"] = took / trace
        figures[f"{name}_open_in_canvas_ms"] = opened * 1e3
        figures[f"{name}_open_vs_inception_v3_template"] = opened / reference_open
    win.doc.undo_stack.setClean()
    win.close()
    return report("import", figures)


if __name__ == "__main__":
    run()
