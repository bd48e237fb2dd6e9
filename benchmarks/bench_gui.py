"""Time to open the Inception-v3 template into the canvas (target <= 500 ms) and one full repaint of a canvas
with 1,000 blocks (target <= 16 ms); then 100 consecutive renders. Reference in the same run: an empty repaint.
Run: .venv/bin/python -m benchmarks gui
"""
from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _thousand_blocks(n: int = 1000):
    from builder.core.graph import Graph
    g = Graph("thousand")
    prev = g.add_block("input", {"channels": 16, "height": 32, "width": 32}, "input", pos=(0, 0))
    kinds = ["conv2d", "batchnorm2d", "relu", "maxpool2d"]
    for i in range(n - 2):
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
    win.scene.finish_attach()  # every item made (a network of over 250 blocks is drawn in slices)
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
    scale = _at_scale(app, win)
    win.doc.undo_stack.setClean()
    win.close()
    return report("gui", {**scale,
        "open_inception_v3_ms_median": statistics.median(opens) * 1e3, "target_open_ms": 500.0,
        "blocks_on_canvas": blocks,
        "full_repaint_1000_fit_ms_median": statistics.median(full) * 1e3,
        "full_repaint_1000_100pct_ms_median": statistics.median(detail) * 1e3, "target_repaint_ms": 16.0,
        "edit_to_painted_1000_blocks_ms_median": statistics.median(edits) * 1e3,
        "consecutive_renders_without_crash": 100,
    })


def _at_scale(app, win) -> dict:
    """Issue 22's fluidity at 1,000 and 10,000 blocks: a parameter edit, an add and a delete, each through the undo
    stack, analysed and painted; a pan step and a zoom step painted (frames per second); and the Layers table's
    rebuild (it runs 150 ms after an edit burst)."""
    out = {}
    for n in (1_000, 10_000):
        win.doc.undo_stack.setClean()
        win.load_graph(_thousand_blocks(n), path="bench.json", layout=False)
        win.scene.finish_attach()
        app.processEvents()
        vp = win.view.viewport()
        win.view.resetTransform()
        app.processEvents()

        def painted(fn):
            t = time.perf_counter()
            fn()
            win.doc.refresh()
            vp.repaint()
            return time.perf_counter() - t
        mid = f"b{n // 2}"
        edit = [painted(lambda i=i: win.doc.push("edit", lambda g: g.set_params(mid, {"out_channels": 17 + i % 2})))
                for i in range(10)]
        add = [painted(lambda: win.add_block("relu", win.view.mapToScene(vp.rect().center()))) for _ in range(5)]
        delete = [painted(lambda: (win.select_block(mid if mid in win.doc.graph else win.doc.graph.ids()[n // 3]),
                                   win.delete_selected())) for _ in range(5)]
        bar = win.view.verticalScrollBar()

        def pan():
            bar.setValue(bar.value() + 40)
            vp.repaint()
        pans = []
        for _ in range(30):
            t = time.perf_counter()
            pan()
            pans.append(time.perf_counter() - t)
        zooms = []
        for i in range(20):
            t = time.perf_counter()
            win.view.zoom(0.9 if i % 2 else 1 / 0.9)
            vp.repaint()
            zooms.append(time.perf_counter() - t)
        win.layers.setVisible(True)
        t = time.perf_counter()
        win.layers.refresh(win.doc.analysis)
        table = time.perf_counter() - t
        out.update({f"edit_param_{n}_blocks_ms_median": statistics.median(edit) * 1e3,
                    f"edit_add_{n}_blocks_ms_median": statistics.median(add) * 1e3,
                    f"edit_delete_{n}_blocks_ms_median": statistics.median(delete) * 1e3,
                    f"pan_{n}_blocks_fps": 1 / statistics.median(pans),
                    f"zoom_{n}_blocks_fps": 1 / statistics.median(zooms),
                    f"layers_table_rebuild_{n}_blocks_ms": table * 1e3})
    out.update({"target_edit_ms": 50.0, "target_fps": 30.0})
    return out


if __name__ == "__main__":
    run()
