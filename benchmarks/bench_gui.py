"""Time to open the Inception-v3 template into the canvas (target <= 500 ms) and one full repaint of a canvas
with 1,000 blocks (target <= 16 ms); then 100 consecutive renders. Reference in the same run: an empty repaint.
Run: .venv/bin/python -m benchmarks gui
"""
from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _thousand_blocks():
    from builder.core.graph import Graph
    g = Graph("thousand")
    prev = g.add_block("input", {"channels": 16, "height": 32, "width": 32}, "input", pos=(0, 0))
    kinds = ["conv2d", "batchnorm2d", "relu", "maxpool2d"]
    for i in range(998):
        col, row = divmod(i, 40)
        kind = kinds[i % 4]
        params = {"out_channels": 16, "kernel": 3, "padding": 1} if kind == "conv2d" else (
            {"kernel": 3, "stride": 1, "padding": 1} if kind == "maxpool2d" else {})
        bid = g.add_block(kind, params, f"b{i}", pos=(col * 240.0, row * 110.0))
        g.connect(prev, bid)
        prev = bid
    g.add_block("output", {}, "output", pos=(25 * 240.0, 0))
    g.connect(prev, "output")
    return g


def run():
    from PySide6.QtWidgets import QApplication

    from builder.ui.main_window import MainWindow

    from .common import report

    app = QApplication.instance() or QApplication([])
    win = MainWindow()
    win.show()
    app.processEvents()
    opens = []
    for _ in range(5):
        win.doc.undo_stack.setClean()
        t = time.perf_counter()
        win.open_template("inception_v3")
        app.processEvents()
        opens.append(time.perf_counter() - t)
    win.doc.undo_stack.setClean()
    win.load_graph(_thousand_blocks(), path="bench.json", layout=False)
    app.processEvents()
    win.view.fit()
    app.processEvents()
    vp = win.view.viewport()
    vp.repaint()

    def repaint_times(n):
        out = []
        for _ in range(n):
            win.scene.update()  # invalidate everything: a full repaint, not a cached blit of the last frame
            t = time.perf_counter()
            vp.repaint()
            out.append(time.perf_counter() - t)
        return out

    full = repaint_times(30)
    win.view.resetTransform()  # zoomed in to 100%: blocks drawn in full detail
    app.processEvents()
    detail = repaint_times(30)
    edits = []
    for i in range(20):  # one parameter edit: undo step, analysis, canvas updated and painted
        t = time.perf_counter()
        win.doc.push("edit", lambda g, i=i: g.set_params("b500", {"out_channels": 17 + i % 2}))
        win.doc.refresh()
        vp.repaint()
        edits.append(time.perf_counter() - t)
    for _ in range(100):  # 100 consecutive renders
        win.scene.update()
        vp.repaint()
    blocks = len(win.scene.blocks)
    win.doc.undo_stack.setClean()
    win.close()
    return report("gui", {
        "open_inception_v3_ms_median": statistics.median(opens) * 1e3, "target_open_ms": 500.0,
        "blocks_on_canvas": blocks,
        "full_repaint_1000_fit_ms_median": statistics.median(full) * 1e3,
        "full_repaint_1000_100pct_ms_median": statistics.median(detail) * 1e3, "target_repaint_ms": 16.0,
        "edit_to_painted_1000_blocks_ms_median": statistics.median(edits) * 1e3,
        "consecutive_renders_without_crash": 100,
    })


if __name__ == "__main__":
    run()
