"""The Figure panel: the live design as a paper figure beside the canvas, redrawn as the network is edited, with
the style choices the project keeps (each change one undo step) and an export to SVG, PDF or TikZ."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer
from PySide6.QtSvgWidgets import QSvgWidget
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout,
                               QWidget)

from builder.core.graph import make_id
from exports.errors import ExportError
from exports.figure import CHOICES, Style, build_figure, render, style_from

NAMES = {"colour": "Colour", "font": "Font", "labels": "Labels", "slabs": "Boxes", "direction": "Reads"}
SHOWN = {"kind": "by kind", "mono": "monochrome", "sans": "sans serif", "serif": "serif", "mono_font": "monospace",
         "on": "kind and shape", "off": "none", "3d": "3-D slabs", "flat": "flat boxes", "LR": "left to right",
         "TB": "top down"}
DELAY_MS = 300  # a burst of edits redraws once
LIVE_BLOCKS = 1500  # larger networks redraw on request (about a second per 5,000 blocks, on the window's thread)


class _Preview(QSvgWidget):
    """The figure at the panel's width, its aspect kept."""
    def __init__(self):
        super().__init__()
        self.ratio = 0.5

    def fit(self, width: int) -> None:
        self.setFixedSize(QSize(max(50, width), max(30, int(width * self.ratio))))


class FigurePanel(QWidget):
    def __init__(self, doc, ask_path, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.ask_path = ask_path
        self.stale = True
        self.svg = b""
        self.pickers: dict = {}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for i, (key, values) in enumerate(CHOICES.items()):
            box = QComboBox()
            for v in values:
                box.addItem(SHOWN.get("mono_font" if (key, v) == ("font", "mono") else v, v), v)
            box.currentIndexChanged.connect(lambda _i, k=key: self._chosen(k))
            box.setObjectName(f"figure_{key}")
            self.pickers[key] = box
            grid.addWidget(QLabel(NAMES[key]), i // 2, (i % 2) * 2)
            grid.addWidget(box, i // 2, (i % 2) * 2 + 1)
        self.stages = QCheckBox("Fold repeated stages (x3)")
        self.stages.setObjectName("figure_stages")
        self.stages.toggled.connect(lambda _on: self._chosen("stages"))
        n = len(CHOICES)
        grid.addWidget(self.stages, n // 2, (n % 2) * 2, 1, 2)
        self.export_button = QPushButton("Export figure…")
        self.export_button.setToolTip("Write the figure as SVG, PDF or a TikZ .tex file")
        self.export_button.clicked.connect(lambda: self.export())
        grid.addWidget(self.export_button, n // 2 + 1, 0, 1, 2)
        self.redraw_button = QPushButton("Redraw")
        self.redraw_button.setToolTip(f"Networks of more than {LIVE_BLOCKS:,} blocks are redrawn on request")
        self.redraw_button.clicked.connect(lambda: self.redraw())
        self.redraw_button.hide()
        grid.addWidget(self.redraw_button, n // 2 + 1, 2, 1, 2)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color: #546E7A")
        self.preview = _Preview()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.preview)
        self.scroll.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.scroll.setStyleSheet("QScrollArea { background: white; }")
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(self.info)
        lay.addWidget(self.scroll, 1)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.redraw)
        doc.analysed.connect(self._edited)
        doc.graph_replaced.connect(lambda _g: self._edited(None))
        self._showing = False

    # ------------------------------------------------------------ the style the project keeps
    def style(self) -> Style:
        """The project's style; one it cannot read falls back to the defaults (and the panel says so)."""
        return self._read_style()[0]

    def _read_style(self) -> tuple:
        """(the style to draw with, a sentence about a style in the project that cannot be read, or "")."""
        try:
            return style_from(self.doc.graph.meta.get("figure")), ""
        except ExportError as e:
            return Style(), f" The project's figure style is not readable ({e}); showing the defaults."

    def _show_style(self, style: Style) -> None:
        self._showing = True
        try:
            for key, box in self.pickers.items():
                box.setCurrentIndex(box.findData(getattr(style, key)))
            self.stages.setChecked(style.stages)
        finally:
            self._showing = False

    def _chosen(self, key: str) -> None:
        if self._showing:
            return
        value = self.stages.isChecked() if key == "stages" else self.pickers[key].currentData()
        style = self.style().replace(**{key: value}).to_dict() or None
        self.doc.push(f"Figure style: {NAMES.get(key, 'stages').lower()}", lambda g: g.set_meta("figure", style))

    # ------------------------------------------------------------ live drawing
    def _edited(self, _analysis) -> None:
        self.stale = True
        live = len(self.doc.graph) <= LIVE_BLOCKS
        self.redraw_button.setVisible(not live)
        if not self.isVisible():
            return
        if live:
            self.timer.start(DELAY_MS)
        else:
            self.info.setText(f"{len(self.doc.graph):,} blocks: the figure is redrawn when you press Redraw "
                              "(Export always draws the network as it is).")

    def showEvent(self, event):
        super().showEvent(event)
        if self.stale:
            self.redraw()

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        self.preview.fit(self.scroll.width() - bar - 4)

    def redraw(self) -> None:
        self.timer.stop()
        doc = self.doc
        style, problem = self._read_style()
        self._show_style(style)
        drawing = build_figure(doc.graph, style, doc.analysis)
        self.svg = render(drawing, ".svg")
        self.preview.load(QByteArray(self.svg))
        self.preview.ratio = drawing.height / drawing.width if drawing.width else 0.5
        self._fit()
        blocks = sum(1 for g in drawing.groups if g.role == "block")
        self.info.setText(f"{blocks} blocks drawn, {drawing.width * drawing.scale:.0f} x "
                          f"{drawing.height * drawing.scale:.0f} pt (a two-column paper is {style.width:.0f} pt "
                          f"wide); redrawn as you edit.{problem}")
        self.stale = False

    # ------------------------------------------------------------ export
    def export(self, path: str | None = None):
        from PySide6.QtWidgets import QMessageBox

        from exports import export_graph
        graph = self.doc.graph
        if path is None:
            base = self.doc.path.parent if self.doc.path else Path.cwd()
            name = make_id(graph.name, set()).lower() + "_figure.svg"
            path = self.ask_path(self, "Export figure", "SVG (*.svg);;PDF (*.pdf);;TikZ for LaTeX (*.tex)",
                                 save=True, suggested=str(base / name))
            if not path:
                return None
        try:
            written = export_graph(graph, "figure", path, style=self.style())
        except ExportError as e:
            QMessageBox.critical(self, "Export failed", str(e))
            return None
        win = self.window()
        if hasattr(win, "say"):
            win.say(f"Exported the figure: {Path(written[0]).name}", written[0])
        return written
