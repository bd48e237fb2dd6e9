"""The Explain panel: why the network predicted what it did for one validation image (Grad-CAM, guided Grad-CAM,
saliency, integrated gradients, occlusion; captum), on the block selected on the canvas (the arrow keys move the
selection along the wires and the overlay follows); and "Follow this image", which pins the image and shows every
block's output for it on the canvas. Computed off the window's thread with the weights chosen here, named."""
from __future__ import annotations

import threading

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .choosers import dataset_box, image_box, scrolled
from .text import esc
from .weights_choice import WeightsChoice
from .worker import Job

METHODS = (("gradcam", "Grad-CAM"), ("guided-gradcam", "guided Grad-CAM"), ("saliency", "saliency"),
           ("integrated-gradients", "integrated gradients"), ("occlusion", "occlusion"))
ON_A_BLOCK = ("gradcam", "guided-gradcam")
_SEEDING = threading.Lock()  # torch's generator is one for the process: seeding and drawing from it go together
SLOW = ("integrated-gradients", "occlusion")


class ExplainPanel(QWidget):
    explained = Signal(object)  # the Explanation shown
    followed = Signal(object)   # {block id: its output} for the pinned image, or None when no image is pinned

    def __init__(self, doc, runs_folder, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.block_id: str | None = None
        self.job: Job | None = None
        self.follow_job: Job | None = None
        self.explanation = None
        self.outputs = None
        self._pending = False
        self.weights = WeightsChoice(doc, runs_folder)
        self.dataset = dataset_box()
        self.index = image_box()
        self.method = QComboBox()
        for key, title in METHODS:
            self.method.addItem(title, key)
        self.target = QComboBox()
        self.target.setToolTip("The class whose evidence is shown")
        self._targets(10)
        self.block_text = QLabel()
        self.block_text.setWordWrap(True)
        self.explain_button = QPushButton("Explain")
        self.follow = QCheckBox("Follow this image through the network")
        self.follow.setToolTip("Pin the image: every block on the canvas shows its output for it (its strongest "
                               "channels, shape and range); the inspector shows the selected block's channels")
        self.status = QLabel("Choose an image, then Explain.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.RichText)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignCenter)
        self.picture.setMinimumSize(160, 120)
        form = QFormLayout()
        form.addRow("weights", self.weights)
        form.addRow("dataset", self.dataset)
        form.addRow("image", self.index)
        form.addRow("method", self.method)
        form.addRow("class", self.target)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.block_text)
        left.addWidget(self.explain_button)
        left.addWidget(self.follow)
        left.addWidget(self.status)
        left.addStretch(1)
        left_w = scrolled(left)
        lay = QHBoxLayout(self)
        lay.addWidget(left_w, 2)
        lay.addWidget(self.picture, 3)
        self.explain_button.clicked.connect(self.run)
        self.follow.toggled.connect(self._follow_toggled)
        for w in (self.method, self.target):
            w.currentIndexChanged.connect(self._again)
        self.index.valueChanged.connect(self._image_changed)
        self.dataset.currentTextChanged.connect(self._image_changed)
        self.weights.changed.connect(self._image_changed)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self._refresh_follow)
        doc.analysed.connect(lambda _a: self._debounce.start() if self.follow.isChecked() else None)
        self.set_block(None)

    # ------------------------------------------------------------ choices
    def _targets(self, n: int, names=None) -> None:
        keep = self.target.currentData()
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItem("the predicted class", None)
        for k in range(n):
            self.target.addItem(f"{k}: {names[k]}" if names and k < len(names) else str(k), k)
        i = self.target.findData(keep)
        self.target.setCurrentIndex(i if i >= 0 else 0)
        self.target.blockSignals(False)

    def set_block(self, block_id) -> None:
        """The block selected on the canvas: Grad-CAM looks at it (and redraws, when an explanation is shown)."""
        self.block_id = block_id
        self.block_text.setText(f"block: <b>{esc(block_id)}</b>" if block_id else
                                "block: the last map of the network (select a block on the canvas; the arrow "
                                "keys follow the wires)")
        self.block_text.setTextFormat(Qt.RichText)
        if block_id is not None and self.explanation is not None and self.method.currentData() in ON_A_BLOCK:
            self.run()

    def explain_image(self, dataset: str, index: int) -> None:
        """Explain this validation image (from the Evaluation panel's gallery, or the Feature maps panel)."""
        self.dataset.setCurrentText(dataset)
        self.index.setValue(int(index))
        self.run()

    def _again(self, *_):
        if self.explanation is not None:
            self.run()

    def _image_changed(self, *_):
        self._again()
        if self.follow.isChecked():
            self._debounce.start()

    def _source(self):
        return ("dataset", self.dataset.currentText().strip(), self.index.value())

    @staticmethod
    def _tensors(graph, path):
        """The chosen weights as tensors (the initial ones: the compiled network's, seeded). Runs in the worker:
        it reads only the copy of the graph it is given."""
        import torch

        from builder.backend.compiler import compile_graph
        from builder.train.weights import load_tensors
        if path is not None:
            return load_tensors(path)
        with _SEEDING:  # the explanation and the followed image are made in two threads at once: one seed each
            torch.manual_seed(0)
            return compile_graph(graph).state_dict()

    # ------------------------------------------------------------ an explanation
    def run(self) -> bool:
        """Explain the image now; while an explanation is computed, the latest request waits for it."""
        if self.job is not None and self.job.running:
            self._pending = True
            return False
        self._pending = False
        a = self.doc.analysis
        if a is None or not a.ok:
            self.status.setText("<span style='color:#C62828'>Fix the errors in the graph first.</span>")
            return False
        method = self.method.currentData()
        block = self.block_id if method in ON_A_BLOCK else None
        if block is not None and block not in self.doc.graph:
            block = None
        path, which = self.weights.current()
        graph = self.doc.graph.copy()
        source, target = self._source(), self.target.currentData()

        progress = {"done": 0.0}  # written by the worker, read by the poll below

        def work():
            from builder.train.explain import explain
            return explain(graph, self._tensors(graph, path), source, method, block, target,
                           progress=lambda f: progress.__setitem__("done", f))

        def done(e, error):
            if self._pending:  # the selection or a choice moved on while this ran: explain what is asked now
                self.run()
                return
            if error is not None:
                self.status.setText(f"<span style='color:#C62828'>{esc(error)}</span>")
                return
            self.show_explanation(e, which)
        self.status.setText(f"Computing {esc(self.method.currentText())} with {esc(which)}…"
                            + (" (this method runs the network many times)" if method in SLOW else ""))
        self.job = Job(self, "explain", work, done,
                       tick=(lambda: self.status.setText(
                           f"Computing {esc(self.method.currentText())} with {esc(which)}: "
                           f"{progress['done'] * 100:.0f}%")) if method in SLOW else None)
        return True

    def show_explanation(self, e, which: str) -> None:
        from builder.train.explain import overlay_png
        self.explanation = e
        pix = QPixmap()
        pix.loadFromData(overlay_png(e, size=320, caption=False))  # the caption is the status line
        self.overlay = pix
        self._fit_picture()
        self._targets(len(e.probabilities), e.classes)
        took = f" in {self.job.seconds:.2f} s" if self.job is not None and self.job.seconds else ""
        self.status.setText(f"{esc(e.caption)}: predicted <b>{esc(e.name(e.predicted))}</b> "
                            f"({e.probabilities[e.predicted] * 100:.1f}%)"
                            + (f", true {esc(e.name(e.true))}" if e.true is not None else "")
                            + f"<br>{esc(dict(METHODS)[e.method])}" + (f" on {esc(e.block)}" if e.block else "")
                            + f" for {esc(e.name(e.target))}, with {esc(which)}{took}")
        self.explained.emit(e)

    def _fit_picture(self) -> None:
        if getattr(self, "overlay", None) is not None:
            self.picture.setPixmap(self.overlay.scaled(self.picture.size(), Qt.KeepAspectRatio,
                                                       Qt.SmoothTransformation))

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit_picture()

    # ------------------------------------------------------------ following one image
    def _follow_toggled(self, on: bool) -> None:
        if on:
            self._refresh_follow()
        else:
            self.outputs = None
            self.followed.emit(None)

    def _refresh_follow(self) -> None:
        if not self.follow.isChecked():
            return
        if self.follow_job is not None and self.follow_job.running:
            self._debounce.start()  # again once this one is done
            return
        a = self.doc.analysis
        if a is None or not a.ok:
            self.status.setText("<span style='color:#C62828'>Fix the errors in the graph to follow an image.</span>")
            return
        inp = [r for r in a.blocks.values() if r.type == "input"]
        if len(inp) != 1 or inp[0].out_shape is None or len(inp[0].out_shape) != 3:
            self.status.setText("Following an image needs one C x H x W input.")
            return
        path, which = self.weights.current()
        graph, source, shape = self.doc.graph.copy(), self._source(), inp[0].out_shape

        def work():
            from builder.train.explain import block_outputs
            from builder.train.samples import sample
            return block_outputs(graph, self._tensors(graph, path), sample(source, shape).x)

        def done(outputs, error):
            if error is not None:
                self.status.setText(f"<span style='color:#C62828'>{esc(error)}</span>")
                return
            self.outputs = outputs
            self.status.setText(f"Following {esc(source[1])} image {source[2]} through {len(outputs)} blocks, "
                                f"with {esc(which)}.")
            self.followed.emit(outputs)
        self.follow_job = Job(self, "follow-image", work, done)
