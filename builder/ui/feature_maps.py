"""Feature maps: the selected block's output channels for one image, as a grid; computed in a worker thread (the
window keeps answering), with the project's own weights when it has them, else the current initial ones."""
from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


def compute_maps(graph, block_id, image=None, weights=None, seed: int = 0):
    """(C, H, W) numpy array of ``block_id``'s output for one image (a random one when None)."""
    import torch

    from builder.compiler import compile_graph
    from builder.edits import up_to
    from builder.train.engine import load_tensors
    g = up_to(graph, block_id)
    torch.manual_seed(seed)
    net = compile_graph(g).eval()
    if weights is not None:
        tensors = load_tensors(weights)
        own = net.state_dict()
        net.load_state_dict({k: v for k, v in tensors.items() if k in own and v.shape == own[k].shape},
                            strict=False)
    shape = net.input_shapes[0]
    x = image if image is not None else torch.rand(1, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = net(x)
    return y[0].float().numpy()


class FeatureMapsPanel(QWidget):
    computed = Signal(object)  # the (C, H, W) array shown

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        import pyqtgraph as pg
        pg.setConfigOptions(antialias=True, background="w", foreground="#37474F")
        self.doc = doc
        self.block_id = None
        self.maps = None
        self.status = QLabel("Select a block with a CxHxW output, then Show")
        self.status.setWordWrap(True)
        self.show_button = QPushButton("Show its feature maps")
        self.view = pg.GraphicsLayoutWidget()
        self.view.setMinimumHeight(160)
        left = QVBoxLayout()
        left.addWidget(self.status)
        left.addWidget(self.show_button)
        left.addStretch(1)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 1)
        lay.addWidget(self.view, 3)
        self.show_button.clicked.connect(self.show_selected)
        self._thread = None

    def select(self, block_id) -> None:
        self.block_id = block_id

    def show_selected(self) -> bool:
        a = self.doc.analysis
        bid = self.block_id
        rep = a.blocks.get(bid) if a is not None and bid else None
        if rep is None or rep.errors or not rep.out_shape or len(rep.out_shape) != 3:
            self.status.setText("Feature maps need a block without errors whose output is CxHxW")
            return False
        if self._thread is not None and self._thread.is_alive():
            return False
        own = self.doc.graph.meta.get("weights")
        weights = Path(self.doc.path).parent / str(own) if own and self.doc.path else None
        weights = weights if weights is not None and weights.is_file() else None
        graph = self.doc.graph.copy()
        outcome = {}

        def work():
            try:
                outcome["maps"] = compute_maps(graph, bid, weights=weights)
            except Exception as e:  # noqa: BLE001  shown in the panel, never raised into the event loop
                outcome["error"] = e
        self.status.setText(f"Computing {bid}'s {rep.out_shape[0]} maps…")
        self._thread = threading.Thread(target=work, name="feature-maps", daemon=True)
        self._thread.start()
        timer = QTimer(self)

        def poll():
            if self._thread.is_alive():
                return
            timer.stop()
            timer.deleteLater()
            if "error" in outcome:
                self.status.setText(f"Cannot compute the maps: {outcome['error']}")
                return
            self._draw(bid, outcome["maps"], weights)
        timer.timeout.connect(poll)
        timer.start(20)
        return True

    def _draw(self, bid, maps, weights) -> None:
        import math

        import pyqtgraph as pg
        self.maps = maps
        self.view.clear()
        c = maps.shape[0]
        shown = min(c, 64)
        cols = math.ceil(math.sqrt(shown))
        for i in range(shown):
            box = self.view.addViewBox(row=i // cols, col=i % cols, lockAspect=True, enableMouse=False)
            img = pg.ImageItem(maps[i].T)  # pyqtgraph's images are x-major
            box.addItem(img)
            box.invertY(True)
        self.status.setText(f"{bid}: {c} maps of {maps.shape[1]}x{maps.shape[2]}"
                            + (f" (the first {shown})" if shown < c else "")
                            + (" with the project's weights" if weights else " with the current initial weights")
                            + ", for a random image")
        self.computed.emit(maps)
