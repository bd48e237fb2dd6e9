"""Dialogs: the template gallery and file pickers that tests can answer."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QListView, QListWidget, QListWidgetItem, QSpinBox, QVBoxLayout)

import templates
from templates.net import parse_input

from . import theme


THUMB = QSize(150, 150)
_CARDS: dict = {}  # template name -> (thumbnail, one-line figures, details): built once per session


def template_card(name: str):
    """A template's thumbnail diagram (its blocks in their category colours, wired, laid out top to bottom) and
    its size and cost (from the analysis: no torch)."""
    if name in _CARDS:
        return _CARDS[name]
    from builder.core.analysis import analyze
    from builder.core.layout import layered_positions
    from builder.insight.report import human
    graph = templates.build(name)
    pos = layered_positions(graph)
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    span_x, span_y = (max(xs) - min(xs) + theme.BLOCK_W) or 1, (max(ys) - min(ys) + theme.BLOCK_H) or 1
    scale = min((THUMB.width() - 12) / span_x, (THUMB.height() - 12) / span_y)
    ox = (THUMB.width() - span_x * scale) / 2 - min(xs) * scale
    oy = (THUMB.height() - span_y * scale) / 2 - min(ys) * scale
    pix = QPixmap(THUMB)
    pix.fill(theme.CANVAS_BACKGROUND)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(QPen(theme.WIRE, 1.0))
    w, h = theme.BLOCK_W * scale, max(theme.BLOCK_H * scale, 2.0)
    for u, v, _ in graph.edges():
        (x0, y0), (x1, y1) = pos[u], pos[v]
        painter.drawLine(QPointF(ox + x0 * scale + w / 2, oy + y0 * scale + h),
                         QPointF(ox + x1 * scale + w / 2, oy + y1 * scale))
    painter.setPen(Qt.NoPen)
    for b in graph.blocks():
        x, y = pos[b.id]
        painter.setBrush(theme.colour(b.spec.category if b.spec else ""))
        painter.drawRoundedRect(QRectF(ox + x * scale, oy + y * scale, w, h), 1.5, 1.5)
    painter.end()
    a = analyze(graph)
    inp = next((r.out_shape for r in a.blocks.values() if r.type == "input"), None)
    size = "x".join(map(str, inp)) if inp else "?"
    figures = f"{human(a.inference.params)} params · {human(a.inference.macs)} MACs"
    details = (f"<b>{name}</b><br>{templates.describe(name)}<br><br><b>input</b> {size}<br>"
               f"<b>blocks</b> {len(graph)} on the canvas<br><b>inference</b> {a.inference.params:,} params, "
               f"{a.inference.macs:,} MACs<br><b>training</b> {a.training.params:,} params (with auxiliary heads)")
    _CARDS[name] = (pix, figures, details)
    return _CARDS[name]


class TemplateGallery(QDialog):
    """New from template: a card per template (a thumbnail of its diagram, its size and cost), details of the
    chosen one, and its options. Cards fill in one per turn of the event loop: the dialog opens at once."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("New from template")
        self.resize(900, 600)
        self.list = QListWidget()
        self.list.setViewMode(QListView.IconMode)
        self.list.setIconSize(THUMB)
        self.list.setGridSize(QSize(THUMB.width() + 44, THUMB.height() + 52))
        self.list.setTextElideMode(Qt.ElideNone)
        self.list.setResizeMode(QListView.Adjust)
        self.list.setMovement(QListView.Static)
        self.list.setWordWrap(True)
        self.list.setSpacing(4)
        blank = QPixmap(THUMB)
        blank.fill(theme.CANVAS_BACKGROUND)
        for name in templates.TEMPLATES:
            it = QListWidgetItem(QIcon(blank), f"{name}\n…")
            it.setData(Qt.UserRole, name)
            it.setToolTip(templates.describe(name))
            self.list.addItem(it)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.RichText)
        self.details.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.details.setMinimumWidth(240)
        self._pending = list(range(self.list.count()))
        self._filler = QTimer(self)
        self._filler.timeout.connect(self._fill_one)
        self._filler.start(0)
        self.list.currentItemChanged.connect(self._show_details)
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
        row.addWidget(self.details, 1)
        lay.addLayout(row, 1)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.graph = None

    def _fill_one(self):
        if not self._pending:
            self._filler.stop()
            return
        row = self._pending.pop(0)
        it = self.list.item(row)
        pix, figures, _ = template_card(it.data(Qt.UserRole))
        it.setIcon(QIcon(pix))
        it.setText(f"{it.data(Qt.UserRole)}\n{figures}")
        if it is self.list.currentItem():
            self._show_details(it)

    def _show_details(self, item, _previous=None):
        if item is None:
            return
        name = item.data(Qt.UserRole)
        if name in _CARDS:
            self.details.setText(_CARDS[name][2])
        else:
            self.details.setText(f"<b>{name}</b><br>{templates.describe(name)}")

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
