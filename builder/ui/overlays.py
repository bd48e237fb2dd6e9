"""What sits over the canvas: the find bar (Ctrl+F), the minimap, and the message strip where save, export, import
and training results appear (the status bar's totals never hide them)."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QEvent, QRectF, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QGuiApplication, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QFrame, QGraphicsView, QHBoxLayout, QLabel, QLineEdit, QPushButton, QToolButton,
                               QWidget)

from . import theme
from .text import esc


def matches(graph, text: str) -> list[str]:
    """Blocks whose id, label, kind title or type id contain ``text`` (any case), in reading order (top to
    bottom, then left to right); an exact id first."""
    needle = text.strip().lower()
    if not needle:
        return []
    found = []
    for b in graph.blocks():
        spec = b.spec
        fields = (b.id, b.label or "", spec.title if spec else "", b.type)
        if any(needle in f.lower() for f in fields):
            found.append(b)
    found.sort(key=lambda b: (b.id.lower() != needle, b.pos[1], b.pos[0]))
    return [b.id for b in found]


class FindBar(QFrame):
    """Ctrl+F: type part of an id, a label or a kind; Enter goes to the next match, Shift+Enter to the one
    before, Escape closes. The match is selected and scrolled into view."""
    found = Signal(str)

    def __init__(self, graph_getter, parent=None):
        super().__init__(parent)
        self.graph = graph_getter
        self.setFrameShape(QFrame.StyledPanel)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Find a block: id, label or kind (Enter: next, Shift+Enter: previous)")
        self.edit.setClearButtonEnabled(True)
        self.count = QLabel("")
        self.count.setMinimumWidth(90)
        prev_b, next_b, close_b = QToolButton(), QToolButton(), QToolButton()
        prev_b.setText("▲")
        prev_b.setToolTip("Previous match (Shift+Enter)")
        next_b.setText("▼")
        next_b.setToolTip("Next match (Enter)")
        close_b.setText("✕")
        close_b.setToolTip("Close (Escape)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        lay.addWidget(QLabel("Find"))
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.count)
        for b in (prev_b, next_b, close_b):
            lay.addWidget(b)
        self.results: list[str] = []
        self.index = -1
        self.edit.textChanged.connect(self._search)
        self.edit.installEventFilter(self)
        prev_b.clicked.connect(lambda: self.step(-1))
        next_b.clicked.connect(lambda: self.step(1))
        close_b.clicked.connect(self.close_bar)
        self.hide()

    def open(self):
        self.show()
        self.edit.setFocus()
        self.edit.selectAll()
        self._search(self.edit.text())

    def close_bar(self):
        self.hide()
        if self.parentWidget() is not None:
            self.parentWidget().setFocus()

    def _search(self, text):
        self.results = matches(self.graph(), text)
        self.index = -1
        if self.results:
            self.step(1)
        else:
            self.count.setText("no match" if text.strip() else "")
            self.count.setStyleSheet("color: #C62828" if text.strip() else "")

    def step(self, direction: int):
        if not self.results:
            return
        self.index = (self.index + direction) % len(self.results)
        self.count.setText(f"{self.index + 1} of {len(self.results)}")
        self.count.setStyleSheet("")
        self.found.emit(self.results[self.index])

    def eventFilter(self, obj, event):
        if obj is self.edit and event.type() == QEvent.KeyPress:
            if event.key() in (Qt.Key_Return, Qt.Key_Enter):
                self.step(-1 if event.modifiers() & Qt.ShiftModifier else 1)
                return True
            if event.key() == Qt.Key_Escape:
                self.close_bar()
                return True
        return super().eventFilter(obj, event)


class Minimap(QGraphicsView):
    """The whole network in a corner of the canvas, with the part in view framed; click or drag to go there."""

    def __init__(self, main_view: QGraphicsView):
        super().__init__(main_view.scene(), main_view)
        self.main = main_view
        self.setInteractive(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setRenderHints(QPainter.Antialiasing)
        self.setFrameShape(QFrame.Box)
        self.setStyleSheet("background: rgba(255, 255, 255, 225); border: 1px solid #90A4AE;")
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip("Minimap: click or drag to move the view (View > Minimap hides it; it shows only while part "
                        "of the network is out of view)")
        self._timer = QTimer(self)  # edits and scrolls in one turn of the event loop refit the map once
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)  # and draws its picture again a moment after a burst of changes, not in it
        self._timer.timeout.connect(self.refit)
        main_view.scene().changed.connect(self._timer.start)  # (C++ to C++: no list of rects for Python)
        for bar in (main_view.horizontalScrollBar(), main_view.verticalScrollBar()):
            bar.valueChanged.connect(lambda _v: self._view_moved())
        main_view.zoom_changed.connect(lambda _z: self._view_moved())
        self._canvas_viewport = main_view.viewport()
        self._canvas_viewport.installEventFilter(self)
        self.wanted = True  # the View menu's choice (the canvas may still be too small to show it)
        self.network = QRectF()  # the scene's items' bounds, as of the last scene change
        self._picture = None  # the network as last drawn (paintEvent), until the scene changes
        self.place()

    def set_wanted(self, on: bool):
        self.wanted = on
        self.place()

    def refit(self):
        """After the scene changed: its bounds again, the map fitted to them, its picture to be drawn again (once
        a big network's items are all made: not at every slice of them)."""
        if getattr(self.scene(), "attaching", None) is not None:
            self._timer.start()
            return
        self.network = self.scene().network_rect()
        self.place()
        rect = self.network.adjusted(-60, -60, 60, 60)
        if rect.isValid():
            self.fitInView(rect, Qt.KeepAspectRatio)
        self._picture = None
        self.viewport().update()

    def paintEvent(self, event):
        """The network from a picture drawn once per change of the scene (a scroll, a zoom or a repaint of the
        canvas moves only the frame: 10,000 blocks are not painted again for each), then the frame."""
        vp = self.viewport()
        if self._picture is None or self._picture.size() != vp.size() * vp.devicePixelRatioF():
            ratio = vp.devicePixelRatioF()
            picture = QPixmap(vp.size() * ratio)
            picture.setDevicePixelRatio(ratio)
            picture.fill(QColor(255, 255, 255, 0))
            p = QPainter(picture)
            p.setTransform(self.viewportTransform())
            self.scene().draw_overview(p)  # from the blocks' positions: 20,000 blocks in a few ms
            p.end()
            self._picture = picture
        painter = QPainter(vp)
        painter.drawPixmap(0, 0, self._picture)
        painter.setTransform(self.viewportTransform())
        self.drawForeground(painter, QRectF())
        painter.end()

    def _view_moved(self):
        """A scroll or a zoom moves only the frame (and may show or hide the map): the scene is as it was."""
        self.place()
        self.viewport().update()

    def needed(self) -> bool:
        """Only while part of the network is out of view."""
        return not self.visible_rect().contains(self.network)

    def visible_rect(self) -> QRectF:
        return self.main.mapToScene(self.main.viewport().rect()).boundingRect()

    def drawForeground(self, painter, rect):
        painter.setPen(QPen(theme.MINIMAP_FRAME, 2.0 / max(self.transform().m11(), 1e-3)))
        painter.setBrush(QColor(255, 179, 0, 40))
        painter.drawRect(self.visible_rect())

    def _go(self, pos):
        self.main.centerOn(self.mapToScene(pos.toPoint()))

    def mousePressEvent(self, event):
        if event.button() == Qt.LeftButton:
            self._go(event.position())
            event.accept()

    def mouseMoveEvent(self, event):
        if event.buttons() & Qt.LeftButton:
            self._go(event.position())
            event.accept()

    def wheelEvent(self, event):
        self.main.wheelEvent(event)

    def place(self):
        """Bottom right of the canvas, at most a quarter of its width and a third of its height; a canvas too
        small to spare that has no minimap (View > Minimap brings it back when there is room)."""
        vp = self.main.viewport().geometry()
        w, h = min(150, vp.width() // 5), min(190, vp.height() // 3)
        self.setFixedSize(max(w, 1), max(h, 1))
        self.move(vp.right() - self.width() - 8, vp.bottom() - self.height() - 8)
        self.setVisible(self.wanted and w >= 80 and h >= 90 and self.needed())

    def eventFilter(self, obj, event):
        # the canvas's viewport: when the view itself is resized its viewport still has the old size (the
        # minimap stayed where the old corner was, in the middle of a grown canvas)
        if obj is getattr(self, "_canvas_viewport", None) and event.type() == QEvent.Resize:
            self.refit()
        return False


class MessageStrip(QFrame):
    """A transient message over the bottom of the canvas: what was saved, exported, imported or trained, with the
    path, and buttons to open its folder or copy the path. It stays 8 s (longer with buttons) or until closed."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("MessageStrip")
        self._style("#263238")
        self.text = QLabel("")
        self.text.setTextFormat(Qt.RichText)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.open_button = QPushButton("Open folder")
        self.copy_button = QPushButton("Copy path")
        close = QPushButton("✕")
        close.setToolTip("Close")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 6, 6)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.open_button)
        lay.addWidget(self.copy_button)
        lay.addWidget(close)
        self.path: Path | None = None
        self.kind = "info"
        self.history: list[str] = []  # every message shown, newest last (Help > Recent messages reads it)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.open_button.clicked.connect(self.open_folder)
        self.copy_button.clicked.connect(self.copy_path)
        close.clicked.connect(self.hide)
        parent.installEventFilter(self)
        self.hide()

    def show_message(self, text: str, path=None, kind: str = "info", seconds: float | None = None):
        """Show ``text`` (plain text; ``path`` after it); ``kind`` info / warning / error colours the strip."""
        self.path = Path(path) if path else None
        self.kind = kind
        self._style(theme.MESSAGE_COLOURS.get(kind, theme.MESSAGE_COLOURS["info"]))
        shown = esc(text) + (f"<br><span style='color:#B0BEC5'>{esc(str(self.path))}</span>" if self.path else "")
        self.text.setText(shown)
        self.history.append(text + (f" ({self.path})" if self.path else ""))
        del self.history[:-200]
        for b in (self.open_button, self.copy_button):
            b.setVisible(self.path is not None)
        self.place()
        self.show()
        self.raise_()
        self._timer.start(int((seconds or (12 if self.path else 8)) * 1000))

    def _style(self, background: str):
        self.setStyleSheet(f"#MessageStrip {{ background: {background}; border-radius: 6px; }} QLabel {{ color: white; }}"
                           " QPushButton { color: white; background: rgba(255, 255, 255, 40); border: none;"
                           " padding: 3px 10px; border-radius: 3px; } QPushButton:hover { background: rgba(255, 255,"
                           " 255, 70); }")

    def open_folder(self):
        if self.path is not None:
            folder = self.path if self.path.is_dir() else self.path.parent
            QDesktopServices.openUrl(QUrl.fromLocalFile(os.fspath(folder)))

    def copy_path(self):
        if self.path is not None:
            QGuiApplication.clipboard().setText(os.fspath(self.path))

    def place(self):
        parent = self.parentWidget()
        width = min(max(parent.width() - 40, 200), 760)
        self.setFixedWidth(width)
        self.adjustSize()
        self.move((parent.width() - width) // 2, parent.height() - self.height() - 16)

    def eventFilter(self, obj, event):
        if obj is self.parentWidget() and event.type() == QEvent.Resize and self.isVisible():
            self.place()
        return False
