"""The Training panel: runs the training engine in a child process and plots what it reports."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from builder import project
from .text import esc as _esc

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_MS = 5000


class TrainPanel(QWidget):
    event_received = Signal(dict)
    finished = Signal(int)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        import pyqtgraph as pg
        from builder.train.engine import RECIPES, default_dataset

        self.doc = doc
        self.proc: QProcess | None = None
        self._buffer = b""
        self._tmpdir = tempfile.TemporaryDirectory(prefix="block-builder-train-")
        self.dataset = QComboBox()
        self.dataset.setEditable(True)
        self.dataset.addItems(["fashion-mnist", "synthetic", "mnist", "cifar10"])
        self.dataset.setCurrentText(default_dataset())
        self.dataset.setToolTip("A dataset name, or the path of an image folder (one sub-folder per class)")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(2)
        self.batch = QSpinBox()
        self.batch.setRange(1, 65536)
        self.batch.setValue(64)
        self.recipe = QComboBox()
        self.recipe.addItem("template's recipe", "")
        for r in RECIPES:
            self.recipe.addItem(r, r)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.gpus = QSpinBox()
        self.gpus.setRange(1, 64)
        self.gpus.setToolTip("More than one: the run goes under torchrun with DistributedDataParallel")
        self.max_steps = QSpinBox()
        self.max_steps.setRange(0, 10_000_000)
        self.max_steps.setSpecialValueText("no limit")
        self.out = QLineEdit(str(Path.cwd() / "runs" / "latest"))
        self.resume = QCheckBox("continue from the last checkpoint in this folder")
        self.from_weights = QCheckBox("start from the project's weights (an imported model's)")
        self.from_weights.setChecked(True)
        self.start_button = QPushButton("Start training")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel("Idle")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.RichText)
        self.speed = QLabel("")
        form = QFormLayout()
        form.addRow("dataset", self.dataset)
        form.addRow("epochs", self.epochs)
        form.addRow("batch size", self.batch)
        form.addRow("recipe", self.recipe)
        form.addRow("device", self.device)
        form.addRow("GPUs", self.gpus)
        form.addRow("max steps", self.max_steps)
        form.addRow("checkpoints", self.out)
        form.addRow("", self.resume)
        form.addRow("", self.from_weights)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addLayout(buttons)
        left.addWidget(self.progress)
        left.addWidget(self.speed)
        left.addWidget(self.status)
        left.addStretch(1)
        pg.setConfigOptions(antialias=True, background="w", foreground="#37474F")
        self.loss_plot = pg.PlotWidget(title="loss")
        self.loss_plot.setLabel("bottom", "step")
        self.acc_plot = pg.PlotWidget(title="accuracy")
        self.acc_plot.setLabel("bottom", "epoch")
        self.acc_plot.setYRange(0, 1)
        self.acc_plot.addLegend()
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#1E88E5", width=2))
        self.train_acc_curve = self.acc_plot.plot(pen=pg.mkPen("#43A047", width=2), symbol="o", name="train")
        self.val_acc_curve = self.acc_plot.plot(pen=pg.mkPen("#D81B60", width=2), symbol="o", name="validation")
        controls = QWidget()
        controls.setLayout(left)
        scroll = QScrollArea()  # the dock may be short: the form scrolls instead of forcing its height
        scroll.setWidgetResizable(True)
        scroll.setWidget(controls)
        scroll.setFrameShape(QScrollArea.NoFrame)
        for plot in (self.loss_plot, self.acc_plot):
            plot.setMinimumHeight(120)
        lay = QHBoxLayout(self)
        lay.addWidget(scroll, 1)
        lay.addWidget(self.loss_plot, 2)
        lay.addWidget(self.acc_plot, 2)
        self._kill_timer = QTimer(self)  # a child: it dies with the panel, never fires on a deleted process
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill_if_running)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self._reset_series()

    def _reset_series(self):
        self.steps, self.losses = [], []
        self.epochs_seen, self.train_acc, self.val_acc = [], [], []
        self.loss_curve.setData([], [])
        self.train_acc_curve.setData([], [])
        self.val_acc_curve.setData([], [])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.NotRunning

    def start(self):
        if self.running:
            return False
        a = self.doc.analysis
        if a is None or not a.ok:
            self.status.setText("<span style='color:#C62828'>Fix the errors in the graph before training.</span>")
            return False
        path = Path(self._tmpdir.name) / "project.json"
        project.save(self.doc.graph, path)
        args = ["-m", "builder", "train", str(path), "--json", "--dataset", self.dataset.currentText().strip(),
                "--epochs", str(self.epochs.value()), "--batch-size", str(self.batch.value()),
                "--device", self.device.currentText(), "--out", self.out.text().strip() or "runs/latest",
                "--log-every", "1"]
        if self.recipe.currentData():
            args += ["--recipe", self.recipe.currentData()]
        if self.resume.isChecked():
            args.append("--resume")
        if self.gpus.value() > 1:
            args += ["--gpus", str(self.gpus.value())]
        if self.max_steps.value():
            args += ["--max-steps", str(self.max_steps.value())]
        own = self.doc.graph.meta.get("weights")
        if own:  # the project is saved to a temporary folder: its weights are named by their real path
            weights = Path(self.doc.path).parent / str(own) if self.doc.path else None
            if self.from_weights.isChecked() and weights is not None and weights.is_file():
                args += ["--weights", str(weights)]
            else:
                args.append("--from-scratch")
        self._reset_series()
        self.proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONPATH", str(ROOT) + os.pathsep + env.value("PYTHONPATH", ""))
        env.insert("PYTHONUNBUFFERED", "1")
        self.proc.setProcessEnvironment(env)
        self.proc.setWorkingDirectory(str(ROOT))
        self.proc.readyReadStandardOutput.connect(self._read)
        self.proc.finished.connect(self._finished)
        self._stderr = b""
        self._error_shown = False
        self.proc.readyReadStandardError.connect(lambda: setattr(self, "_stderr", self._stderr
                                                                 + bytes(self.proc.readAllStandardError())))
        self.proc.start(sys.executable, args)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText("Starting…")
        return True

    def stop(self):
        """Ask the run to stop (it saves a checkpoint within one step); kill it if it does not."""
        if not self.running:
            return
        self.status.setText("Stopping…")
        self.proc.terminate()
        self._kill_timer.start(KILL_AFTER_MS)

    def _kill_if_running(self):
        if self.running:
            self.proc.kill()

    def shutdown(self):
        self._kill_timer.stop()
        if self.running:
            self.proc.kill()
            self.proc.waitForFinished(3000)

    def _read(self):
        self._buffer += bytes(self.proc.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and "event" in event:
                self._handle(event)

    def _handle(self, e):
        kind = e["event"]
        if kind == "start":
            self.progress.setRange(0, max(int(e["total_steps"]), 1))
            self.progress.setValue(0)
            amp = f", AMP {e['amp']}" if e.get("amp") else ""
            self.status.setText(f"Training on <b>{e['device']}</b>{amp}: {e['dataset']}, {e['train_size']:,} "
                                f"images, recipe {e['recipe']}")
        elif kind == "step":
            self.steps.append(e["step"])
            self.losses.append(e["loss"])
            self.loss_curve.setData(self.steps, self.losses)
            self.progress.setValue(int(e["step"]))
            self.speed.setText(f"epoch {e['epoch']} · step {e['step']}/{e['total_steps']} · "
                               f"{e['images_per_s']:.0f} images/s · {_eta(e['eta_s'])} left")
        elif kind == "epoch":
            self.epochs_seen.append(e["epoch"])
            self.train_acc.append(e["train_accuracy"])
            self.val_acc.append(e["val_accuracy"])
            self.train_acc_curve.setData(self.epochs_seen, self.train_acc)
            self.val_acc_curve.setData(self.epochs_seen, self.val_acc)
        elif kind == "done":
            verb = "Stopped" if e.get("stopped") else "Done"
            left_out = (f" · <span style='color:#E65100'>{e['skipped_images']:,} unusable images left out</span>"
                        if e.get("skipped_images") else "")
            self.status.setText(f"{verb}: validation accuracy <b>{e['val_accuracy'] * 100:.2f}%</b> in "
                                f"{e['seconds']:.1f}s · weights in {_esc(e['checkpoint'])}{left_out}")
        elif kind == "warning":
            self.status.setText(f"<span style='color:#E65100'>{_esc(e['message'])}</span>")
        elif kind == "resumed":
            self.status.setText(f"Resumed at epoch {e['epoch']}, step {e['step']}")
        elif kind == "error":
            self._error_shown = True
            self.status.setText(f"<span style='color:#C62828'>{_esc(e['message'])}</span>")
        self.event_received.emit(e)

    def _finished(self, code, _status=None):
        self._kill_timer.stop()
        self._read()
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if code != 0 and not self._error_shown and "Done" not in self.status.text() \
                and "Stopped" not in self.status.text():
            tail = self._stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            self.status.setText(f"<span style='color:#C62828'>The training process ended (code {code}): "
                                f"{_esc(tail[0])}</span>")
        self.finished.emit(code)


def _eta(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")
