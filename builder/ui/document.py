"""The open document: a graph, its file, its undo stack and its live analysis."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from builder.core.analysis import Analyzer
from builder.core.graph import Graph
from builder.core.layout import place_new


class GraphCommand(QUndoCommand):
    """One undo step: whatever ``fn(graph)`` did, recorded by the graph's journal and replayed exactly."""

    def __init__(self, doc: "Document", text: str, fn, merge_key=None):
        super().__init__(text)
        self.doc, self.fn, self.steps, self.merge_key = doc, fn, None, merge_key
        self._already_applied = False

    def redo(self):
        if self._already_applied:  # QUndoStack.push calls redo(); the edit was made (and checked) just before
            self._already_applied = False
            return
        if self.steps is None:
            self.steps = self.doc.graph.record(self.fn)
        else:
            def run():
                for do, _ in self.steps:
                    do()
            self.doc.tracked(run)

    def undo(self):
        def run():
            for _, undo in reversed(self.steps):
                undo()
        self.doc.tracked(run)

    def id(self):
        return 1 if self.merge_key is not None else -1

    def mergeWith(self, other):
        if not isinstance(other, GraphCommand) or other.merge_key != self.merge_key or self.merge_key is None:
            return False
        self.steps = self.steps + other.steps
        return True


class Document(QObject):
    graph_replaced = Signal(object)   # Graph
    analysed = Signal(object)         # Analysis
    path_changed = Signal(object)     # Path | None
    edit_failed = Signal(str)
    # after an edit, an undo or a redo: the blocks to select, what it made or brought back (in the order made),
    # else the nearest block left beside what it removed (what reads it first, else what it read); an edit that
    # adds and removes nothing (a parameter, a move) says nothing: the selection stays
    produced = Signal(list)

    def __init__(self, graph: Graph | None = None, parent=None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.path: Path | None = None
        self.analysis = None
        self._pending = False
        self.graph = None
        self.set_graph(graph or Graph("untitled"))

    # ------------------------------------------------------------------ graph
    def set_graph(self, graph: Graph, path=None, prepared=None) -> None:
        """Show ``graph``; ``prepared`` (builder.ui.opening.Prepared: its analyser, analysis and advice, made off
        the window's thread) spares analysing it again here."""
        if self.graph is not None:
            self.graph.changed.disconnect(self.schedule_analysis)
        self.graph = graph
        self.analyzer = prepared.analyzer if prepared is not None else Analyzer(graph)
        self.analysis = prepared.analysis if prepared is not None else None  # never the previous graph's
        self.prepared = prepared
        graph.changed.connect(self.schedule_analysis)
        self.undo_stack.clear()
        self.path = Path(path) if path else None
        self.remember_disk()
        if prepared is None:
            self.analysis = self.analyzer.run()  # before the views attach: each item takes its figures as made
        self.graph_replaced.emit(graph)
        self.path_changed.emit(self.path)
        self._pending = False
        self.analysed.emit(self.analysis)

    def made_beside(self, name: str):
        """What the opening made off the window's thread for the current analysis (``findings``: the Advisor's;
        ``layer_rows``: the Layers table's rows and receptive fields), or None once an edit changed it."""
        made = self.prepared
        return getattr(made, name) if made is not None and made.analysis is self.analysis else None

    def push(self, text: str, fn, merge_key=None) -> bool:
        """Apply an edit as one undo step; a refused edit shows its message and changes nothing."""
        def placed(g):  # every block an edit adds lands in free space, within the same undo step
            before = set(g.ids())
            result = fn(g)
            place_new(g, [i for i in g.ids() if i not in before])
            return result
        cmd = GraphCommand(self, text, placed, merge_key)
        try:
            self.tracked(cmd.redo)
        except Exception as e:  # noqa: BLE001  the model's typed errors, and anything a rule raised
            self.edit_failed.emit(str(e))
            return False
        if not cmd.steps:
            return False
        cmd._already_applied = True
        self.undo_stack.push(cmd)
        return True

    def tracked(self, run) -> None:
        """Run a change of the graph and say what it produced (:attr:`produced`), from the graph's own events
        (nothing is copied: an edit of a 10,000-block graph pays for what it touches)."""
        g = self.graph
        added, removed, cut = [], set(), []
        listeners = ((g.block_added, added.append), (g.block_removed, removed.add),
                     (g.edge_removed, lambda u, v, k: cut.append((u, v))))
        for signal, fn in listeners:
            signal.connect(fn)
        try:
            run()
        finally:
            for signal, fn in listeners:
                signal.disconnect(fn)
        nodes = g.g._node
        made = [b for b in dict.fromkeys(added) if b in nodes]  # a block put back under its id counts too
        if made:
            self.produced.emit(made)
            return
        gone = {b for b in removed if b not in nodes}
        if gone:
            near = next((v for u, v in cut if u in gone and v in nodes), None) or \
                next((u for u, v in cut if v in gone and u in nodes), None)
            if near is not None:
                self.produced.emit([near])

    # ------------------------------------------------------------------ the file on disk
    def remember_disk(self) -> None:
        """Note the file as it is on disk now (after opening or saving it): :meth:`changed_on_disk` compares."""
        self.disk_stamp = _stamp(self.path)

    def changed_on_disk(self) -> bool:
        """Whether another window or program wrote (or removed) the file since this one opened or saved it."""
        return self.path is not None and _stamp(self.path) != self.disk_stamp

    def own_weights(self):
        """The weights file the project names beside it, or None (no file, none named, or a name that is no
        file name: training then starts from scratch, and feature maps use the initial weights)."""
        from builder.train.settings import TrainingError
        from builder.train.weights import own_weights
        if self.path is None:
            return None
        try:
            return own_weights(self.graph, self.path)
        except TrainingError:
            return None

    # ------------------------------------------------------------------ analysis
    def schedule_analysis(self) -> None:
        """Coalesce a burst of edits into one analysis on the next turn of the event loop."""
        if not self._pending:
            self._pending = True
            QTimer.singleShot(0, self.refresh)

    @property
    def analysis_pending(self) -> bool:
        """An edit was made and its analysis has not run yet."""
        return self._pending

    def refresh(self) -> None:
        self._pending = False
        self.analysis = self.analyzer.run()
        self.analysed.emit(self.analysis)

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def title(self) -> str:
        return self.path.name if self.path else self.graph.name


def _stamp(path):
    """What tells one version of a file from another: its modification time (ns), size and inode."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
