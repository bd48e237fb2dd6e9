"""Which trained weights the views that run the network use (feature maps, explanations, the step-through): a run
of this network (the newest by default), the project's own weights, or the initial ones; always named."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QToolButton, QWidget

INITIAL = "initial"


def run_weights(folder) -> Path | None:
    """A run folder's weights: its best, else its last checkpoint."""
    for name in ("best.safetensors", "last.safetensors"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


class WeightsChoice(QWidget):
    changed = Signal()

    def __init__(self, doc, runs_folder, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.runs_folder = runs_folder  # () -> the folder the Runs dock reads
        self.box = QComboBox()
        self.box.setToolTip("The weights the network runs with here: a run of this network, the project's own, "
                            "or the initial (untrained) ones")
        self.box.setObjectName("weights_choice")
        again = QToolButton()
        again.setText("↻")
        again.setToolTip("Look for new runs")
        again.clicked.connect(self.refresh)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.box, 1)
        lay.addWidget(again)
        self.picked = None  # what the user chose in the list (kept while it is there), else the newest run
        self.box.activated.connect(lambda _i: setattr(self, "picked", self.box.currentData()))
        self.box.currentIndexChanged.connect(lambda _i: self.changed.emit())
        doc.graph_replaced.connect(lambda _g: (setattr(self, "picked", None), self.refresh()))
        self.refresh()

    def refresh(self) -> None:
        """The runs of this network (newest first), then the project's weights, then the initial ones; the choice
        the user made is kept when it is still there, else the first (the newest run) is chosen."""
        from builder.runs import find_runs
        before = self.box.currentData()
        kept = self.picked
        self.box.blockSignals(True)
        self.box.clear()
        name = self.doc.graph.name
        for run in find_runs(self.runs_folder()):
            path = run_weights(run.folder)
            if path is not None and run.doc.get("name") == name:
                acc = run.val_accuracy
                self.box.addItem(f"run {run.name}" + (f" ({acc * 100:.1f}% val)" if isinstance(acc, float) else ""),
                                 str(path))
        own = self.doc.own_weights()
        if own is not None:
            self.box.addItem(f"the project's weights ({Path(own).name})", str(own))
        self.box.addItem("initial weights (untrained)", INITIAL)
        i = self.box.findData(kept) if kept is not None else -1
        self.box.setCurrentIndex(i if i >= 0 else 0)
        self.box.blockSignals(False)
        if self.box.currentData() != before:
            self.changed.emit()

    def choose(self, path) -> None:
        """Use ``path`` (a run's weights after it trained, say), listing it when it is new."""
        self.refresh()
        i = self.box.findData(str(path))
        if i < 0:
            self.box.insertItem(0, Path(path).parent.name + "/" + Path(path).name, str(path))
            i = 0
        self.box.setCurrentIndex(i)
        self.picked = str(path)

    def current(self) -> tuple:
        """(weights file or None for the initial weights, how to name them in a sentence)."""
        data = self.box.currentData()
        text = self.box.currentText()
        if data in (None, INITIAL):
            return None, "the initial (untrained) weights"
        return data, ("the weights of " + text if text.startswith("run ") else text)
