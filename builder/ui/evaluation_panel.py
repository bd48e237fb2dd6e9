"""The Evaluation panel: a trained network on the validation set (``block-builder evaluate`` in a child process,
so the window never waits and never imports torch): accuracy, top-5, per-class precision and recall, the confusion
matrix with class names, and the most confidently wrong images. The numbers are written beside the weights
(evaluation.json, confusion.png, most_confident_wrong.png) and survive the app."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QScrollArea, QSplitter, QTableWidget, QTableWidgetItem, QToolButton,
                               QVBoxLayout, QWidget)

from builder.core import project

from .choosers import dataset_box
from .child import builder_process
from .plots import LazyPlots
from .text import esc



class EvaluationPanel(QWidget):
    evaluated = Signal(dict)  # the result (evaluation.json's content)
    explain_requested = Signal(str, int)  # (dataset, index): a wrong image to explain in the Explain panel

    def __init__(self, doc, ask_path=None, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.ask_path = ask_path
        self.proc: QProcess | None = None
        self.result = None
        self._tmpdir = tempfile.TemporaryDirectory(prefix="block-builder-eval-")
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("trained weights (.safetensors): a run's best.safetensors")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose the weights file")
        browse.clicked.connect(self._browse)
        self.dataset = dataset_box()
        self.evaluate_button = QPushButton("Evaluate")
        self.status = QLabel("Train the network (or choose weights), then Evaluate.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.RichText)
        wrow = QHBoxLayout()
        wrow.addWidget(self.weights, 1)
        wrow.addWidget(browse)
        form = QFormLayout()
        form.addRow("weights", wrow)
        form.addRow("dataset", self.dataset)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["class", "precision", "recall", "images"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.evaluate_button)
        left.addWidget(self.status)
        left.addWidget(self.table, 1)
        left_w = QWidget()
        left_w.setLayout(left)
        self.plots = LazyPlots(self._make_plot)  # the confusion matrix, made when first shown or drawn
        self.wrong = QLabel("The most confidently wrong validation images appear here.")
        self.wrong.setAlignment(Qt.AlignCenter)
        self.wrong.setWordWrap(True)
        wrong_scroll = QScrollArea()
        wrong_scroll.setWidgetResizable(True)
        wrong_scroll.setWidget(self.wrong)
        self.wrong_list = QListWidget()  # the same images, one per row: double click (or Enter) explains one
        self.wrong_list.setToolTip("Double click (or Enter) to see why the network got it wrong (the Explain panel)")
        self.wrong_list.itemActivated.connect(self._explain_wrong)
        gallery = QSplitter(Qt.Vertical)
        gallery.addWidget(wrong_scroll)
        gallery.addWidget(self.wrong_list)
        gallery.setSizes([300, 120])
        split = QSplitter()
        split.addWidget(left_w)
        split.addWidget(self.plots)
        split.addWidget(gallery)
        split.setSizes([380, 420, 420])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(split)
        self.evaluate_button.clicked.connect(self.evaluate)

    def _make_plot(self, pg):
        self.confusion_plot = pg.PlotWidget(title="confusion matrix (each true class's row as shares)")
        self.confusion_plot.invertY(True)
        self.confusion_plot.setAspectLocked(True)
        self.confusion_image = pg.ImageItem()
        self.confusion_plot.addItem(self.confusion_image)
        self.confusion_plot.setMinimumSize(220, 160)
        return [(self.confusion_plot, 1)]

    def _explain_wrong(self, item) -> None:
        dataset, index = item.data(Qt.UserRole)
        self.explain_requested.emit(dataset, index)

    def _browse(self):
        if self.ask_path is None:
            return
        path = self.ask_path(self, "Weights to evaluate", "safetensors (*.safetensors);;All files (*)", False,
                             self.weights.text())
        if path:
            self.weights.setText(path)

    def use_run(self, folder) -> None:
        """After a training run: its best weights are what Evaluate uses."""
        best = Path(folder) / "best.safetensors"
        if best.is_file():
            self.weights.setText(str(best))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.NotRunning

    def evaluate(self) -> bool:
        if self.running:
            return False
        a = self.doc.analysis
        if a is None or not a.ok:
            self.status.setText("<span style='color:#C62828'>Fix the errors in the graph before evaluating.</span>")
            return False
        weights = self.weights.text().strip()
        if not weights or not Path(weights).is_file():
            self.status.setText(f"<span style='color:#C62828'>No weights file {esc(weights or '(none chosen)')}: "
                                "train first, or choose one.</span>")
            return False
        path = Path(self._tmpdir.name) / "project.json"
        project.save(self.doc.graph, path)
        self._out = b""
        self._err = b""
        self.proc = builder_process(self)
        self.proc.readyReadStandardOutput.connect(lambda: setattr(self, "_out", self._out +
                                                                  bytes(self.proc.readAllStandardOutput())))
        self.proc.readyReadStandardError.connect(lambda: setattr(self, "_err", self._err +
                                                                 bytes(self.proc.readAllStandardError())))
        self.proc.finished.connect(self._finished)
        self._folder = Path(weights).parent
        self.proc.start(sys.executable, ["-m", "builder", "evaluate", str(path), "--weights", weights,
                                         "--dataset", self.dataset.currentText().strip(), "--out",
                                         str(self._folder), "--json"])
        self.evaluate_button.setEnabled(False)
        self.status.setText(f"Evaluating {esc(Path(weights).name)} on {esc(self.dataset.currentText())}…")
        return True

    def shutdown(self):
        if self.running:
            self.proc.kill()
            self.proc.waitForFinished(3000)

    def _finished(self, code, _status=None):
        self.evaluate_button.setEnabled(True)
        if code != 0:
            lines = self._err.decode(errors="replace").strip().splitlines()
            message = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else
                           f"the evaluation ended with code {code}")
            self.status.setText(f"<span style='color:#C62828'>{esc(message)}</span>")
            return
        try:
            result = json.loads(self._out.decode())
        except ValueError:
            self.status.setText("<span style='color:#C62828'>The evaluation gave no result.</span>")
            return
        self.show_result(result, self._folder)

    def show_result(self, result: dict, folder=None) -> None:
        import numpy as np
        self.result = result
        top5 = (f" · top-5 <b>{result['top5_accuracy'] * 100:.2f}%</b>" if result.get("top5_accuracy") is not None
                else "")
        self.status.setText(f"{esc(result['dataset'])}: accuracy <b>{result['accuracy'] * 100:.2f}%</b> "
                            f"({result['correct']:,} of {result['images']:,}){top5}"
                            + (f"<br>written to {esc(str(folder))}" if folder else ""))
        per = result["per_class"]
        self.table.setRowCount(len(per))
        for r, c in enumerate(per):
            for col, text in enumerate((c["class"], f"{c['precision']:.3f}", f"{c['recall']:.3f}",
                                        f"{c['support']:,}")):
                it = QTableWidgetItem(text)
                if col:
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(r, col, it)
        self.plots.ensure()
        m = np.array(result["confusion"], dtype=float)
        share = m / np.maximum(m.sum(1, keepdims=True), 1)  # each true class's row as shares: visible at any size
        self.confusion_image.setImage(share.T, levels=(0, 1))
        self.confusion_image.setColorMap("viridis")
        names = result["classes"]
        few = len(names) <= 20
        self.confusion_plot.getAxis("left").setTicks([[(i + 0.5, f"{n} {i}") for i, n in enumerate(names)]]
                                                     if few else None)
        self.confusion_plot.getAxis("bottom").setTicks([[(i + 0.5, str(i)) for i in range(len(names))]]
                                                       if few else None)
        self.confusion_plot.setLabel("left", "true class")
        self.confusion_plot.setLabel("bottom", "predicted class (numbered as the rows)")
        self.wrong_list.clear()
        for w in result.get("most_confident_wrong") or []:
            item = QListWidgetItem(f"image {w['index']}: {w['true']}, taken for {w['predicted']} "
                                   f"({w['confidence'] * 100:.0f}%)")
            item.setData(Qt.UserRole, (result["dataset"], int(w["index"])))
            self.wrong_list.addItem(item)
        picture = Path(folder) / "most_confident_wrong.png" if folder else None
        if picture is not None and picture.is_file():
            self.wrong.setPixmap(QPixmap(str(picture)))
        self.evaluated.emit(result)
