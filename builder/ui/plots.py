"""pyqtgraph widgets made when first needed (the first time their panel shows, or the first figure to draw): the
window opens without importing pyqtgraph and numpy (about a third of its start-up time)."""
from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QWidget

from . import theme


class LazyPlots(QWidget):
    """Holds the widgets ``build(pg)`` returns, as [(widget, stretch)], made on ``ensure()`` or when shown."""

    def __init__(self, build, parent=None):
        super().__init__(parent)
        self._build = build
        self.built = False
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def ensure(self) -> None:
        if self.built:
            return
        self.built = True
        import pyqtgraph as pg
        pg.setConfigOptions(antialias=True, background="w", foreground=theme.TEXT.name())
        for widget, stretch in self._build(pg):
            self._layout.addWidget(widget, stretch)

    def showEvent(self, event):
        super().showEvent(event)
        if not self.built:  # a tab behind another is shown, then hidden, as the window opens: look again
            QTimer.singleShot(0, self._if_visible)

    def _if_visible(self):
        if self.isVisible() and not self.visibleRegion().isEmpty():  # (a tab behind another is "visible")
            self.ensure()

    def watch(self, dock) -> None:
        """Made when ``dock``'s tab is brought to the front (a tabbed dock's widget gets no show event then)."""
        dock.visibilityChanged.connect(lambda shown: shown and not self.built and
                                       QTimer.singleShot(0, self._if_visible))
