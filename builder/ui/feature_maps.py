"""Feature maps: the selected block's output channels for one image, as a grid; computed in a worker thread (the
window keeps answering), with the weights chosen in the Explain panel (a run of this network by default; weights
that do not fit are refused, naming the blocks), else the project's own, else the initial ones. The image
is a validation image of a dataset (by number), an image file (opened or dropped on the panel) or random noise;
beside the maps, the input with the receptive field of the block's centre unit drawn on it."""
from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QRectF, QTimer, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGraphicsRectItem, QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
                               QWidget)

from .choosers import dataset_box, image_box
from .plots import LazyPlots


def compute_maps(graph, block_id, image=None, weights=None, seed: int = 0):
    """(C, H, W) numpy array of ``block_id``'s output for one image (a random one when None)."""
    import torch

    from builder.backend.compiler import compile_graph
    from builder.core.edits import up_to
    from builder.train.weights import load_tensors
    g = up_to(graph, block_id)
    torch.manual_seed(seed)
    net = compile_graph(g).eval()
    if weights is not None:
        from builder.train.explain import fitting
        tensors = load_tensors(weights)
        fitting(graph, tensors)  # the whole network's weights, or a message naming the blocks that differ
        own = net.state_dict()  # the part of the network up to the block: its tensors, all of them there
        net.load_state_dict({k: tensors[k] for k in own}, strict=True)
    shape = net.input_shapes[0]
    x = image if image is not None else torch.rand(1, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = net(x)
    return y[0].float().numpy()


class FeatureMapsPanel(QWidget):
    computed = Signal(object)  # the (C, H, W) array shown
    explain_requested = Signal(str, int)  # (dataset, index): open this validation image in the Explain panel

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.block_id = None
        self.maps = None
        self.status = QLabel("Select a block with a CxHxW output, then Show")
        self.status.setWordWrap(True)
        self.source = QComboBox()
        self.source.addItem("a validation image", "dataset")
        self.source.addItem("an image file", "file")
        self.source.addItem("random noise", "random")
        self.dataset = dataset_box()
        self.index = image_box()
        self.file = ""
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("Or drop an image file on this panel")
        self.show_button = QPushButton("Show its feature maps")
        self.explain_button = QPushButton("Explain this image…")
        self.explain_button.setToolTip("Why the network predicts what it does for it (the Explain panel)")
        self.explain_button.clicked.connect(
            lambda: self.explain_requested.emit(self.dataset.currentText().strip(), self.index.value()))
        self.weights_source = None  # () -> (weights file or None, how to name them): the Explain panel's choice
        self.field_text = QLabel("")
        self.field_text.setWordWrap(True)
        self.field_text.setStyleSheet("color: #546E7A")
        self.plots = LazyPlots(self._make_plots)  # the input and the maps, made when first shown or drawn
        left = QVBoxLayout()
        left.addWidget(self.status)
        left.addWidget(self.source)
        left.addWidget(self.dataset)
        left.addWidget(self.index)
        left.addWidget(self.open_button)
        left.addWidget(self.show_button)
        left.addWidget(self.explain_button)
        left.addStretch(1)
        left.insertWidget(left.count() - 1, self.field_text)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 1)
        lay.addWidget(self.plots, 4)
        self.show_button.clicked.connect(self.show_selected)
        self.open_button.clicked.connect(self._open_file)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.setAcceptDrops(True)
        self._thread = None
        self._source_changed()

    def _make_plots(self, pg):
        self.input_view = pg.GraphicsLayoutWidget()  # the input, with the block's receptive field on it
        self.input_view.setFixedWidth(170)
        self.input_box = self.input_view.addViewBox(lockAspect=True, enableMouse=False)
        self.input_box.invertY(True)
        self.input_image = pg.ImageItem()
        self.input_box.addItem(self.input_image)
        self.field_rect = QGraphicsRectItem()
        self.field_rect.setPen(QPen(QColor("#FFB300"), 0))
        self.field_rect.setZValue(5)
        self.input_box.addItem(self.field_rect)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setMinimumHeight(160)
        return [(self.input_view, 0), (self.view, 3)]

    def _source_changed(self, *_):
        kind = self.source.currentData()
        self.dataset.setVisible(kind == "dataset")
        self.index.setVisible(kind == "dataset")
        self.open_button.setVisible(kind == "file")
        self.explain_button.setVisible(kind == "dataset")

    def _open_file(self):
        path, _ = QFileDialog.getOpenFileName(self, "An image for the feature maps", self.file,
                                              "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp);;All files (*)")
        if path:
            self.set_file(path)

    def set_file(self, path: str) -> None:
        self.file = path
        self.source.setCurrentIndex(self.source.findData("file"))
        self.status.setText(f"Image: {Path(path).name}. Select a block, then Show.")

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.set_file(urls[0])
            event.acceptProposedAction()
            if self.block_id:
                self.show_selected()

    def image_source(self):
        kind = self.source.currentData()
        if kind == "file":
            return ("file", self.file) if self.file else None
        if kind == "dataset":
            return ("dataset", self.dataset.currentText().strip(), self.index.value())
        return ("random",)

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
        if self.weights_source is not None:
            weights, which = self.weights_source()
        else:
            weights = self.doc.own_weights()
            which = "the project's weights" if weights else "the initial (untrained) weights"
        graph = self.doc.graph.copy()
        source = self.image_source()
        if source is None:
            self.status.setText("Open an image file first (or drop one on this panel)")
            return False
        inp = next((r for r in a.blocks.values() if r.type == "input"), None)
        in_shape = inp.out_shape if inp is not None else None
        from builder.insight.receptive import receptive_fields
        field = receptive_fields(graph, a).get(bid)
        outcome = {}

        def work():
            try:
                from builder.train.samples import load_image
                x, picture, caption = load_image(source, in_shape)
                outcome["picture"], outcome["caption"] = picture, caption
                outcome["maps"] = compute_maps(graph, bid, image=x, weights=weights)
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
            self._draw_input(outcome["picture"], field, rep.out_shape)
            self._draw(bid, outcome["maps"], which, outcome["caption"])
        timer.timeout.connect(poll)
        timer.start(20)
        return True

    def _draw_input(self, picture, field, out_shape) -> None:
        """The input image with the input pixels the block's centre unit sees framed (clipped to the image)."""
        self.plots.ensure()
        self.input_image.setImage(picture.transpose(1, 0, 2) if picture.ndim == 3 else picture.T, levels=(0, 1))
        h, w = picture.shape[:2]
        if field is None:
            self.field_rect.setRect(QRectF())
            self.field_text.setText("")
            return
        if field.whole:
            rect = QRectF(0, 0, w, h)
            text = "the centre unit sees the whole input"
        else:
            (r0, r1), (c0, c1) = field.h.span(out_shape[1] // 2), field.w.span(out_shape[2] // 2)
            top, bottom = max(r0, 0), min(r1 + 1, h)
            left, right = max(c0, 0), min(c1 + 1, w)
            rect = QRectF(left, top, max(right - left, 0), max(bottom - top, 0))
            text = (f"receptive field of the centre unit ({out_shape[1] // 2}, {out_shape[2] // 2}): "
                    f"{field.describe()}")
        self.field_rect.setRect(rect)
        self.field_text.setText(text)
        self.input_box.autoRange(padding=0.02)

    def _draw(self, bid, maps, which, caption="a random image") -> None:
        import math

        import pyqtgraph as pg
        self.plots.ensure()
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
                            + f" with {which}"
                            + f", for {caption}")
        self.computed.emit(maps)
