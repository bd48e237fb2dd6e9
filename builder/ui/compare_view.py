"""The compare view: two networks side by side, coloured by what became of each block (added green, removed red,
changed amber, unchanged dimmed), a table of the differences linked to both canvases, the views scrolling
together, and the total deltas in the status line. File > Compare with..., the saved file, a state in the undo
history and the Advisor's refactor preview all open it (:func:`builder.insight.diff.compare` does the work)."""
from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QGraphicsItem, QHBoxLayout, QHeaderView, QLabel,
                               QMainWindow,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from blocks import REGISTRY
from builder.insight import diff
from builder.insight.report import human, human_bytes

from . import theme
from .canvas import CanvasScene, CanvasView
from .document import Document

COLUMNS = ["", "A", "B", "Kind", "What changed", "Δ params", "Δ MACs", "Δ activations"]
SYMBOL = {"added": "+", "removed": "−", "changed": "~", "renamed": "="}


class _Pane(QWidget):
    """One side: its title over a read-only canvas of its own copy of the network."""

    def __init__(self, graph, title: str, parent=None):
        super().__init__(parent)
        self.doc = Document(graph.copy(), self)
        self.scene = CanvasScene(self.doc, self)
        self.view = CanvasView(self.scene)
        self.view.setAcceptDrops(False)
        for item in self.scene.blocks.values():
            item.setFlag(QGraphicsItem.ItemIsMovable, False)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: bold; padding: 2px")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.view, 1)

    def mark(self, marks: dict) -> None:
        for bid, item in self.scene.blocks.items():
            item.set_mark(marks.get(bid, "same"))

    def show_block(self, bid: str | None) -> None:
        self.scene.clearSelection()
        item = self.scene.blocks.get(bid) if bid else None
        if item is not None:
            item.setSelected(True)
            self.view.centerOn(item)


class CompareWindow(QMainWindow):
    """``a`` and ``b``: the two graphs (copied: nothing done here touches them); ``title_a``/``title_b`` name them."""

    def __init__(self, a, b, title_a: str, title_b: str, parent=None, level: str = "blocks"):
        super().__init__(parent)
        self.setAttribute(Qt.WA_DeleteOnClose)
        self.setWindowTitle(f"Compare: {title_a} → {title_b}")
        self.left, self.right = _Pane(a, f"A: {title_a}"), _Pane(b, f"B: {title_b}")
        self.level = QComboBox()
        self.level.addItem("Blocks (as on the canvas)", "blocks")
        self.level.addItem("Layers (composites opened)", "layers")
        self.level.setToolTip("Compare the diagrams' blocks, or every layer of the two lowered networks")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(4, QHeaderView.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeToContents)
        self.table.setColumnWidth(0, 24)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        top = QSplitter(Qt.Horizontal)
        top.addWidget(self.left)
        top.addWidget(self.right)
        below = QWidget()
        bl = QVBoxLayout(below)
        bl.setContentsMargins(2, 2, 2, 2)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(QLabel("Compare"))
        row.addWidget(self.level)
        bl.addLayout(row)
        bl.addWidget(self.table, 1)
        split = QSplitter(Qt.Vertical)
        split.addWidget(top)
        split.addWidget(below)
        split.setSizes([560, 260])
        self.setCentralWidget(split)
        self.resize(1400, 900)
        self.rows: list = []  # per table row: (kind, A block id or None, B block id or None)
        self.result: diff.Diff | None = None
        self._syncing = False
        for one, other in ((self.left.view, self.right.view), (self.right.view, self.left.view)):
            one.horizontalScrollBar().valueChanged.connect(lambda v, o=other: self._scroll(o, Qt.Horizontal, v))
            one.verticalScrollBar().valueChanged.connect(lambda v, o=other: self._scroll(o, Qt.Vertical, v))
            one.zoom_changed.connect(lambda z, o=other: self._zoom(o, z))
        self.table.currentCellChanged.connect(lambda r, *_: self._row(r))
        self.level.currentIndexChanged.connect(lambda _: self.compare())
        self.compare()

    # ------------------------------------------------------------------ the comparison
    def compare(self) -> diff.Diff:
        level = self.level.currentData()
        d = diff.compare(*(diff.side(p.doc.graph, level, p.doc.analysis) for p in (self.left, self.right)), level)
        self.result = d
        # one scene rect for both sides: their scroll bars have the same range, so they scroll together
        both = self.left.scene.sceneRect().united(self.right.scene.sceneRect())
        for pane in (self.left, self.right):
            pane.scene.setSceneRect(both)
        marks = d.status()
        self.left.mark(marks["a"])
        self.right.mark(marks["b"])
        self._fill(d)
        t = d.totals()
        inf, tr = t["inference"], t["training"]
        self.summary.setText(
            f"<b>{d.summary()}</b> &nbsp; inference: params {inf['params']:+,} ({human(d.a.analysis.inference.params)}"
            f" → {human(d.b.analysis.inference.params)}), MACs {inf['macs']:+,} "
            f"({human(d.a.analysis.inference.macs)} → {human(d.b.analysis.inference.macs)}), activations "
            f"{diff.signed(inf['activation_bytes'], human_bytes)} per image; training params {tr['params']:+,}")
        self.statusBar().showMessage(d.summary() + f": inference params {inf['params']:+,}, MACs {inf['macs']:+,}")
        return d

    def _fill(self, d: diff.Diff) -> None:
        rows = [("removed", u.block, None, u.kind, "only in A", {k: -v for k, v in u.figures().items()}, u.id, "")
                for u in d.removed]
        rows += [("added", None, u.block, u.kind, "only in B", u.figures(), "", u.id) for u in d.added]
        for c in d.changed:
            rows.append(("changed", d.a.by_id[c.a].block, d.b.by_id[c.b].block, c.kind, diff.describe_change(c),
                         c.delta, c.a, c.b))
        for a, b, la, lb in d.renamed:
            what = f"renamed {a} → {b}" if a != b else f"label {la!r} → {lb!r}"
            rows.append(("renamed", d.a.by_id[a].block, d.b.by_id[b].block, d.b.by_id[b].kind, what,
                         dict.fromkeys(("params", "macs", "activation_bytes"), 0), a, b))
        self.table.setRowCount(0)
        self.table.setRowCount(len(rows))
        self.rows = []
        for r, (kind, block_a, block_b, type_id, what, delta, id_a, id_b) in enumerate(rows):
            spec = REGISTRY.get(type_id)
            cells = [SYMBOL[kind], id_a, id_b, spec.title if spec else type_id, what, f"{delta['params']:+,}", f"{delta['macs']:+,}",
                     diff.signed(delta["activation_bytes"], human_bytes)]
            for col, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if col == 0:
                    it.setBackground(QColor(theme.DIFF.get(kind, theme.BODY)))
                    it.setTextAlignment(Qt.AlignCenter)
                if col >= 5:
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                it.setToolTip(what)
                self.table.setItem(r, col, it)
            self.rows.append((kind, block_a, block_b))

    def _row(self, r: int) -> None:
        if not 0 <= r < len(self.rows):
            return
        _, a, b = self.rows[r]
        self._syncing = True  # each view goes to its own block; they do not drag each other there
        try:
            self.left.show_block(a)
            self.right.show_block(b)
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ scrolling together
    def _scroll(self, view: CanvasView, orientation, value: int) -> None:
        if self._syncing or not shiboken6.isValid(view):  # (a view being destroyed as the window closes)
            return
        self._syncing = True
        try:
            (view.horizontalScrollBar() if orientation == Qt.Horizontal else view.verticalScrollBar()).setValue(value)
        finally:
            self._syncing = False

    def _zoom(self, view: CanvasView, z: float) -> None:
        if self._syncing or not shiboken6.isValid(view) or abs(view.transform().m11() - z) < 1e-9:
            return
        self._syncing = True
        try:
            view.zoom(z / view.transform().m11())
        finally:
            self._syncing = False

    def showEvent(self, event):
        super().showEvent(event)
        if not getattr(self, "_fitted", False):
            self._fitted = True
            self._syncing = True
            try:  # one zoom for both, the smaller of their fits: scrolled together, they show alike parts
                for pane in (self.left, self.right):
                    pane.view.fit()
                z = min(pane.view.transform().m11() for pane in (self.left, self.right))
                for pane in (self.left, self.right):
                    pane.view.zoom(z / pane.view.transform().m11())
                    pane.view.user_moved = False
                    bars = pane.view.horizontalScrollBar(), pane.view.verticalScrollBar()
                    bars[1 if not pane.scene.horizontal else 0].setValue(bars[1 if not pane.scene.horizontal
                                                                              else 0].minimum())
            finally:
                self._syncing = False

