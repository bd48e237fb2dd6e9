"""The per-layer table dock: sortable, with the GoogLeNet paper's Table 1 view."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor
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
        self.model = RowsModel([], [], _paper_cell, self)
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
        # widths fitted to 200 rows once per rebuild (refresh), then the user's: a header in ResizeToContents mode
        # asks the model again at every resize of the dock (about 0.3 s at 20,000 rows)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.view.horizontalHeader().setResizeContentsPrecision(200)
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
            row = self.model.row_of(bid)
            if row is not None:
                hit = self.proxy.mapFromSource(self.model.index(row, 0))
                self.view.setCurrentIndex(hit)
                self.view.scrollTo(hit)
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
            made = self.doc.made_beside("layer_rows") if mode == 0 else None  # an opened network's, made aside
            if made is not None:
                rows, fields = made
            else:
                rows = block_rows(g, analysis, per_layer=mode == 1)
                fields = receptive_fields(g, analysis) if mode == 0 else {}  # top-level blocks have fields
        cell = _paper_cell if mode == 2 else _block_cell(measured, fields)
        model = RowsModel(cols, rows, cell, self)  # made aside, then shown at once; its cells are written when
        #                                            shown (a 20,000-row network is not 160,000 items)
        self._selecting = True  # the swap is not the user choosing a row
        try:
            old, self.model = self.model, model
            self.proxy.setSourceModel(model)
            old.deleteLater()
        finally:
            self._selecting = False
        self._stale = False
        self._fit_columns()
        if getattr(self, "_selected", None):
            self.select(self._selected)

    def _fit_columns(self, sample: int = 200) -> None:
        """Each column as wide as its header and its widest text in the first ``sample`` rows (what Qt's
        ResizeToContents does, without asking the model for every role of every sampled cell: 0.5 s at
        20,000 rows)."""
        fm = self.view.fontMetrics()
        header = self.view.horizontalHeader()
        hm = header.fontMetrics()
        rows = min(sample, self.model.rowCount())
        for col, name in enumerate(self.model.cols):
            width = max([hm.horizontalAdvance(name) + 24] +
                        [fm.horizontalAdvance(self.model.text(r, col)) + 14 for r in range(rows)])
            header.resizeSection(col, min(width, 420))

    def showEvent(self, event):
        super().showEvent(event)
        if getattr(self, "_stale", False):
            self.refresh(self.doc.analysis)


# ------------------------------------------------------------------------------ the table's model

ERROR_TEXT = QColor("#C62828")
RIGHT = int(Qt.AlignRight | Qt.AlignVCenter)


class RowsModel(QAbstractTableModel):
    """The rows of the table (report dicts) and how a cell shows: ``cell(row, column) -> (shown, sort key, value)``,
    computed when the view asks for it, so a rebuild costs what the visible rows cost."""

    def __init__(self, cols: list, rows: list, cell, parent=None):
        super().__init__(parent)
        self.cols, self.rows, self._make = list(cols), rows, cell
        self._cells: dict = {}  # (row, col) -> (shown, sort, value): the view asks each cell for several roles
        self._rows_by_id = None

    def _cell(self, row: int, col: int):
        key = (row, col)
        hit = self._cells.get(key)
        if hit is None:
            hit = self._cells[key] = self._make(self.rows[row], self.cols[col])
        return hit

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.cols)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole and 0 <= section < len(self.cols):
            return self.cols[section]
        return None

    def row_of(self, bid: str) -> int | None:
        """The row of block ``bid`` (its first, in the layers view), or None."""
        if self._rows_by_id is None:
            self._rows_by_id = {}
            for i, r in enumerate(self.rows):
                self._rows_by_id.setdefault(r.get("id"), i)
        return self._rows_by_id.get(bid)

    def text(self, row: int, col: int) -> str:
        """What cell (row, col) shows."""
        return self._cell(row, col)[0]

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        if role == ID_ROLE:
            return r.get("id") if index.column() == 0 else None
        if role == Qt.ForegroundRole:
            return ERROR_TEXT if r.get("errors") else None
        if role not in (Qt.DisplayRole, SORT_ROLE, Qt.TextAlignmentRole, Qt.ToolTipRole):
            return None
        shown, sort, value = self._cell(index.row(), index.column())
        if role == Qt.DisplayRole:
            return shown
        if role == SORT_ROLE:
            return sort
        if role == Qt.TextAlignmentRole:
            return RIGHT if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else None


def _paper_cell(r: dict, c: str):
    v = r.get(c, "")
    if c in ("params", "ops"):
        shown = "" if v in (None, 0) else (f"{v / 1024:.0f}K" if c == "params" else f"{v / 1e6:.0f}M") \
            if isinstance(v, int) else str(v)
    else:
        shown = str(v)
    return shown, (v if isinstance(v, (int, float)) else str(v)), (v if isinstance(v, int) else None)


def _block_cell(measured: dict, fields: dict):
    def cell(r: dict, c: str):
        m = measured.get(r["id"], {}) if measured else {}
        if c == "id":
            v = "  " * r["depth"] + r["id"]
        elif c == "kind":
            v = r["kind"]
        elif c == "output":
            v = fmt_shape(r["output_shape"]) if r["output_shape"] else "—"
        elif c == "params":
            v = r["params"]
        elif c == "MACs":
            v = r["macs"]
        elif c == "FLOPs":
            v = 2 * r["macs"]
        elif c == "receptive field":
            v = _field(fields.get(r["id"]))
        elif c == "errors":
            v = "; ".join(r["errors"])
        else:  # a measured column
            v = m.get({"forward ms": "ms", "share": "share", "GFLOP/s": "gflops", "backward ms": "backward_ms"}[c])
        if isinstance(v, float) or (v is None and c in MEASURED):
            shown = "" if v is None else (f"{v * 100:.1f}%" if c == "share" else f"{v:.2f}" if c != "GFLOP/s"
                                          else f"{v:.1f}")
            return shown, (-1.0 if v is None else v), v
        if isinstance(v, int):
            return human(v), v, v
        return v, str(v), v
    return cell
