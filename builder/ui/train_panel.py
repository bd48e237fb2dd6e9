"""The Training panel: runs the training engine in a child process and plots what it reports."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QProcess, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from builder.core import project
from builder.train.settings import (RECIPES, DoneEvent, EpochEvent, ErrorEvent, Exit, ResumedEvent, StartEvent,
                                    StepEvent, WarningEvent, config_argv, parse_event, settings_fields)

from . import theme
from .child import builder_process
from .choosers import scrolled
from .plots import LazyPlots
from .text import esc as _esc

KILL_AFTER_MS = 5000


class TrainPanel(QWidget):
    event_received = Signal(object)  # a typed event (builder.train.settings), passed on as it is
    finished = Signal(int)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        from builder.train.settings import default_dataset  # torch-free: the window opens without torch

        self.doc = doc
        self.proc: QProcess | None = None
        self._buffer = b""
        self._tmpdir = tempfile.TemporaryDirectory(prefix="block-builder-train-")
        # the form is made from Config's own fields: the same settings, names and help as `block-builder train`
        self.editors: dict = {}
        basic, more = QFormLayout(), QFormLayout()
        for layout, section in ((basic, "basic"), (more, "more")):
            layout.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
            for f in settings_fields(section):
                editor = _editor(f)
                self.editors[f.name] = editor
                if f.metadata["kind"] == "flag":
                    layout.addRow("", editor)
                else:
                    layout.addRow(f.metadata["label"] or f.name.replace("_", " "), editor)
        self.dataset, self.epochs, self.batch = self.editors["dataset"], self.editors["epochs"], \
            self.editors["batch_size"]
        self.recipe, self.device, self.max_steps = self.editors["recipe"], self.editors["device"], \
            self.editors["max_steps"]
        self.out, self.resume = self.editors["out"], self.editors["resume"]
        self.run_out = ""  # the folder of the run started last
        self.dataset.setCurrentText(default_dataset())
        self.epochs.setValue(2)
        self.out.setPlaceholderText("a new folder under runs/ for each run")
        self.gpus = QSpinBox()
        self.gpus.setRange(1, 64)
        self.gpus.setToolTip("More than one: the run goes under torchrun with DistributedDataParallel")
        more.addRow("GPUs", self.gpus)
        self.from_weights = QCheckBox("start from the project's weights (an imported model's)")
        self.from_weights.setChecked(True)
        basic.addRow("", self.from_weights)
        self.more_button = QToolButton()
        self.more_button.setText("More settings")
        self.more_button.setCheckable(True)
        self.more_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.more_button.setArrowType(Qt.RightArrow)
        self.more_box = QWidget()
        self.more_box.setLayout(more)
        self.more_box.setVisible(False)
        self.more_button.toggled.connect(self._show_more)
        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel("Idle")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.RichText)
        self.speed = QLabel("")
        self.problems = QLabel("")  # settings out of range, said while typing
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #C62828")
        # Start, Stop, progress and status stay at the top of the panel, whatever its height: never below the fold
        top = QHBoxLayout()
        top.addWidget(self.start_button)
        top.addWidget(self.stop_button)
        top.addWidget(self.progress, 1)
        top.addWidget(self.speed)
        form_widget = QWidget()
        form_box = QVBoxLayout(form_widget)
        form_box.setContentsMargins(0, 0, 4, 0)
        form_box.addLayout(basic)
        form_box.addWidget(self.more_button)
        form_box.addWidget(self.more_box)
        from .candidates import CandidatesEditor
        self.search_settings = CandidatesEditor(doc, training=True)  # these settings' candidates for a search
        self.search_settings.show_block("train")
        form_box.addWidget(self.search_settings)
        form_box.addStretch(1)
        scroll = scrolled(form_widget)  # a short dock scrolls the form, never the buttons
        scroll.setMinimumWidth(form_widget.sizeHint().width() + 24)
        self.form_scroll = scroll
        self.plots = LazyPlots(self._make_plots)  # the curves, made when the panel first shows or a run reports
        lower = QHBoxLayout()
        lower.addWidget(scroll, 0)
        lower.addWidget(self.plots, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addLayout(top)
        lay.addWidget(self.status)
        lay.addWidget(self.problems)
        lay.addLayout(lower, 1)
        self.problems.hide()
        self._kill_timer = QTimer(self)  # a child: it dies with the panel, never fires on a deleted process
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill_if_running)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        for editor in self.editors.values():
            _changed_signal(editor).connect(self.check_settings)
        doc.graph_replaced.connect(self._model_changed)
        self._reset_series()

    def _make_plots(self, pg):
        self.loss_plot = pg.PlotWidget(title="loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.acc_plot = pg.PlotWidget(title="accuracy")
        self.acc_plot.setLabel("bottom", "epoch")
        self.acc_plot.setYRange(0, 1)
        self.acc_plot.addLegend(offset=(-10, -10))
        train_c, val_c = theme.SERIES["train"], theme.SERIES["validation"]
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen(train_c, width=2), name="training (per step)")
        self.val_loss_curve = self.loss_plot.plot(pen=pg.mkPen(val_c, width=2), symbol="o", symbolSize=6,
                                                  symbolBrush=val_c, symbolPen=val_c, name="validation (per epoch)")
        self.train_acc_curve = self.acc_plot.plot(pen=pg.mkPen(train_c, width=2), symbol="s", symbolSize=7,
                                                  symbolBrush=train_c, symbolPen=train_c, name="training")
        self.val_acc_curve = self.acc_plot.plot(pen=pg.mkPen(val_c, width=2, style=Qt.DashLine), symbol="o",
                                                symbolSize=7, symbolBrush=val_c, symbolPen=val_c, name="validation")
        for plot in (self.loss_plot, self.acc_plot):
            plot.setMinimumHeight(110)
            plot.setMinimumWidth(200)
        return [(self.loss_plot, 1), (self.acc_plot, 1)]

    def _show_more(self, on):
        self.more_box.setVisible(on)
        self.more_button.setArrowType(Qt.DownArrow if on else Qt.RightArrow)

    def _model_changed(self, _graph=None):
        """Another network: the curves of the old one go (a run in progress keeps its curves until it ends)."""
        if not self.running:
            self._reset_series()
            self.progress.setValue(0)
            self.speed.setText("")
            self.status.setText("Idle")

    def config(self):
        """The settings on the form as a Config (the recipe: the chosen one, else the project's)."""
        from builder.train.settings import Config
        values = {name: _value(editor, f) for name, editor, f in self._fields()}
        values["recipe"] = values["recipe"] or self.doc.graph.meta.get("recipe") or "sgd"
        if not values["out"]:  # a folder of its own under runs/ where the app was started (the child runs elsewhere);
            from builder.runs import latest_run_folder  # to continue: the network's newest run
            from builder.train.settings import run_folder
            root = Path.cwd() / "runs"
            folder = latest_run_folder(self.doc.graph.name, root) if values.get("resume") else None
            values["out"] = str((folder or run_folder(self.doc.graph.name, root)).resolve())
        return Config(**values)

    def _fields(self):
        for f in settings_fields("basic") + settings_fields("more"):
            yield f.name, self.editors[f.name], f

    def check_settings(self, *_):
        """Check the form as it is typed: every problem is said under the buttons and Start waits for a fix."""
        from builder.train.settings import SettingsError
        try:
            problem = None
            self.config().check()
        except (SettingsError, ValueError) as e:
            problem = str(e)
        self.problems.setText(problem or "")
        self.problems.setVisible(bool(problem))
        self.start_button.setEnabled(problem is None and not self.running)
        return problem

    def _reset_series(self):
        self.steps, self.losses = [], []
        self.epochs_seen, self.train_acc, self.val_acc, self.val_loss, self.epoch_steps = [], [], [], [], []
        if self.plots.built:
            for curve in (self.loss_curve, self.val_loss_curve, self.train_acc_curve, self.val_acc_curve):
                curve.setData([], [])

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
        problem = self.check_settings()
        if problem:
            return False
        path = Path(self._tmpdir.name) / "project.json"
        project.save(self.doc.graph, path)
        cfg = self.config()
        self.run_out = cfg.out  # the run's folder (a new one under runs/ unless the field names one)
        args = ["-m", "builder", "train", str(path), "--json"] + config_argv(cfg) + ["--log-every", "1"]
        if self.gpus.value() > 1:
            args += ["--gpus", str(self.gpus.value())]
        if self.doc.graph.meta.get("weights"):  # the project is saved to a temporary folder: its weights are
            weights = self.doc.own_weights()      # named by their real path
            if self.from_weights.isChecked() and weights is not None:
                args += ["--weights", str(weights)]
            else:
                args.append("--from-scratch")
        self._reset_series()
        self.proc = builder_process(self)
        self.proc.readyReadStandardOutput.connect(self._read)
        self.proc.finished.connect(self._finished)
        self._stderr = b""
        self._error_shown = False
        self._done = False
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
                event = parse_event(json.loads(line))
            except ValueError:
                continue
            if event is not None:
                self._handle(event)

    def _handle(self, e):
        """One typed event of the run (builder.train.settings): the plots, the progress and the status follow."""
        if isinstance(e, StartEvent):
            self._per_epoch = max(int(e.steps_per_epoch), 1)
            self.progress.setRange(0, max(int(e.total_steps), 1))
            self.progress.setValue(0)
            amp = f", AMP {e.amp}" if e.amp else ""
            self.status.setText(f"Training on <b>{e.device}</b>{amp}: {e.dataset}, {e.train_size:,} images, recipe "
                                f"{e.recipe}")
        elif isinstance(e, StepEvent):
            self.plots.ensure()
            self.steps.append(e.step)
            self.losses.append(e.loss)
            self.loss_curve.setData(self.steps, self.losses)
            self.progress.setValue(int(e.step))
            per_epoch = getattr(self, "_per_epoch", e.total_steps)
            in_epoch = max(min(e.epoch * per_epoch, e.total_steps) - e.step, 0)
            to_go = max(e.total_steps - e.step, 0)
            epoch_eta = e.eta_s * in_epoch / to_go if to_go else 0.0
            self.speed.setText(f"epoch {e.epoch} · step {e.step}/{e.total_steps} · {e.images_per_s:.0f} images/s · "
                               f"{_eta(epoch_eta)} left in the epoch, {_eta(e.eta_s)} in the run")
        elif isinstance(e, EpochEvent):
            self.plots.ensure()
            self.epochs_seen.append(e.epoch)
            self.train_acc.append(e.train_accuracy)
            self.val_acc.append(e.val_accuracy)
            self.train_acc_curve.setData(self.epochs_seen, self.train_acc)
            self.epoch_steps.append(self.steps[-1] if self.steps else 0)
            self.val_loss.append(e.val_loss)
            self.val_loss_curve.setData(self.epoch_steps, self.val_loss)
            self.val_acc_curve.setData(self.epochs_seen, self.val_acc)
        elif isinstance(e, DoneEvent):
            self._done = True
            verb = "Stopped" if e.stopped else "Done"
            left_out = (f" · <span style='color:#E65100'>{e.skipped_images:,} unusable images left out</span>"
                        if e.skipped_images else "")
            self.status.setText(f"{verb}: validation accuracy <b>{e.val_accuracy * 100:.2f}%</b> in "
                                f"{e.seconds:.1f}s · weights in {_esc(e.checkpoint)}{left_out}")
        elif isinstance(e, WarningEvent):
            self.status.setText(f"<span style='color:#E65100'>{_esc(e.message)}</span>")
        elif isinstance(e, ResumedEvent):
            self.status.setText(f"Resumed at epoch {e.epoch}, step {e.step}")
        elif isinstance(e, ErrorEvent):
            self._error_shown = True
            self.status.setText(f"<span style='color:#C62828'>{_esc(e.message)}</span>")
        self.event_received.emit(e)

    def _finished(self, code, _status=None):
        self._kill_timer.stop()
        self._read()
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.check_settings()
        if code != Exit.OK and not self._error_shown and not self._done:
            tail = self._stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            why = {Exit.SETTINGS: "its settings were refused", Exit.TRAINING: "training could not go on"}.get(
                code, f"code {code}")
            self.status.setText(f"<span style='color:#C62828'>The training process ended ({why}): "
                                f"{_esc(tail[0])}</span>")
        self.finished.emit(code)


def _eta(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


def _editor(f):
    """The widget for one Config field: a spin box (its range), a combo (its choices, or an editable list), a
    check box, or a line edit (optional numbers: empty is the recipe's value)."""
    m = f.metadata
    if m["kind"] == "flag":
        w = QCheckBox(m["label"] or f.name.replace("_", " "))
        w.setChecked(bool(f.default))
    elif m["kind"] == "int":
        w = QSpinBox()
        w.setRange(m["lo"] if m["lo"] is not None else -2 ** 31, min(m["hi"] if m["hi"] is not None else 2 ** 31 - 1,
                                                                      2 ** 31 - 1))
        w.setValue(f.default)
        if m.get("special"):
            w.setSpecialValueText(m["special"])
    elif f.name == "recipe":
        w = QComboBox()
        w.addItem("the project's recipe", "")
        for r in RECIPES:
            w.addItem(r, r)
    elif m["choices"] or m["suggest"]:
        w = QComboBox()
        w.addItems(list(m["choices"] or m["suggest"]))
        w.setEditable(bool(m["suggest"]))
        w.setCurrentText(str(f.default))
    else:
        w = QLineEdit("" if f.default is None else str(f.default))
        if f.default is None:
            w.setPlaceholderText("the recipe's" if m["kind"] == "float" else "none")
    w.setToolTip(m["help"])
    return w


def _changed_signal(w):
    if isinstance(w, QCheckBox):
        return w.toggled
    if isinstance(w, QSpinBox):
        return w.valueChanged
    if isinstance(w, QComboBox):
        return w.currentTextChanged
    return w.textChanged


def _value(w, f):
    """The field's value from its widget; a number that does not parse raises ValueError naming the field."""
    if isinstance(w, QCheckBox):
        return w.isChecked() if f.default is not None else (True if w.isChecked() else None)
    if isinstance(w, QSpinBox):
        return w.value()
    if isinstance(w, QComboBox):
        return (w.currentData() if f.name == "recipe" else w.currentText().strip())
    text = w.text().strip()
    if f.metadata["kind"] == "float":
        if not text:
            return None if f.default is None else f.default
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{f.metadata['label'] or f.name} must be a number, not {text!r}") from None
    return text or (None if f.default is None else f.default)
