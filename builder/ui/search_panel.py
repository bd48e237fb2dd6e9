"""The Search panel: ``block-builder search`` on the open design's marked candidates, in a child process (the
window never waits), with its progress (trial i of N, time left), the trials as a table and a scatter of accuracy
against MACs with the Pareto front; a trial chosen there is shown against the current design (the compare view)
and Apply puts it on the canvas as one undo step."""
from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from builder.core import project
from builder.search.space import describe

from .choosers import dataset_box, scrolled
from .child import builder_process
from .plots import LazyPlots
from .text import esc

TRIAL = re.compile(r"^trial (\d+): ")


class SearchPanel(QWidget):
    updated = Signal(list)  # the trials (trials.json's rows) as last read
    compare_requested = Signal(object, str)  # (the trial's design, its name): show it against the current one

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.proc: QProcess | None = None
        self.rows: list = []
        self.out: Path | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="block-builder-search-")
        self.trials = QSpinBox()
        self.trials.setRange(1, 10_000)
        self.trials.setValue(12)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.steps = QSpinBox()
        self.steps.setRange(0, 10_000_000)
        self.steps.setValue(300)
        self.steps.setSpecialValueText("no limit")
        self.budget_macs = QLineEdit()
        self.budget_macs.setPlaceholderText("no limit (e.g. 417K, 1.5M)")
        self.budget_params = QLineEdit()
        self.budget_params.setPlaceholderText("no limit")
        self.dataset = dataset_box()
        self.objectives = QComboBox()
        self.objectives.addItem("accuracy (TPE)", "accuracy")
        self.objectives.addItem("accuracy and MACs (NSGA-II)", "accuracy,macs")
        self.principles = QCheckBox("keep the design principles")
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("runs/search-<date-time>")
        self.folder.setToolTip("The study's folder: study.db, trials.json, best.json, pareto.svg and the trials' runs")
        self.start_button = QPushButton("Start the search")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.status = QLabel("Mark candidates on blocks (Inspector > Search candidates), set the budget, then Start.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.RichText)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["trial", "state", "accuracy", "MACs", "choices"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setSelectionMode(QTableWidget.SingleSelection)
        self.apply_button = QPushButton("Apply to the canvas")
        self.compare_button = QPushButton("Compare with the current design…")
        for b in (self.apply_button, self.compare_button):
            b.setEnabled(False)
        form = QFormLayout()
        form.addRow("trials", self.trials)
        form.addRow("epochs", self.epochs)
        form.addRow("max steps", self.steps)
        form.addRow("budget: MACs", self.budget_macs)
        form.addRow("budget: params", self.budget_params)
        form.addRow("dataset", self.dataset)
        form.addRow("objectives", self.objectives)
        form.addRow("", self.principles)
        form.addRow("folder", self.folder)
        from .candidates import CandidatesEditor
        self.settings = CandidatesEditor(doc, training=True)  # train.lr=0.01,0.1 and the like
        self.settings.show_block("train")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.settings)
        left.addLayout(buttons)
        left.addWidget(self.status)
        left.addStretch(1)
        left_w = scrolled(left)
        middle = QVBoxLayout()
        middle.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.apply_button)
        row.addWidget(self.compare_button)
        middle.addLayout(row)
        middle_w = QWidget()
        middle_w.setLayout(middle)
        self.plots = LazyPlots(self._make_plot)
        split = QSplitter()
        split.addWidget(left_w)
        split.addWidget(middle_w)
        split.addWidget(self.plots)
        split.setSizes([320, 460, 420])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(split)
        self.start_button.clicked.connect(lambda: self.start())
        self.stop_button.clicked.connect(self.stop)
        self.table.itemSelectionChanged.connect(self._chosen)
        self.table.itemDoubleClicked.connect(lambda _item: self._compare())
        self.apply_button.clicked.connect(self.apply)
        self.compare_button.clicked.connect(self._compare)

    def _make_plot(self, pg):
        self.plot = pg.PlotWidget(title="accuracy against MACs (the Pareto front in red)")
        self.plot.setLabel("left", "validation accuracy (%)")
        self.plot.setLabel("bottom", "MACs")
        self.scatter = pg.ScatterPlotItem(size=8, brush=pg.mkBrush("#90A4AE"))
        self.front_line = pg.PlotDataItem(pen=pg.mkPen("#D81B60", width=2), symbol="o", symbolBrush="#D81B60")
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.front_line)
        self.scatter.sigClicked.connect(lambda _s, points, *_: self._clicked(points[0].data()) if len(points) else None)
        return [(self.plot, 1)]

    # ------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.NotRunning

    def start(self, out: str | None = None) -> bool:
        from builder.search.space import SpaceError, choices
        if self.running:
            return False
        g = self.doc.graph
        try:
            space = choices(g)
        except SpaceError as e:
            self.status.setText(f"<span style='color:#C62828'>{esc(e)}</span>")
            return False
        if not space:
            self.status.setText("<span style='color:#C62828'>No candidates are marked: select a block, then "
                                "Inspector > Search candidates.</span>")
            return False
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = out or self.folder.text().strip()
        self.out = Path(out) if out else Path.cwd() / "runs" / f"search-{stamp}"
        path = Path(self._tmp.name) / "design.json"
        project.save(g, path)
        args = ["-m", "builder", "search", str(path), "--trials", str(self.trials.value()), "--epochs",
                str(self.epochs.value()), "--out", str(self.out), "--dataset", self.dataset.currentText().strip(),
                "--objectives", self.objectives.currentData()]
        if self.steps.value():
            args += ["--max-steps", str(self.steps.value())]
        for flag, box in (("--budget-macs", self.budget_macs), ("--budget-params", self.budget_params)):
            if box.text().strip():
                args += [flag, box.text().strip()]
        if self.principles.isChecked():
            args.append("--keep-principles")
        self._out, self._err, self._started, self._done = b"", b"", time.monotonic(), 0
        self.proc = builder_process(self)
        self.proc.readyReadStandardOutput.connect(self._read)
        self.proc.readyReadStandardError.connect(lambda: setattr(self, "_err", self._err +
                                                                 bytes(self.proc.readAllStandardError())))
        self.proc.finished.connect(self._finished)
        self.proc.start(sys.executable, args)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText(f"Searching {len(space)} choice(s) in {self.trials.value()} trials…")
        return True

    def stop(self) -> None:
        if self.running:
            self.proc.kill()
            self.proc.waitForFinished(3000)

    def shutdown(self) -> None:
        self.stop()

    def _read(self) -> None:
        self._out += bytes(self.proc.readAllStandardOutput())
        lines = self._out.decode(errors="replace").splitlines()
        done = sum(1 for ln in lines if TRIAL.match(ln))
        if done != self._done:
            self._done = done
            n = self.trials.value()
            spent = time.monotonic() - self._started
            left = spent / max(done, 1) * max(n - done, 0)
            self.status.setText(f"trial {done} of {n}; about {left:.0f} s left")
            self.load()

    def _finished(self, code, _status=None) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.load()
        if code not in (0, 1):
            lines = self._err.decode(errors="replace").strip().splitlines()
            message = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else
                           f"the search ended with code {code}")
            self.status.setText(f"<span style='color:#C62828'>{esc(message)}</span>")
            return
        states = [r["state"] for r in self.rows]
        self.status.setText(f"{len(states)} trials: {states.count('complete')} trained, {states.count('pruned')} "
                            f"pruned; the files are in {esc(str(self.out))}")

    # ------------------------------------------------------------ results
    def load(self, folder=None) -> list:
        """Read trials.json (of the running search, or of ``folder``) into the table and the scatter."""
        if folder is not None:
            self.out = Path(folder)
        try:
            self.rows = json.loads((self.out / "trials.json").read_text(encoding="utf-8"))["trials"]
        except (OSError, ValueError, KeyError, TypeError):
            return self.rows
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            acc = f"{r['val_accuracy'] * 100:.2f}%" if r.get("val_accuracy") is not None else ""
            macs = f"{r['macs']:,}" if r.get("macs") is not None else ""
            state = r["state"] + (f" ({r['why']})" if r.get("why") and r["state"] != "complete" else "")
            if r.get("same_as") is not None:
                state += f" (as trial {r['same_as']})"
            cells = (str(r["number"]), state, acc, macs,
                     describe(r.get("choices") or {}))
            for col, text in enumerate(cells):
                self.table.setItem(i, col, QTableWidgetItem(text))
        self._draw()
        self.updated.emit(self.rows)
        return self.rows

    def _draw(self) -> None:
        from builder.search.pareto import front
        done = [r for r in self.rows if r["state"] == "complete" and r.get("val_accuracy") is not None]
        self.plots.ensure()
        self.scatter.setData([{"pos": (r["macs"], r["val_accuracy"] * 100), "data": r["number"]} for r in done])
        f = front(done)
        self.front_line.setData([r["macs"] for r in f], [r["val_accuracy"] * 100 for r in f])

    def _clicked(self, number) -> None:
        """A point of the scatter: its trial chosen in the table, and its design against the current one."""
        for i, r in enumerate(self.rows):
            if r["number"] == number:
                self.table.selectRow(i)
                self._compare()

    def chosen(self):
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.rows[rows[0].row()] if rows else None

    def _chosen(self) -> None:
        r = self.chosen()
        ok = r is not None and bool(r.get("choices"))
        self.apply_button.setEnabled(ok)
        self.compare_button.setEnabled(ok)

    def design(self, row):
        """The trial's design: the current one with its block choices set."""
        from builder.search.space import with_choices
        picked = {k: tuple(v) if isinstance(v, list) else v for k, v in row["choices"].items()}
        return with_choices(self.doc.graph, picked)

    def apply(self) -> bool:
        r = self.chosen()
        if r is None:
            return False
        picked = {k: v for k, v in r["choices"].items() if k.rpartition(".")[0] in self.doc.graph}

        def edit(g):
            for name, value in picked.items():
                block, _, param = name.rpartition(".")
                g.set_params(block, {param: value})
        return self.doc.push(f"Apply search trial {r['number']}", edit)

    def _compare(self) -> None:
        r = self.chosen()
        if r is not None:
            g, _ = self.design(r)
            self.compare_requested.emit(g, f"trial {r['number']}")
