"""Dialogs: the template gallery and file pickers that tests can answer."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QSpinBox, QVBoxLayout)

import templates
from templates.net import parse_input


class TemplateGallery(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("New from template")
        self.resize(640, 420)
        self.list = QListWidget()
        for name in templates.TEMPLATES:
            it = QListWidgetItem(f"{name}\n    {templates.describe(name)}")
            it.setData(Qt.UserRole, name)
            self.list.addItem(it)
        self.list.setCurrentRow(0)
        self.classes = QSpinBox()
        self.classes.setRange(0, 1 << 20)
        self.classes.setSpecialValueText("template default")
        self.aux = QCheckBox("auxiliary classifier heads")
        self.aux.setChecked(True)
        self.input = QLineEdit()
        self.input.setPlaceholderText("template default, e.g. 3x224x224")
        self.error = QLabel()
        self.error.setStyleSheet("color: #C62828")
        form = QFormLayout()
        form.addRow("classes", self.classes)
        form.addRow("", self.aux)
        form.addRow("input size", self.input)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.list.itemDoubleClicked.connect(lambda _: self._accept())
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.list, 3)
        lay.addLayout(row)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.graph = None

    def select(self, name: str):
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) == name:
                self.list.setCurrentRow(i)

    def _accept(self):
        name = self.list.currentItem().data(Qt.UserRole)
        try:
            size = parse_input(self.input.text(), 224) if self.input.text().strip() else None
            self.graph = templates.build(name, num_classes=self.classes.value() or None,
                                         aux=self.aux.isChecked(), input_size=size)
        except (ValueError, KeyError) as e:
            self.error.setText(str(e))
            return
        self.accept()


def ask_path(parent, title: str, filters: str, save: bool, suggested: str = "") -> str | None:
    """A Qt (not native) file dialog, so tests can find and answer it."""
    dlg = QFileDialog(parent, title, suggested, filters)
    dlg.setOption(QFileDialog.DontUseNativeDialog, True)
    dlg.setAcceptMode(QFileDialog.AcceptSave if save else QFileDialog.AcceptOpen)
    dlg.setFileMode(QFileDialog.AnyFile if save else QFileDialog.ExistingFile)
    if suggested:
        dlg.selectFile(suggested)
    if dlg.exec() != QDialog.Accepted or not dlg.selectedFiles():
        return None
    return dlg.selectedFiles()[0]
