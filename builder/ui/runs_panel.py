"""The Runs view: the training runs recorded in a folder; the ticked ones compared (a table of their network,
params, MACs, settings, best accuracy and time, their validation curves overlaid, and accuracy against MACs);
the graph a run trained opened again."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from builder.runs import find_runs

from .plots import LazyPlots

def _macs(r):
    return ((r.doc.get("totals") or {}).get("inference") or {}).get("macs")


def _best(r):
    final = r.doc.get("final") or {}
    acc = final.get("best_val_accuracy", final.get("val_accuracy"))
    return acc if isinstance(acc, (int, float)) else r.val_accuracy


def _setting(r, key):
    v = (r.doc.get("settings") or {}).get(key)
    return "recipe" if v is None else str(v)


def _human(v) -> str:
    from builder.insight.report import human
    return human(v) if isinstance(v, (int, float)) else ""


COLUMNS = (("run", lambda r: r.name), ("network", lambda r: str(r.doc.get("name", "?"))),
           ("params", lambda r: _human(((r.doc.get("totals") or {}).get("inference") or {}).get("params"))),
           ("MACs", lambda r: _human(_macs(r))),
           ("settings", lambda r: f"{_setting(r, 'recipe')}, lr {_setting(r, 'lr')}, batch {_setting(r, 'batch_size')}, "
                                  f"{len(r.doc.get('epochs') or [])} epoch(s)"),
           ("best accuracy", lambda r: f"{_best(r) * 100:.2f}%" if isinstance(_best(r), (int, float)) else ""),
           ("time", lambda r: f"{(r.doc.get('final') or {}).get('seconds', 0):.1f} s" if r.doc.get("final") else ""))

COLOURS = ["#1E88E5", "#D81B60", "#43A047", "#FB8C00", "#8E24AA", "#00897B", "#6D4C41", "#3949AB"]


class RunsPanel(QWidget):
    open_graph = Signal(object, str)  # (graph, run folder)

    def __init__(self, folder: str = "", parent=None):
        super().__init__(parent)
        self.folder = QLineEdit(folder)
        self.folder.setToolTip("A folder of run folders (each has a run.json): the Train panel's checkpoints go "
                               "in one")
        self.refresh_button = QPushButton("Refresh")
        self.open_button = QPushButton("Open its graph")
        self.open_button.setEnabled(False)
        self.list = QListWidget()
        self.note = QLabel("")
        self.note.setStyleSheet("color: #607D8B")
        self.plots = LazyPlots(self._make_plot)  # made when the panel first shows or curves are overlaid
        top = QHBoxLayout()
        top.addWidget(QLabel("runs in"))
        top.addWidget(self.folder, 1)
        top.addWidget(self.refresh_button)
        left = QVBoxLayout()
        left.addLayout(top)
        left.addWidget(self.list, 1)
        left.addWidget(self.note)
        left.addWidget(self.open_button)
        self.table = QTableWidget(0, len(COLUMNS))  # the ticked runs side by side
        self.table.setHorizontalHeaderLabels([c for c, _ in COLUMNS])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.plots)
        right.addWidget(self.table)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 1)
        lay.addWidget(right, 1)
        self.runs = []
        self.curves = {}
        self.refresh_button.clicked.connect(self.refresh)
        self.folder.returnPressed.connect(self.refresh)
        self.list.itemChanged.connect(lambda _item: self._overlay())
        self.list.currentRowChanged.connect(lambda row: self.open_button.setEnabled(row >= 0))
        self.open_button.clicked.connect(self._open)

    def _make_plot(self, pg):
        self.plot = pg.PlotWidget(title="validation accuracy")
        self.plot.setLabel("bottom", "epoch")
        self.plot.setYRange(0, 1)
        self.plot.addLegend()
        self.plot.setMinimumHeight(120)
        self.cost_plot = pg.PlotWidget(title="best accuracy against MACs")
        self.cost_plot.setLabel("bottom", "MACs")
        self.cost_plot.setMinimumHeight(120)
        self.cost_points = pg.ScatterPlotItem(size=9)
        self.cost_plot.addItem(self.cost_points)
        return [(self.plot, 1), (self.cost_plot, 1)]

    def set_folder(self, folder) -> None:
        self.folder.setText(str(folder))
        self.refresh()

    def refresh(self) -> None:
        checked = {r.folder for r, i in zip(self.runs, range(self.list.count()))
                   if self.list.item(i).checkState() == Qt.Checked}
        self.runs = find_runs(Path(self.folder.text().strip() or "."))
        self.list.blockSignals(True)
        self.list.clear()
        for r in self.runs:
            item = QListWidgetItem(r.summary())
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if r.folder in checked else Qt.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.note.setText(f"{len(self.runs)} run(s); tick runs to overlay their curves" if self.runs
                          else "no runs recorded here yet")
        self._overlay()

    def _overlay(self) -> None:
        checked = any(self.list.item(i).checkState() == Qt.Checked for i in range(len(self.runs)))
        if not checked and not self.plots.built:
            return  # nothing to draw yet: pyqtgraph waits
        import pyqtgraph as pg
        self.plots.ensure()
        self.plot.clear()
        self.curves = {}
        legend = self.plot.plotItem.legend
        if legend is not None:
            legend.clear()
        shown = 0
        for i, r in enumerate(self.runs):
            if self.list.item(i).checkState() != Qt.Checked:
                continue
            x, y = r.curve("val_accuracy")
            lr = (r.doc.get("settings") or {}).get("lr")
            self.curves[str(r.folder)] = self.plot.plot(
                x, y, pen=pg.mkPen(COLOURS[shown % len(COLOURS)], width=2), symbol="o",
                name=f"{r.name} (lr {lr if lr is not None else 'recipe'})")
            shown += 1
        self._compare([r for i, r in enumerate(self.runs) if self.list.item(i).checkState() == Qt.Checked])

    def _compare(self, runs) -> None:
        """The ticked runs in the table, and their best accuracy against their MACs."""
        import pyqtgraph as pg
        self.table.setRowCount(len(runs))
        points = []
        for row, r in enumerate(runs):
            for col, (_, cell) in enumerate(COLUMNS):
                self.table.setItem(row, col, QTableWidgetItem(cell(r)))
            macs, acc = _macs(r), _best(r)
            if macs is not None and acc is not None:
                points.append({"pos": (macs, acc), "brush": pg.mkBrush(COLOURS[row % len(COLOURS)]),
                               "data": str(r.folder)})
        self.cost_points.setData(points)

    def _open(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.runs):
            run = self.runs[row]
            try:
                graph = run.graph()
            except Exception as e:  # noqa: BLE001  a record whose graph cannot be read: said, not raised
                self.note.setText(f"<span style='color:#C62828'>{e}</span>")
                return
            self.open_graph.emit(graph, str(run.folder))
