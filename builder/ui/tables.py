"""The per-layer table dock: sortable, with the GoogLeNet paper's Table 1 view."""
from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from blocks import fmt_shape
from builder.insight.report import PAPER_COLUMNS, block_rows, human, paper_rows

SORT_ROLE = Qt.UserRole + 2
ID_ROLE = Qt.UserRole + 3
MEASURED = ("forward ms", "share", "GFLOP/s", "backward ms")
MODES = ["Blocks", "Layers (inside composites)", "Paper table (GoogLeNet Table 1)"]


def _field(f) -> str:
    if f is None:
        return ""
    return "whole input" if f.whole else f"{f.h.size:g}x{f.w.size:g} /{f.h.jump:g}"


class LayerTable(QWidget):
    """Rows and the canvas are linked both ways: choosing a row selects its block (scrolled into view); selecting
    a block selects its row."""
    block_selected = Signal(str)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self._selecting = False
        self.doc = doc
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.model = QStandardItemModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.AscendingOrder)  # network order until the user clicks a header
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QTableView.SelectRows)
        self.view.setSelectionMode(QTableView.SingleSelection)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.view.horizontalHeader().setStretchLastSection(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.mode)
        top.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.view)
        self.mode.currentIndexChanged.connect(lambda _: self.refresh(self.doc.analysis))
        self.view.selectionModel().currentRowChanged.connect(self._row_chosen)
        self._timer = QTimer(self)  # a burst of edits rebuilds the table once, after the canvas is current
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(lambda: self.refresh(self.doc.analysis))
        doc.analysed.connect(lambda _: self._timer.start())
        self.profile = None  # a measured latency profile, shown beside the MACs until cleared
        self.refresh(doc.analysis)

    def set_profile(self, result):
        """Measured per-block times (builder.train.profile) as columns beside the MACs; None removes them."""
        self.profile = result
        self.refresh(self.doc.analysis)

    def _row_chosen(self, current, _previous=None):
        if self._selecting or not current.isValid():
            return
        bid = self.proxy.index(current.row(), 0).data(ID_ROLE)
        if bid:
            self.block_selected.emit(bid)

    def block_at_row(self, row: int):
        """The block id of a row as the table shows it (sorted or not), or None."""
        return self.proxy.index(row, 0).data(ID_ROLE) if row >= 0 else None

    def select(self, bid):
        """Select the row of ``bid`` (None: clear) without echoing it back to the canvas."""
        self._selected = bid
        self._selecting = True
        try:
            if bid is None:
                self.view.clearSelection()
                return
            hits = self.proxy.match(self.proxy.index(0, 0), ID_ROLE, bid, 1, Qt.MatchExactly)
            if hits:
                self.view.setCurrentIndex(hits[0])
                self.view.scrollTo(hits[0])
        finally:
            self._selecting = False

    def refresh(self, analysis):
        if analysis is None or not self.isVisible() and self.model.rowCount():
            self._stale = True
            return
        g = self.doc.graph
        mode = self.mode.currentIndex()
        if mode == 2:
            cols = PAPER_COLUMNS
            rows = paper_rows(g, analysis)
        else:
            from builder.insight.receptive import receptive_fields
            cols = ["id", "kind", "output", "params", "MACs", "FLOPs", "receptive field", "errors"]
            measured = {r["id"]: r for r in self.profile["rows"]} if self.profile and mode == 0 else {}
            if measured:
                cols[6:6] = ["forward ms", "share", "GFLOP/s"] + (
                    ["backward ms"] if "backward_ms" in next(iter(measured.values())) else [])
            rows = block_rows(g, analysis, per_layer=mode == 1)
            fields = receptive_fields(g, analysis) if mode == 0 else {}  # top-level blocks have fields
        model = QStandardItemModel(self)  # filled aside, then shown at once: rows appended to the shown model
        model.setHorizontalHeaderLabels(cols)  # would move the current row through every one of them
        for r in rows:
            items = []
            for c in cols:
                if mode == 2:
                    v = r.get(c, "")
                    shown = (f"{v / 1024:.0f}K" if c == "params" else f"{v / 1e6:.0f}M") if c in ("params", "ops") \
                        and isinstance(v, int) and v else ("" if v in (None, 0) and c in ("params", "ops") else str(v))
                    sort = v if isinstance(v, (int, float)) else str(v)
                else:
                    m = measured.get(r["id"], {})
                    v = {"id": "  " * r["depth"] + r["id"], "kind": r["kind"],
                         "output": fmt_shape(r["output_shape"]) if r["output_shape"] else "—",
                         "params": r["params"], "MACs": r["macs"], "FLOPs": 2 * r["macs"],
                         "receptive field": _field(fields.get(r["id"])),
                         "forward ms": m.get("ms"), "share": m.get("share"), "GFLOP/s": m.get("gflops"),
                         "backward ms": m.get("backward_ms"),
                         "errors": "; ".join(r["errors"])}[c]
                    if isinstance(v, float) or (v is None and c in MEASURED):
                        shown = "" if v is None else (f"{v * 100:.1f}%" if c == "share" else f"{v:.2f}" if
                                                      c != "GFLOP/s" else f"{v:.1f}")
                        sort = -1.0 if v is None else v
                    else:
                        shown = human(v) if isinstance(v, int) else v
                        sort = v if isinstance(v, int) else str(v)
                it = QStandardItem(shown)
                it.setEditable(False)
                it.setData(sort, SORT_ROLE)
                if isinstance(v, int):
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                    it.setToolTip(f"{v:,}")
                elif isinstance(v, float):
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if r.get("errors"):
                    it.setForeground(QColor("#C62828"))
                items.append(it)
            items[0].setData(r.get("id"), ID_ROLE)
            model.appendRow(items)
        self._selecting = True  # the swap is not the user choosing a row
        try:
            old, self.model = self.model, model
            self.proxy.setSourceModel(model)
            old.deleteLater()
        finally:
            self._selecting = False
        self._stale = False
        if getattr(self, "_selected", None):
            self.select(self._selected)

    def showEvent(self, event):
        super().showEvent(event)
        if getattr(self, "_stale", False):
            self.refresh(self.doc.analysis)
