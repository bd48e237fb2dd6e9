"""The palette: block kinds by category, with a search field; drag one onto the canvas (or press Enter)."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap, QPainter
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from blocks import REGISTRY

from . import theme
from .canvas import MIME_KIND

ROLE_KIND = Qt.UserRole + 1


def _swatch(colour: QColor) -> QIcon:
    pm = QPixmap(14, 14)
    pm.fill(Qt.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.Antialiasing)
    p.setBrush(colour)
    p.setPen(colour.darker(130))
    p.drawRoundedRect(1, 1, 12, 12, 3, 3)
    p.end()
    return QIcon(pm)


class PaletteTree(QTreeWidget):
    def mimeData(self, items):
        data = QMimeData()
        kinds = [it.data(0, ROLE_KIND) for it in items if it.data(0, ROLE_KIND)]
        if kinds:
            data.setData(MIME_KIND, kinds[0].encode())
            data.setText(kinds[0])
        return data

    def mimeTypes(self):
        return [MIME_KIND]


class Palette(QWidget):
    add_requested = Signal(str)  # type id

    def __init__(self, parent=None):
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search blocks (e.g. 1x1, inception, pool)")
        self.search.setClearButtonEnabled(True)
        self.tree = PaletteTree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QTreeWidget.DragOnly)
        self.tree.setIndentation(12)
        self.tree.setUniformRowHeights(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.search)
        lay.addWidget(self.tree)
        self.items: dict[str, QTreeWidgetItem] = {}
        cats = REGISTRY.categories()
        for cat in theme.PALETTE_ORDER + [c for c in cats if c not in theme.PALETTE_ORDER]:
            specs = cats.get(cat)
            if not specs or not any(s.in_palette for s in specs):
                continue
            top = QTreeWidgetItem([cat])
            top.setFlags(Qt.ItemIsEnabled)
            f = top.font(0)
            f.setBold(True)
            top.setFont(0, f)
            top.setForeground(0, QBrush(theme.colour(cat).darker(120)))
            self.tree.addTopLevelItem(top)
            for spec in specs:
                if not spec.in_palette:
                    continue
                it = QTreeWidgetItem([spec.title])
                it.setData(0, ROLE_KIND, spec.type_id)
                it.setToolTip(0, f"<b>{spec.title}</b><br>{spec.description}<br><i>{spec.type_id}</i>")
                it.setIcon(0, _swatch(theme.colour(cat)))
                it.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                top.addChild(it)
                self.items[spec.type_id] = it
            top.setExpanded(True)
        self.search.textChanged.connect(self.filter)
        self.tree.itemActivated.connect(self._activated)

    def filter(self, text: str):
        text = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            shown = 0
            for j in range(top.childCount()):
                it = top.child(j)
                kind = it.data(0, ROLE_KIND)
                spec = REGISTRY[kind]
                hay = f"{spec.title} {kind} {spec.description} {top.text(0)}".lower()
                hide = bool(text) and not all(w in hay for w in text.split())
                it.setHidden(hide)
                shown += not hide
            top.setHidden(shown == 0)
            if text:
                top.setExpanded(True)

    def _activated(self, item, _col=0):
        kind = item.data(0, ROLE_KIND)
        if kind:
            self.add_requested.emit(kind)
