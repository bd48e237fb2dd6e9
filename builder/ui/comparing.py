"""A window's ways into the compare view: another network (a file, a template, a run), the saved file, a state of
the undo history (the History panel), and the Advisor's refactor (before and after)."""
from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QVBoxLayout, QWidget

from builder.sources import SourceError, load_network

from .compare_view import CompareWindow

NETWORK_FILES = "Networks (*.json *.onnx);;Block Builder projects (*.json);;ONNX models (*.onnx);;All files (*)"


class HistoryPanel(QWidget):
    """The undo history, every step and the state it left (the current one in bold): select a step and compare the
    network as it was then with the network now; double-click a step to go back (or forward) to it."""

    def __init__(self, doc, compare, parent=None):
        super().__init__(parent)
        self.doc, self.stack = doc, doc.undo_stack
        self.list = QListWidget()
        self.list.setToolTip("Select a step to compare it with now; double-click to go back to it")
        self.compare_button = QPushButton("Compare with now…")
        self.compare_button.setToolTip("Open the compare view: the network after the selected step (A) against "
                                       "the network as it is now (B)")
        self.compare_button.clicked.connect(lambda: compare(self.list.currentRow()))
        self.list.itemDoubleClicked.connect(lambda item: self.stack.setIndex(self.list.row(item)))
        self.list.currentRowChanged.connect(
            lambda r: self.compare_button.setEnabled(r >= 0 and r != self.stack.index()))
        hint = QLabel("Each step of the undo history, with the network it left. Compare one with now without "
                      "going back; double-click to go back to it.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #546E7A")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(hint)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.compare_button)
        self.stack.indexChanged.connect(self.refresh)
        self.stack.cleanChanged.connect(self.refresh)
        self.refresh()

    def refresh(self, *_) -> None:
        if not shiboken6.isValid(self.stack) or not shiboken6.isValid(self.list):  # the window is closing
            return
        row = self.list.currentRow()
        self.list.clear()
        now, clean = self.stack.index(), self.stack.cleanIndex()
        for i in range(self.stack.count() + 1):
            text = "(as opened)" if i == 0 else f"{i}. {self.stack.text(i - 1)}"
            if i == clean and self.doc.path is not None:
                text += "  (saved)"
            item = QListWidgetItem(text + ("  ← now" if i == now else ""))
            f = item.font()
            f.setBold(i == now)
            item.setFont(f)
            if i > now:
                item.setForeground(Qt.gray)  # undone: redo brings it back
            self.list.addItem(item)
        self.list.setCurrentRow(row if 0 <= row < self.list.count() else -1)
        self.compare_button.setEnabled(0 <= self.list.currentRow() != now)


class Comparing:
    def __init__(self, win):
        self.win = win
        self.windows: list[CompareWindow] = []  # open compare windows (tests read the last)

    def add_menu_items(self, file_menu) -> None:
        w = self.win
        w._act(file_menu, "Co&mpare with…", self.with_file, "Ctrl+Alt+C",
               "Compare this network with a project file or an ONNX model", name="compare")
        self.templates_menu = file_menu.addMenu("Compare with &template")
        import templates
        for name in templates.TEMPLATES:
            act = self.templates_menu.addAction(name)
            act.triggered.connect(lambda *_, n=name: self.with_template(n))
        self.act_saved = w._act(file_menu, "Compare with &saved file", self.with_saved, "",
                                "What changed since the last save", name="compare_saved")
        file_menu.aboutToShow.connect(lambda: self.act_saved.setEnabled(w.doc.path is not None))

    # ------------------------------------------------------------------ what to compare with
    def with_file(self) -> CompareWindow | None:
        path = self.win.ask_path(self.win, "Compare with", NETWORK_FILES, save=False)
        return self.with_source(path) if path else None

    def with_template(self, name: str) -> CompareWindow | None:
        return self.with_source(name)

    def with_source(self, source: str) -> CompareWindow | None:
        other = self._read(lambda: load_network(source), busy=True)  # an ONNX or PyTorch import can take seconds
        return None if other is None else self.open(self.win.doc.graph, other, self.win.doc.title, _short(source))

    def with_saved(self) -> CompareWindow | None:
        path = self.win.doc.path
        if path is None:
            self.win.say("This network has not been saved yet: nothing to compare it with", kind="warning")
            return None
        saved = self._read(lambda: load_network(str(path)))
        return None if saved is None else self.open(saved, self.win.doc.graph, f"{path.name} (saved)", "now")

    def with_run(self, run) -> CompareWindow | None:
        trained = self._read(run.graph)
        return None if trained is None else self.open(trained, self.win.doc.graph, f"run {run.name}",
                                                      self.win.doc.title)

    def _read(self, read, busy: bool = False):
        """``read()``'s graph, or None after one message saying why it could not be read."""
        from builder.core.errors import ProjectError
        if busy:
            QGuiApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            return read()
        except (SourceError, ProjectError) as e:
            problem = str(e)
        finally:
            if busy:
                QGuiApplication.restoreOverrideCursor()
        QMessageBox.critical(self.win, "Cannot compare", problem)
        return None

    def with_history(self, index: int) -> CompareWindow | None:
        """The network at undo step ``index`` (0: as opened) against now: the stack is stepped back there and
        forward again, exactly as undo and redo do, with the canvas's selection and view kept."""
        w = self.win
        stack = w.doc.undo_stack
        now = stack.index()
        if index < 0 or index > stack.count():
            return None
        if index == now:
            w.say("That is the network as it is now: pick an earlier or later step to compare with")
            return None
        selected = w.scene.selected_block_ids()
        centre = w.view.mapToScene(w.view.viewport().rect().center())
        transform = w.view.transform()
        try:
            stack.setIndex(index)
            then = w.doc.graph.copy()
        finally:
            stack.setIndex(now)
        w.view.setTransform(transform)
        w.view.centerOn(centre)
        w.scene.clearSelection()
        for bid in selected:
            if bid in w.scene.blocks:
                w.scene.blocks[bid].setSelected(True)
        label = stack.text(index - 1) if index > 0 else "as opened"
        return self.open(then, w.doc.graph, f"step {index}: {label}" if index else label, "now")

    def with_refactor(self, preview) -> CompareWindow | None:
        """A refactor the Advisor previewed (:class:`builder.insight.advisor.Preview`): the network now (A) and
        the refactored copy the preview made (B)."""
        if preview.after is None:
            self.win.say(f"{preview.refactor.title}: {preview.message or 'it does not apply'}", kind="warning")
            return None
        return self.open(self.win.doc.graph, preview.after, "before", f"after: {preview.refactor.title}")

    def open(self, a, b, title_a: str, title_b: str) -> CompareWindow:
        view = CompareWindow(a, b, title_a, title_b, self.win)
        view.setWindowFlag(Qt.Window, True)
        self.windows = [x for x in self.windows if x.isVisible()] + [view]
        view.show()
        self.win.say(f"Compared {title_a} with {title_b}: {view.result.summary()}")
        return view


def _short(source: str) -> str:
    from pathlib import Path
    return Path(source).name if ("/" in source or "\\" in source) else source
