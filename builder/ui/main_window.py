"""The main window: palette | canvas | inspector, bottom docks, live totals in the status bar."""
from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QDialog, QDockWidget, QLabel, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from blocks import fmt_shape
from builder.core import edits
from builder.core import project
from builder.core.errors import ProjectError
from builder.core.graph import make_id
from builder.core.layout import lay_out, unplaced
from builder.insight.report import human, human_bytes
from exports import EXPORTS

from .actions import COMMANDS, EditActions
from .canvas import CanvasScene, CanvasView
from .dialogs import TemplateGallery, ask_path
from .document import Document
from .inspector import Inspector
from .overlays import FindBar, MessageStrip, Minimap
from .palette import Palette
from .tables import LayerTable

def settings() -> QSettings:
    base = os.environ.get("BLOCK_BUILDER_CONFIG_DIR")
    if base:
        return QSettings(str(Path(base) / "block-builder.ini"), QSettings.IniFormat)
    return QSettings("BlockBuilder", "Block Builder")


class NetworkUndoKeys(QObject):
    """An event filter for the inspector's fields: Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y) undo and redo the network, as
    everywhere else in the window, instead of the field's own text (a line edit or spin box would take them).
    Fields whose text is not the network's (Find, the training form, the palette's search) keep their text undo."""

    REDO_EXTRA = (QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y"))

    def eventFilter(self, obj, event):
        if event.type() == QEvent.ShortcutOverride and (
                event.matches(QKeySequence.Undo) or event.matches(QKeySequence.Redo)
                or QKeySequence(event.keyCombination()) in self.REDO_EXTRA):
            event.ignore()
            return True  # not accepted by the field: the Edit menu's shortcut runs
        return False


class MainWindow(QMainWindow):
    # Every file picker goes through this one function (a Qt file dialog); tests answer it directly.
    ask_path = staticmethod(ask_path)
    imported = Signal(str)  # the project file an import wrote and opened
    profiled = Signal(dict)  # a latency profile was measured and drawn
    opened = Signal()  # a network was put on the canvas and framed (a big one: when its last item is drawn)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._first_size()
        self.doc = Document(parent=self)
        self.scene = CanvasScene(self.doc, self)
        self.view = CanvasView(self.scene)
        self.edit_actions = EditActions(self)
        for name in COMMANDS:  # the editing commands live in actions.py; the window offers them by name
            setattr(self, name, getattr(self.edit_actions, name))
        self.find_bar = FindBar(lambda: self.doc.graph)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.setSpacing(0)
        centre_layout.addWidget(self.find_bar)
        centre_layout.addWidget(self.view, 1)
        self.setCentralWidget(centre)
        self.minimap = Minimap(self.view)
        self.messages = MessageStrip(centre)
        self.find_bar.found.connect(self.go_to_block)
        self.palette = Palette()
        self.inspector = Inspector(self.doc)
        self.layers = LayerTable(self.doc)
        self._dock("Blocks", self.palette, Qt.LeftDockWidgetArea, 270)
        self._dock("Inspector", self.inspector, Qt.RightDockWidgetArea, 330)
        self.layers_dock = self._dock("Layers", self.layers, Qt.BottomDockWidgetArea, 220)
        self.bottom_docks = [self.layers_dock]
        from .advisor_panel import AdvisorPanel
        from .train_panel import TrainPanel
        self.advisor = AdvisorPanel(self.doc)
        self.advisor_dock = self.add_bottom_dock("Advisor", self.advisor)
        self.trainer = TrainPanel(self.doc)
        self.train_dock = self.add_bottom_dock("Training", self.trainer)
        from .runs_panel import RunsPanel
        out = self.trainer.out.text().strip()
        self.runs = RunsPanel(str(Path(out).parent) if out else str(Path.cwd() / "runs"))
        self.runs_dock = self.add_bottom_dock("Runs", self.runs)
        # the Runs dock follows a run live: it appears when it starts, its figures with every epoch and its end
        self.trainer.event_received.connect(
            lambda e: self.runs.set_folder(Path(self.trainer.run_out).parent)
            if type(e).__name__ in ("StartEvent", "EpochEvent", "DoneEvent") else None)
        from .evaluation_panel import EvaluationPanel
        self.evaluation = EvaluationPanel(self.doc, ask_path=self.ask_path)
        self.evaluation_dock = self.add_bottom_dock("Evaluation", self.evaluation)
        from .feature_maps import FeatureMapsPanel
        self.feature_maps = FeatureMapsPanel(self.doc)
        self.feature_maps_dock = self.add_bottom_dock("Feature maps", self.feature_maps)
        from .explain_panel import ExplainPanel
        from .follow import Thumbnails
        self.explain = ExplainPanel(self.doc, runs_folder=lambda: self.runs.folder.text().strip() or "runs")
        self.explain_dock = self.add_bottom_dock("Explain", self.explain)
        self.thumbnails = Thumbnails(self.scene)
        self.explain.followed.connect(self._followed)
        self.feature_maps.weights_source = self.explain.weights.current
        self.feature_maps.explain_requested.connect(self.explain_image)
        self.evaluation.explain_requested.connect(self.explain_image)
        self.trainer.finished.connect(lambda _code: self._trained_weights(self.trainer.run_out))
        from .search_panel import SearchPanel
        self.search = SearchPanel(self.doc)
        self.search_dock = self.add_bottom_dock("Search", self.search)
        from .comparing import Comparing, HistoryPanel
        self.comparing = Comparing(self)  # the compare view: File > Compare with..., History, the Advisor
        self.history = HistoryPanel(self.doc, self.comparing.with_history)
        self.history_dock = self.add_bottom_dock("History", self.history)
        self.advisor.compare_requested.connect(self.comparing.with_refactor)
        self.search.compare_requested.connect(
            lambda g, name: self.comparing.open(self.doc.graph, g, self.doc.graph.name, name))
        self.trainer.finished.connect(lambda _code: self.runs.set_folder(Path(self.trainer.run_out).parent))
        self.trainer.finished.connect(lambda _code: self.evaluation.use_run(self.trainer.run_out))
        self.trainer.event_received.connect(self._training_event)
        self.runs.open_graph.connect(self._open_run_graph)
        self.advisor.block_selected.connect(self.go_to_block)
        self.layers.block_selected.connect(self.go_to_block)
        self.advisor.findings_changed.connect(self.scene.apply_advice)
        from .figure_panel import FigurePanel
        self.figure = FigurePanel(self.doc, ask_path=lambda *a, **k: self.ask_path(*a, **k))
        self.figure_dock = self._dock("Figure", self.figure, Qt.RightDockWidgetArea, 420)
        self.splitDockWidget(self.inspector.parentWidget(), self.figure_dock, Qt.Horizontal)
        self.figure_dock.hide()  # File > Export figure shows it beside the canvas
        self.layers_dock.raise_()
        self.resizeDocks([self.layers_dock], [230], Qt.Vertical)
        self.totals = QLabel()
        self.totals.setTextFormat(Qt.RichText)
        self.problems = QLabel()
        self.zoom_label = QLabel("100%")
        self.statusBar().addPermanentWidget(self.problems)
        self.statusBar().addPermanentWidget(self.totals, 1)
        self._space_timer = QTimer(self)
        self._space_timer.setSingleShot(True)
        self._space_timer.setInterval(300)
        self._space_timer.timeout.connect(self._search_space)
        self.space_label = QLabel()  # the search space's designs and cost range, when choices are marked
        self.space_label.setTextFormat(Qt.RichText)
        self.statusBar().addPermanentWidget(self.space_label)
        self.statusBar().addPermanentWidget(self.zoom_label)
        self._actions()
        from .context_menus import ContextMenus
        self.menus = ContextMenus(self)  # right click / the Menu key on the canvas, a Layers row, a run
        for widget, build in ((self.layers.view, self.menus.layers), (self.runs.list, self.menus.runs)):
            widget.setContextMenuPolicy(Qt.CustomContextMenu)
            widget.customContextMenuRequested.connect(build)
        self.doc.analysed.connect(self._analysed)
        self.doc.produced.connect(self._select_produced)
        self.doc.undo_stack.cleanChanged.connect(self._update_title)
        self.doc.path_changed.connect(self._update_title)
        self.doc.graph_replaced.connect(lambda _: self._update_title())
        self.doc.graph_replaced.connect(self._watch_direction)
        self._watch_direction(self.doc.graph)
        self.doc.edit_failed.connect(lambda m: self.say(m, kind="warning"))
        self.scene.selectionChanged.connect(self._selection_changed)
        self.scene.block_double_clicked.connect(self.double_clicked)
        self.view.block_dropped.connect(self.add_block)
        self.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.palette.add_requested.connect(lambda k: self.add_block(k, None))
        self.inspector.expand_button.clicked.connect(self.expand_selected)
        self._update_title()
        self.restore_state()
        self.inspector.key_filter = NetworkUndoKeys(self.inspector)  # Ctrl+Z in its fields undoes the network
        from .recovery import Recovery, autosave_seconds
        self.recovery = Recovery()
        self.other_windows: list = []  # windows this one opened (recovered documents)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start(int(autosave_seconds() * 1000))

    # ------------------------------------------------------------------ autosave and recovery
    def autosave(self):
        """Write unsaved work to the recovery file (never over the user's own file); a folder that cannot be
        written is said in the status bar, and editing goes on."""
        if self.doc.dirty:
            try:
                self.recovery.write(self.doc.graph, self.doc.path)
            except ProjectError as e:
                self.say(f"Autosave failed: {e}", kind="warning")
        else:
            problem = self.recovery.discard()
            if problem:
                self.say(f"Autosave: {problem}", kind="warning")

    def offer_recovery(self) -> int:
        """After a crash: offer every recovery file no running window owns, one at a time (Recover, Discard, or
        Keep for later); only the file answered is removed. The first recovered document opens here when this
        window holds no unsaved work, the others in windows of their own. Files that cannot be read are removed
        after saying so. Returns how many documents were recovered."""
        from . import recovery
        found = recovery.pending(exclude=self.recovery.path)
        unreadable = [o for o in found if o.problem]
        if unreadable:
            for o in unreadable:
                recovery.remove(o.path)
            QMessageBox.warning(self, "Autosave files removed",
                                "These autosave files could not be recovered and were removed:\n\n"
                                + "\n".join(f"{o.path.name}: {o.problem}" for o in unreadable))
        offered = [o for o in found if not o.problem]
        recovered = 0
        for i, o in enumerate(offered):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(o.saved_at)) if o.saved_at else \
                "an earlier session"
            box = QMessageBox(QMessageBox.Question, "Recover unsaved work",
                              f"Block Builder did not close cleanly. Recover the unsaved work autosaved at {stamp}?"
                              + (f" ({i + 1} of {len(offered)})" if len(offered) > 1 else ""), parent=self)
            box.setInformativeText(f"Network: {o.graph.name} ({len(o.graph)} blocks)\n"
                                   f"Original file: {o.original_path or 'never saved'}")
            recover = box.addButton("Recover", QMessageBox.AcceptRole)
            discard = box.addButton("Discard", QMessageBox.DestructiveRole)
            box.addButton("Keep for later", QMessageBox.RejectRole)
            box.setDefaultButton(recover)
            box.exec()
            if box.clickedButton() is discard:
                recovery.remove(o.path)
            elif box.clickedButton() is recover:
                target = self if recovered == 0 and not self.doc.dirty else self._new_window()
                target.load_graph(o.graph, o.original_path, layout=False)
                target.doc.undo_stack.resetClean()  # recovered work is unsaved work: the title shows it
                target._update_title()
                target.autosave()  # this window's own autosave holds it before the old file goes
                if target.recovery.path.exists():  # (an unwritable folder: the old file stays, nothing lost)
                    recovery.remove(o.path)
                target.say("Recovered unsaved work; save it to keep it")
                recovered += 1
        return recovered

    def _new_window(self) -> "MainWindow":
        """Another main window (recovered documents beyond the first); kept alive while it is open."""
        win = MainWindow()
        win.setAttribute(Qt.WA_DeleteOnClose)
        self.other_windows.append(win)
        win.destroyed.connect(lambda *_: self.other_windows.remove(win) if win in self.other_windows else None)
        win.show()
        return win

    def _first_size(self):
        """The size of a first start: 92% of the screen's free area, at most 1440x900, centred (restore_state then
        puts back the last session's size and place, if there was one)."""
        screen = QGuiApplication.primaryScreen()
        free = screen.availableGeometry() if screen is not None else None
        if free is not None and free.width() > 0:
            w, h = min(1440, int(free.width() * 0.92)), min(900, int(free.height() * 0.92))
            self.resize(w, h)
            self.move(free.x() + (free.width() - w) // 2, free.y() + (free.height() - h) // 2)
        else:
            self.resize(1280, 800)

    def restore_state(self):
        """Window geometry and the docks as the user left them (after the docks exist)."""
        s = settings()
        geometry, state = s.value("window/geometry"), s.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
            screen = self.screen().availableGeometry() if self.screen() is not None else None
            if screen is not None and not screen.intersects(self.frameGeometry()):
                self._first_size()  # saved on a screen that is gone
        self._restored = state is not None and bool(self.restoreState(state))

    def save_state(self):
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())

    def _dock(self, title, widget, area, size):
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        if area in (Qt.LeftDockWidgetArea, Qt.RightDockWidgetArea):
            self.resizeDocks([dock], [size], Qt.Horizontal)
        else:
            self.resizeDocks([dock], [size], Qt.Vertical)
        return dock

    def add_bottom_dock(self, title, widget):
        dock = self._dock(title, widget, Qt.BottomDockWidgetArea, 220)
        if hasattr(widget, "plots"):  # its pyqtgraph widgets are made when its tab first comes to the front
            widget.plots.watch(dock)
        self.tabifyDockWidget(self.bottom_docks[0], dock)
        self.bottom_docks.append(dock)
        self.bottom_docks[0].raise_()
        return dock

    # ------------------------------------------------------------------ actions and menus
    def _act(self, menu, text, slot, shortcut=None, tip="", name=None):
        a = QAction(text, self)
        if name:
            self.named_actions[name] = a  # the context menus reuse it
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.setStatusTip(tip)
        a.triggered.connect(lambda *_: slot())  # never pass QAction's 'checked' flag on
        menu.addAction(a)
        self.addAction(a)
        return a

    def _actions(self):
        self.named_actions: dict = {}
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self.act_new = self._act(f, "&New", self.new_file, QKeySequence.New)
        self._act(f, "New from &template…", self.open_gallery, "Ctrl+Shift+N")
        self._act(f, "&Open…", self.open_file_dialog, QKeySequence.Open)
        self.act_import = self._act(f, "&Import a model (torchvision, ONNX)…", self.import_model, "Ctrl+I")
        self.recent_menu = f.addMenu("Open &recent")
        self.act_save = self._act(f, "&Save", self.save, QKeySequence.Save)
        self._act(f, "Save &as…", self.save_as, QKeySequence.SaveAs)
        f.addSeparator()
        self.export_menu = f.addMenu("&Export")
        self.export_actions = {}
        for fmt in EXPORTS.values():  # the exporters' own registry
            self.export_actions[fmt.key] = self._act(self.export_menu, fmt.label, lambda k=fmt.key: self.export(k))
        self._act(f, "Export &figure…", self.show_figure, "Ctrl+Alt+F",
                  "A paper figure of the design beside the canvas, redrawn as you edit", name="figure")
        f.addSeparator()
        self.comparing.add_menu_items(f)
        f.addSeparator()
        self._act(f, "&Quit", self.close, QKeySequence.Quit)
        e = mb.addMenu("&Edit")
        self.act_undo = self.doc.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.Undo)
        self.act_redo = self.doc.undo_stack.createRedoAction(self, "&Redo")
        redo_keys = QKeySequence.keyBindings(QKeySequence.Redo)
        for extra in ("Ctrl+Shift+Z", "Ctrl+Y"):
            if QKeySequence(extra) not in redo_keys:
                redo_keys.append(QKeySequence(extra))
        self.act_redo.setShortcuts(redo_keys)
        e.addAction(self.act_undo)
        e.addAction(self.act_redo)
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)
        e.addSeparator()
        self._act(e, "Cu&t", self.cut, QKeySequence.Cut, name="cut")
        self._act(e, "&Copy", self.copy, QKeySequence.Copy, name="copy")
        self._act(e, "&Paste", self.paste, QKeySequence.Paste, name="paste")
        self._act(e, "&Duplicate", self.duplicate, "Ctrl+D", name="duplicate")
        self.act_delete = self._act(e, "&Delete", self.delete_selected, QKeySequence.Delete, name="delete")
        self.act_delete.setShortcuts([QKeySequence.Delete, QKeySequence("Backspace")])
        self._act(e, "Select &all", self.select_all, QKeySequence.SelectAll, name="select_all")
        e.addSeparator()
        self._act(e, "&Find a block…", self.find, QKeySequence.Find, "Find a block by its id, label or kind", name="find")
        b = mb.addMenu("&Block")
        self._act(b, "&Expand composite", self.expand_selected, "Ctrl+E", name="expand")
        self._act(b, "&Collapse back into its composite", self.collapse_selected, "Ctrl+Shift+E", name="collapse")
        self._act(b, "&Group selection into a new composite block", self.group_selected, "Ctrl+G", name="group")
        v = mb.addMenu("&View")
        self._act(v, "Zoom &in", lambda: self.view.zoom(1.25), QKeySequence.ZoomIn)
        self._act(v, "Zoom &out", lambda: self.view.zoom(0.8), QKeySequence.ZoomOut)
        self._act(v, "&Fit to view", self.view.fit, "Ctrl+0", name="fit")
        self._act(v, "Auto &layout", self.auto_layout, "Ctrl+L", name="auto_layout")
        self.act_left_right = self._act(v, "Read &left to right", self.toggle_direction, "",
                                        "Lay the network out left to right (branches one above the other)",
                                        name="left_right")
        self.act_left_right.setCheckable(True)
        self.act_minimap = self._act(v, "&Minimap", lambda: self.minimap.set_wanted(self.act_minimap.isChecked()),
                                     "Ctrl+M")
        self.act_minimap.setCheckable(True)
        self.act_minimap.setChecked(True)
        self.act_profile = self._act(v, "Measured &latency (profile on this machine)", self.profile_latency,
                                     name="profile")
        self._act(v, "Clear the latency overlay", self.clear_profile)
        v.addSeparator()
        self.view_menu = v
        panels = v.addMenu("&Panels")
        for dock in [self.palette.parentWidget(), self.inspector.parentWidget()] + self.bottom_docks:
            panels.addAction(dock.toggleViewAction())  # closed panels come back from here
        h = mb.addMenu("&Help")
        self._act(h, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._act(h, "Recent &messages", self.show_messages, "", "The messages shown over the canvas, newest first")
        self._act(h, "The Inception-v3 &design principles", self.show_principles)
        self._act(h, "&About Block Builder", self.show_about)
        self._refresh_recent()

    # ------------------------------------------------------------------ help
    def shortcuts_text(self) -> str:
        rows = []
        for a in self.actions():
            keys = ", ".join(k.toString(QKeySequence.NativeText) for k in a.shortcuts() if not k.isEmpty())
            if keys and a.text():
                rows.append(f"<tr><td>{a.text().replace('&', '')}</td><td><b>{keys}</b></td></tr>")
        return ("<table cellspacing=4>" + "".join(sorted(set(rows))) + "</table><p>Canvas: drag from a block's "
                "output port (bottom) to an input port (top) to wire; drag a wire's end away to drop it; Ctrl+wheel "
                "zooms, middle-drag pans; double-click a composite block to expand it.</p>")

    def show_messages(self):
        recent = list(reversed(self.messages.history[-30:]))
        QMessageBox.information(self, "Recent messages", "\n\n".join(recent) if recent else "No messages yet.")

    def show_shortcuts(self):
        QMessageBox.information(self, "Keyboard shortcuts", self.shortcuts_text())

    def show_principles(self):
        from builder.insight.advisor import PRINCIPLES
        QMessageBox.information(self, "Design principles", "<ol>" + "".join(
            f"<li>{t}</li>" for t in PRINCIPLES.values()) + "</ol><p>The Advisor panel checks a design against "
            "them and offers refactors, showing their cost before they are applied.</p>")

    def show_about(self):
        QMessageBox.about(self, "About Block Builder", "<b>Block Builder</b><br>Design convolutional networks as "
                          "block diagrams and get real, trainable PyTorch out of them.")

    # ------------------------------------------------------------------ files
    def maybe_save(self) -> bool:
        """True when it is fine to drop the current document."""
        if not self.doc.dirty:
            return True
        box = QMessageBox(QMessageBox.Warning, "Unsaved changes",
                          f"{self.doc.title} has changes that are not saved.", parent=self)
        box.setInformativeText("Save them before going on?")
        box.setStandardButtons(QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel)
        box.setDefaultButton(QMessageBox.Save)
        answer = box.exec()
        if answer == QMessageBox.Save:
            return self.save()
        return answer == QMessageBox.Discard

    def new_file(self):
        if self.maybe_save():
            from builder.core.graph import Graph
            g = Graph("untitled")
            g.add_block("input", {}, "input", pos=(0, 0))
            g.add_block("output", {}, "output", pos=(0, 440))
            self.load_graph(g, layout=False)

    def load_graph(self, graph, path=None, layout: bool = True, prepared=None):
        """Show ``graph`` (laid out first when it comes without a file); a big one is drawn in slices behind a
        progress dialog. :attr:`opened` when it is on the canvas and framed."""
        from .opening import Opening
        if layout:
            lay_out(graph)
        self.doc.set_graph(graph, path, prepared)
        if self.scene.attaching is None:
            self.frame()
            self.opened.emit()
            return
        opening = Opening(self, Path(path).name if path else graph.name)
        opening.opened.connect(self.opened)
        opening.draw()

    def frame(self) -> None:
        """The whole network when it reads that way, else its width from the top; once the scene has grown around
        the new blocks and the docks have their sizes (a dialog just closed), frame it again, unless the user has
        moved the view since."""
        self.view.fit()
        # (the view is the timer's context: a window closed meanwhile cancels it)
        QTimer.singleShot(0, self.view, lambda: None if self.view.user_moved else self.view.fit())

    def profile_latency(self, up_to: str | None = None) -> bool:
        """Time every block on this machine (beside the event loop) and colour the canvas by it; ``up_to``: only
        the blocks that compute that block's output (the network as far as it, "profile up to here")."""
        from .import_dialog import run_beside
        a = self.doc.analysis
        if up_to is not None:
            from builder.core.edits import up_to as cut
            rep = a.blocks.get(up_to) if a is not None else None
            if rep is None or rep.out_shape is None:
                self.say(f"{up_to} has no output to time (fix the errors before it)", kind="warning")
                return False
            graph = cut(self.doc.graph, up_to)
            from builder.core.analysis import analyze
            if not analyze(graph).ok:
                self.say(f"Fix the errors before {up_to} to profile up to it", kind="warning")
                return False
        elif a is None or not a.ok:
            self.say("Fix the errors in the graph before profiling it", kind="warning")
            return False
        else:
            graph = self.doc.graph.copy()

        def work():
            from builder.train.profile import profile
            return profile(graph, "cpu", 1, 5, backward=True)

        def done(result, error):
            if error is not None:
                QMessageBox.warning(self, "Cannot profile", f"{type(error).__name__}: {error}")
                return
            self.last_profile = result
            self.scene.show_heat({r["id"]: r["ms"] for r in result["rows"]})
            self.layers.set_profile(result)
            slow = max(result["rows"], key=lambda r: r["ms"])
            what = f"Up to {up_to}: " if up_to is not None else ""
            self.say(f"{what}{result['total_ms']:.1f} ms forward, {result['backward_total_ms']:.1f} ms backward per "
                     f"image on {result['device']}; slowest: {slow['id']} ({slow['share'] * 100:.0f}%). The Layers "
                     "table shows every block's time beside its MACs.")
            self.profiled.emit(result)
        run_beside(self, "Timing every block…", work, done)
        return True

    def _training_event(self, event):
        """A run's end where the eye is: its accuracy and where its weights are."""
        from builder.train.settings import DoneEvent, ErrorEvent
        if isinstance(event, DoneEvent):
            verb = "Training stopped" if event.stopped else "Training done"
            epochs = f"{event.epoch} epoch{'s' if event.epoch != 1 else ''}"
            self.say(f"{verb}: validation accuracy {event.val_accuracy * 100:.2f}% after {epochs}, "
                     f"{event.seconds:.0f} s. Evaluate it in the Evaluation panel.", event.checkpoint)
        elif isinstance(event, ErrorEvent):
            self.say(f"Training failed: {event.message}", kind="error")

    def clear_profile(self):
        self.scene.show_heat(None)
        self.layers.set_profile(None)

    def _open_run_graph(self, graph, folder: str) -> None:
        """The graph a recorded run trained, as a new unsaved document."""
        if not self.maybe_save():
            return
        self.load_graph(graph, None, layout=False)
        self.say("Opened the graph this run trained (unsaved)", folder)

    def import_model(self) -> bool:
        """File > Import: choose a model, choose where its project goes; the import runs beside the event loop,
        writes the project and its weights, and opens it. Problems are listed in one message."""
        from .import_dialog import ImportDialog, run_beside
        if not self.maybe_save():
            return False
        dlg = ImportDialog(self, ask_path=self.ask_path)
        if dlg.exec() != QDialog.Accepted or not dlg.source():
            return False
        source = dlg.source()
        try:
            size = dlg.input_size()
        except ValueError as e:
            QMessageBox.warning(self, "Cannot import", str(e))
            return False
        stem = Path(source).stem if source.endswith(".onnx") else source.split(":", 1)[1]
        target = self.ask_path(self, "Save the imported project as", "Block Builder project (*.json)", True,
                               f"{stem}.json")
        if not target:
            return False
        target = Path(target).with_suffix(".json")

        from builder.importers import progress

        def work():
            from builder.importers import import_source, save_imported
            imported = import_source(source, size)
            progress.step(f"Writing {target.name}")
            return save_imported(imported, target), imported.captured

        def done(result, error):
            from builder.core.errors import ModelImportError
            if error is not None:
                box = QMessageBox(QMessageBox.Warning, "Cannot import",
                                  str(error).split("\n")[0] if isinstance(error, ModelImportError)
                                  else f"{source}: {type(error).__name__}: {error}", parent=self)
                if isinstance(error, ModelImportError):
                    box.setDetailedText("\n".join(str(p) for p in error.problems))
                box.exec()
                return
            written, notes = result
            self.open_path(target, ask=False)
            captured = [n.split(":")[0] for n in notes]
            extra = f"; {len(captured)} captured whole (no kind stands for them): {', '.join(captured[:6])}" \
                    f"{', …' if len(captured) > 6 else ''}" if captured else ""
            self.say(f"Imported {source}: {', '.join(Path(p).name for p in written)}{extra}", target)
            self.imported.emit(str(target))
        progress.reset()
        run_beside(self, f"Importing {source}…", work, done, detail=progress.current)
        return True

    def open_template(self, name: str, **options):
        import templates
        if self.maybe_save():
            self.load_graph(templates.build(name, **options))

    def open_gallery(self):
        if not self.maybe_save():
            return
        dlg = TemplateGallery(self)
        if dlg.exec() and dlg.graph is not None:
            self.load_graph(dlg.graph)

    def open_file_dialog(self):
        if not self.maybe_save():
            return
        path = self.ask_path(self, "Open project", "Block Builder projects (*.json);;All files (*)", save=False)
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path, ask: bool = True) -> bool:
        """Open a project file: a small one at once, a big one read and analysed beside the event loop and drawn
        in slices (:attr:`opened` says when it is shown). False when it was not opened (or not yet, for a big one
        that is still being read)."""
        from .opening import BIG_FILE, Opening
        if ask and not self.maybe_save():
            return False
        try:
            big = Path(path).stat().st_size > BIG_FILE
        except OSError:
            big = False  # project.load says what is wrong with it
        if big:
            opening = Opening(self, Path(path).name)

            def read(graph, prepared, error):
                if error is not None:
                    QMessageBox.critical(self, "Cannot open the file", str(error) if isinstance(error, ProjectError)
                                         else f"{path}: {type(error).__name__}: {error}")
                    return
                self.doc.set_graph(graph, path, prepared)
                self._remember(path)
                opening.opened.connect(self.opened)
                opening.draw()
            opening.read_file(path, read)
            return False
        try:
            graph = project.load(path)
        except ProjectError as e:
            QMessageBox.critical(self, "Cannot open the file", str(e))
            return False
        self.load_graph(graph, path, layout=unplaced(graph))  # a file that gives no positions is laid out
        self._remember(path)
        return True

    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as()
        return self._save_to(self.doc.path)

    def save_as(self) -> bool:
        suggested = str(self.doc.path or Path.cwd() / f"{make_id(self.doc.graph.name, set())}.json")
        path = self.ask_path(self, "Save project", "Block Builder projects (*.json)", save=True, suggested=suggested)
        if not path:
            return False
        if not path.endswith(".json"):
            path += ".json"
        old_stem = self.doc.path.stem if self.doc.path else None
        if self.doc.graph.name in ("untitled", "", old_stem):  # an unnamed project takes its file's name
            self.doc.graph.name = Path(path).stem
        return self._save_to(Path(path))

    def _save_to(self, path) -> bool:
        if self.doc.path is not None and Path(path) == self.doc.path and self.doc.changed_on_disk():
            box = QMessageBox(QMessageBox.Warning, "The file changed on disk",
                              f"{path} was changed on disk since this window opened or saved it (another window or "
                              "program wrote it). Saving now replaces that version with this network.",
                              QMessageBox.Cancel, self)
            overwrite = box.addButton("Overwrite it", QMessageBox.DestructiveRole)
            save_as = box.addButton("Save as…", QMessageBox.AcceptRole)
            box.setDefaultButton(QMessageBox.Cancel)
            box.exec()
            if box.clickedButton() is save_as:
                return self.save_as()
            if box.clickedButton() is not overwrite:
                self.say(f"Not saved: {Path(path).name} changed on disk", kind="warning")
                return False
        try:
            project.save(self.doc.graph, path)
        except ProjectError as e:
            QMessageBox.critical(self, "Cannot save", str(e))
            return False
        self.doc.path = Path(path)
        self.doc.remember_disk()
        self.doc.undo_stack.setClean()
        self.recovery.discard()
        self._remember(path)
        self._update_title()
        self.say(f"Saved {self.doc.graph.name}", path)
        return True

    def _remember(self, path):
        s = settings()
        recent = [p for p in (s.value("recent", []) or []) if p != str(path)]
        s.setValue("recent", [str(path)] + recent[:9])
        self._refresh_recent()

    def _refresh_recent(self):
        self.recent_menu.clear()
        recent = settings().value("recent", []) or []
        if isinstance(recent, str):
            recent = [recent]
        for p in recent:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.recent_menu.setEnabled(bool(recent))

    def show_figure(self):
        self.figure_dock.show()
        self.figure_dock.raise_()
        self.resizeDocks([self.inspector.parentWidget(), self.figure_dock], [280, max(380, self.width() // 3)],
                         Qt.Horizontal)
        self.figure.redraw()

    def export(self, fmt: str, path: str | None = None):
        from exports import ExportError, export_graph
        label, filt, ext = EXPORTS[fmt].label, EXPORTS[fmt].filter, EXPORTS[fmt].suffix
        if path is None:
            stem = make_id(self.doc.graph.name, set()).lower()
            name = "train.py" if fmt == "train" else stem + ext
            base = self.doc.path.parent if self.doc.path else Path.cwd()
            path = self.ask_path(self, f"Export {label}", filt, save=True, suggested=str(base / name))
            if not path:
                return None
        try:
            written = export_graph(self.doc.graph, fmt, path)
        except ExportError as e:
            QMessageBox.critical(self, "Export failed", str(e))
            return None
        self.say(f"Exported {label}: {', '.join(Path(p).name for p in written)}", written[0])
        return written

    def showEvent(self, event):
        super().showEvent(event)
        if not getattr(self, "_sized", False):  # the canvas gets most of the window on first show
            self._sized = True
            if not getattr(self, "_restored", False):  # (the panels as the user left them otherwise)
                self.resizeDocks([self.layers_dock], [max(200, self.height() // 4)], Qt.Vertical)
                self.resizeDocks([self.inspector.parentWidget()], [330], Qt.Horizontal)
            QTimer.singleShot(0, self.view.fit)  # a network opened before the window showed: fit the real view

    def closeEvent(self, event):
        if self.maybe_save():
            self.save_state()
            self.trainer.shutdown()
            self.evaluation.shutdown()
            self.search.shutdown()
            self.autosave_timer.stop()
            self.recovery.discard()  # a file that cannot be removed is offered next time: nothing lost
            event.accept()
        else:
            event.ignore()

    def find(self):
        self.find_bar.open()

    def say(self, text: str, path=None, kind: str = "info"):
        """A result where the eye is: over the canvas, with the path and Open folder / Copy path."""
        self.messages.show_message(text, path, kind)

    def _double_clicked(self, bid):
        b = self.doc.graph.block(bid)
        if b.spec and b.spec.is_composite:
            self.doc.push(f"Expand {bid}", lambda g: edits.expand(g, bid))

    # ------------------------------------------------------------------ live figures
    def _select_produced(self, ids):
        """Select what an edit, undo or redo produced and bring it into view; nothing else moves."""
        items = [self.scene.blocks[i] for i in ids if i in self.scene.blocks]
        if not items:
            return
        self.scene.clearSelection()
        rect = items[0].sceneBoundingRect()
        for it in items:
            it.setSelected(True)
            rect = rect.united(it.sceneBoundingRect())
        shown = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
        if len(items) == 1 and shown.contains(rect.center()):
            return  # one block where the user can see it (dropped at the canvas's edge): the view stays
        if not shown.contains(rect):
            # all of it when it fits in the view, else where it starts (the first block made)
            fits = rect.width() + 80 <= shown.width() and rect.height() + 80 <= shown.height()
            self.view.ensureVisible(rect if fits else items[0].sceneBoundingRect(), 40, 40)

    def _selection_changed(self):
        ids = self.scene.selected_block_ids()
        one = ids[0] if len(ids) == 1 else None
        self.inspector.show_block(one)
        self.feature_maps.select(one)
        self.layers.select(one)
        self.explain.set_block(one)
        self.inspector.show_channels((self.explain.outputs or {}).get(one))

    def _followed(self, outputs):
        """An image followed through the network (or no longer): its outputs beside the blocks, and the selected
        block's channels in the inspector."""
        self.thumbnails.show(outputs)
        ids = self.scene.selected_block_ids()
        self.inspector.show_channels((outputs or {}).get(ids[0]) if len(ids) == 1 else None)

    def explain_image(self, dataset: str, index: int):
        """The Explain panel, on this validation image."""
        self.explain_dock.show()
        self.explain_dock.raise_()
        self.explain.explain_image(dataset, index)

    def _trained_weights(self, folder):
        from .weights_choice import run_weights
        path = run_weights(folder) if folder else None
        if path is not None:
            self.explain.weights.choose(path)

    def _search_space(self) -> None:
        """The blocks' candidate badges, and the search space's cost range in the status bar."""
        from builder.search.space import SpaceError, candidates_per_block, choices, cost_range
        g = self.doc.graph
        counts = candidates_per_block(g)
        if not counts and not getattr(self, "_had_candidates", False):
            return  # none marked, none before: nothing to redraw (an edit on 10,000 blocks pays nothing here)
        self._had_candidates = bool(counts)
        self.scene.apply_candidates(counts)
        if not counts:
            self.space_label.clear()
            return
        try:
            costs = cost_range(g, choices(g), limit=64 if len(g) <= 1000 else 8)
        except SpaceError as e:
            self.space_label.setText(f"search: {e}")
            return
        self.space_label.setText(f"<b>Search</b> {costs.designs:,} designs · params {human(costs.params[0])}.."
                                 f"{human(costs.params[1])} · MACs {human(costs.macs[0])}..{human(costs.macs[1])}"
                                 + ("" if costs.exact else " (a sample)"))

    def _analysed(self, a):
        inp = next((r for r in a.blocks.values() if r.type == "input"), None)  # inputs come first in run order
        shape = fmt_shape(inp.out_shape) if inp is not None and inp.out_shape else "?"
        i, t = a.inference, a.training
        self.totals.setText(
            f"<b>Inference</b> {human(i.params)} params · {human(i.macs)} MACs · {human(i.flops)} FLOPs · "
            f"{human_bytes(i.activation_bytes)} activations &nbsp;&nbsp; <b>Training</b> {human(t.params)} params · "
            f"{human(t.macs)} MACs &nbsp;&nbsp; <b>Input</b> {shape}")
        self.totals.setToolTip(f"inference: {i.params:,} params, {i.macs:,} MACs\n"
                               f"training: {t.params:,} params, {t.macs:,} MACs")
        errors = a.errors
        self.problems.setText(f"<span style='color:#C62828'><b>{len(errors)} error{'s' * (len(errors) != 1)}"
                              f"</b></span>" if errors else "<span style='color:#2E7D32'>✓ no errors</span>")
        self.problems.setToolTip("\n".join(str(e) for e in errors[:30]))
        self._space_timer.start()  # the search space's badges and cost range, a moment after the edits

    def _watch_direction(self, graph):
        graph.direction_changed.connect(lambda: self.act_left_right.setChecked(graph.direction == "LR"))
        self.act_left_right.setChecked(graph.direction == "LR")

    def _update_title(self, *_):
        self.setWindowTitle(f"{self.doc.title}{'*' if self.doc.dirty else ''} — Block Builder")
