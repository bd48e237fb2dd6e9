"""Opening a network without stopping the window (issue 23): a big file is read, laid out where it has no layout,
analysed and checked by the Advisor in a worker thread; then the canvas makes its items in slices. A window-modal
progress dialog says which step it is at and how far (Cancel while it reads drops it; the document shown
before is kept until the new one is ready)."""
from __future__ import annotations

import gc
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QDialog, QLabel, QProgressBar, QPushButton, QVBoxLayout

BIG_FILE = 100_000  # bytes: about 1,000 blocks; a smaller file is read on the window's thread (a few ms)


@dataclass
class Prepared:
    """What a document needs besides its graph, made before it is shown: the analyser (its caches), the
    analysis and the Advisor's findings for that analysis."""
    analyzer: object
    analysis: object
    findings: list
    layer_rows: tuple  # the Layers table's rows (its Blocks view) and every block's receptive field


def prepare(graph, progress=None) -> Prepared:
    """Analyse ``graph`` and check it (no Qt: runs in a worker thread); ``progress(step)`` names each step."""
    from builder.core.analysis import Analyzer
    from builder.insight import advisor
    if progress:
        progress("Analysing")
    analyzer = Analyzer(graph)
    analysis = analyzer.run()
    if progress:
        progress("Checking the design principles")
    findings = advisor.check(graph, analysis)
    if progress:
        progress("Listing the layers")
    from builder.insight.receptive import receptive_fields
    from builder.insight.report import block_rows
    return Prepared(analyzer, analysis, findings, (block_rows(graph, analysis), receptive_fields(graph, analysis)))


def read(path, progress=None):
    """The project at ``path``, laid out if its file has no positions, and prepared (worker thread)."""
    from builder.core import project
    from builder.core.layout import lay_out, unplaced
    if progress:
        progress("Reading the file")
    graph = project.load(path)
    if unplaced(graph):
        if progress:
            progress("Laying it out (the file gives no positions)")
        lay_out(graph)
    return graph, prepare(graph, progress)


class ProgressBox(QDialog):
    """A window-modal progress dialog shown after ``delay_ms`` (a quick opening shows none). Unlike
    QProgressDialog, setting its value never runs the event loop inside the work that reports it."""

    def __init__(self, parent, text: str, delay_ms: int = 200):
        super().__init__(parent)
        self.setWindowTitle("Block Builder")
        self.setWindowModality(Qt.WindowModal)
        self.label = QLabel(text)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until a step says how far it is
        self.cancel = QPushButton("Cancel")
        self.cancelled = False
        self.cancel.clicked.connect(self._cancel)
        lay = QVBoxLayout(self)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel, 0, Qt.AlignRight)
        self.setMinimumWidth(420)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.show)
        self.timer.start(delay_ms)

    def _cancel(self):
        self.cancelled = True
        self.label.setText("Cancelling…")
        self.cancel.setEnabled(False)

    def reject(self):  # Escape or the title bar's close: Cancel, while it can be
        if self.cancel.isVisible() and self.cancel.isEnabled():
            self._cancel()

    def set_progress(self, n: int, total: int) -> None:
        self.bar.setRange(0, total)
        self.bar.setValue(n)

    def finish(self):
        self.timer.stop()
        self.hide()
        self.deleteLater()


def share_the_interpreter(on: bool) -> None:
    """While the worker runs Python, the window's thread waits for the interpreter lock at every call into
    Python (a paint, an event filter): the worker hands it over every millisecond instead of every 5 (the
    default), so the window answers while it reads and analyses."""
    sys.setswitchinterval(0.001 if on else 0.005)


def hold_collector() -> None:
    """Python's cycle collector would stop both threads for a scan of the whole heap again and again while a
    20,000-block network's objects are made (0.2-0.5 s each): it waits until the network is open. The objects
    of the network shown before may be collected again (they were frozen when it opened)."""
    gc.unfreeze()
    gc.disable()


def release_collector() -> None:
    """The opened network's objects live as long as it is shown: frozen, later collections do not scan them."""
    gc.freeze()
    gc.enable()


class Opening(QObject):
    """One opening in progress: :meth:`read_file` (worker) and/or :meth:`draw` (slices); ``opened`` when the
    network is on the canvas and framed, ``failed(error)`` when the file could not be read."""
    opened = Signal()

    def __init__(self, window, title: str):
        super().__init__(window)
        self.window = window
        self.title = title
        self.box = ProgressBox(window, f"Opening {title}…")
        self.step = "Reading the file"
        self.job = None
        hold_collector()

    def _say(self, text: str) -> None:
        self.box.label.setText(f"{self.title}: {text[0].lower()}{text[1:]}…")

    def read_file(self, path, done) -> None:
        """Read and prepare ``path`` beside the event loop; then ``done(graph, prepared, error)`` unless the user
        cancelled (nothing changes then)."""
        from .worker import Job
        self.window.setCursor(Qt.BusyCursor)

        def progress(step):  # from the worker: only a string is handed over, shown at the next poll
            self.step = step

        def finished(result, error):
            share_the_interpreter(False)
            if self.box.cancelled:
                self.close()
                return
            if error is not None:
                self.close()
                done(None, None, error)
                return
            done(result[0], result[1], None)
        share_the_interpreter(True)
        self.job = Job(self, "block-builder-open", lambda: read(Path(path), progress), finished,
                       tick=lambda: self._say(self.step))

    def draw(self) -> None:
        """The canvas is making its items in slices: show how far, without Cancel (the document is already
        the new one); frame the network and say ``opened`` when it is done."""
        scene = self.window.scene
        self.box.cancel.hide()
        self._say("Drawing the network")
        self.window.setCursor(Qt.BusyCursor)

        def progress(n, total):
            self.box.set_progress(n, total)
            self.box.label.setText(f"{self.title}: drawing the network, {n:,} of {total:,} blocks and wires…")
        scene.attach_progress.connect(progress)

        def attached():
            scene.attach_progress.disconnect(progress)
            scene.attached.disconnect(attached)
            self.close()
            self.window.frame()
            self.opened.emit()
        if scene.attaching is None:
            attached()
        else:
            scene.attached.connect(attached)

    def close(self) -> None:
        release_collector()
        self.window.unsetCursor()
        self.box.finish()
        self.deleteLater()
