"""File > Import: a torchvision model from a searchable list, or a model file; the import runs beside the event
loop (a busy dialog shows it), so a large model never freezes the window."""
from __future__ import annotations

import re
import threading
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QListWidget,
                               QProgressDialog, QPushButton, QVBoxLayout)


def torchvision_models() -> list[str]:
    try:
        from torchvision import models
    except ImportError:
        return []
    return sorted(models.list_models(module=models))


class ImportDialog(QDialog):
    """Choose what to import: a torchvision classification model (weights=None: the architecture, with fresh
    weights) or an ONNX file, and optionally the input size."""

    def __init__(self, parent=None, ask_path=None):
        super().__init__(parent)
        self.setWindowTitle("Import a model")
        self.resize(460, 520)
        self._ask_path = ask_path
        self.file = None
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search torchvision's models (resnet, ...), or your own: package.module:callable")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.addItems(torchvision_models())
        self.input = QLineEdit()
        self.input.setPlaceholderText("the model's own (3x224x224 for most, 3x299x299 for Inception-v3)")
        self.from_file = QPushButton("From an ONNX file…")
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setText("Import")
        self.message = QLabel(_TORCHVISION)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #607D8B")
        form = QFormLayout()
        form.addRow("input size", self.input)
        lay = QVBoxLayout(self)
        lay.addWidget(self.search)
        lay.addWidget(self.list, 1)
        lay.addLayout(form)
        lay.addWidget(self.message)
        lay.addWidget(self.from_file)
        lay.addWidget(self.buttons)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._accept_first)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        self.list.currentRowChanged.connect(lambda _row: self._enable())
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.from_file.clicked.connect(self._choose_file)
        if self.list.count():
            self.list.setCurrentRow(0)
        self._enable()

    def _filter(self, text):
        text = text.strip().lower()
        first = None
        for i in range(self.list.count()):
            item = self.list.item(i)
            hide = text not in item.text().lower()
            item.setHidden(hide)
            if not hide and first is None:
                first = i
        if first is not None:
            self.list.setCurrentRow(first)
        self._enable()

    def _visible_current(self):
        item = self.list.currentItem()
        return item if item is not None and not item.isHidden() else None

    def _callable(self) -> str | None:
        """The search text when it names a factory of the user's own (``timm_models:resnet``), else None."""
        text = self.search.text().strip()
        return text if _CALLABLE.fullmatch(text) and not text.startswith("torchvision:") else None

    def _enable(self):
        own = self._callable()
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(self._visible_current() is not None or own is not None)
        self.message.setText(
            f"{own}: your own code builds the model, in a process of its own (bounded in time and memory); what no "
            "kind stands for is captured with its exact operators." if own else _TORCHVISION)

    def _accept_first(self):
        if self._visible_current() is not None or self._callable() is not None:
            self.accept()

    def _choose_file(self):
        path = self._ask_path(self, "Import an ONNX model", "ONNX (*.onnx)", False) if self._ask_path else None
        if path:
            self.file = path
            self.accept()

    def source(self) -> str | None:
        if self.file:
            return self.file
        if self._callable() is not None:
            return self._callable()
        item = self._visible_current()
        return f"torchvision:{item.text()}" if item is not None else None

    def input_size(self):
        """(C, H, W), or None for the model's own; ValueError with a message for anything else."""
        from builder.importers import parse_size
        text = self.input.text().strip()
        return parse_size(text) if text else None


_TORCHVISION = ("torchvision's architecture with freshly initialised weights (nothing is downloaded). The project "
                "and its weights (.safetensors) are written where you choose next.")
_CALLABLE = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_]\w*")


def run_beside(parent, title: str, work, done, detail=None) -> None:
    """Run ``work()`` in a thread while a busy dialog shows ``title``, what the work does now (``detail()``, if
    given) and the seconds it has taken, and the window a busy cursor; then call ``done(result, error)`` in the
    event loop. The window stays responsive; closing the dialog ignores the result."""
    box = QProgressDialog(title, "Cancel", 0, 0, parent)
    label = QLabel(title)
    label.setTextFormat(Qt.PlainText)  # a step can name the model's own modules: never read as markup
    box.setLabel(label)
    box.setWindowTitle("Block Builder")
    box.setWindowModality(Qt.WindowModal)
    box.setMinimumDuration(300)
    outcome: dict = {}

    def target():
        try:
            outcome["result"] = work()
        except Exception as e:  # noqa: BLE001  handed to done(), which says what went wrong
            outcome["error"] = e
    thread = threading.Thread(target=target, name="block-builder-import", daemon=True)
    timer = QTimer(box)
    started = time.monotonic()

    def poll():
        if thread.is_alive():
            seconds = int(time.monotonic() - started)
            now = detail() if detail is not None else ""
            text = f"{title} ({seconds} s)" + (f"\n{now}" if now else "") if seconds >= 1 else title
            if box.labelText() != text:  # it is alive: the time it has taken, and what it does
                box.setLabelText(text)
            return
        timer.stop()
        parent.unsetCursor()
        cancelled = box.wasCanceled()
        box.reset()
        box.deleteLater()
        if not cancelled:
            done(outcome.get("result"), outcome.get("error"))
    timer.timeout.connect(poll)
    parent.setCursor(Qt.BusyCursor)  # over the window while it works (the dialog shows after 300 ms)
    thread.start()
    timer.start(30)
