"""The canvas's items: a block (its ports, figures, badges and name at every zoom) and a wire with its shape
label (routed around the blocks in its way: builder.ui.routing). The scene (builder.ui.canvas) makes them from
the graph and keeps them in step with it."""
from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsSimpleTextItem, QStyle

from blocks import fmt_shape
from builder.insight.report import human

from . import theme
from .routing import routed
from .text import esc as _esc

HEADER = 24.0
OVERVIEW_LOD = 0.6   # below this zoom a block shows only its name (and a composite's kind), large enough to read
MIN_TEXT_LOD = 0.06  # below this (a minimap) not even that
MANY_PORTS = 48  # a block with more inputs draws them as one bar (each would be under 5 px wide)
LEGIBLE_PX = 7.0  # a name reads from this height on screen
BODY = QRectF(0, 0, theme.BLOCK_W, theme.BLOCK_H)  # a block's body in its own coordinates


class BlockItem(QGraphicsItem):
    def __init__(self, scene: QGraphicsScene, block_id: str):
        super().__init__()
        self.canvas = scene
        self.graph = scene.graph  # the network it belongs to (it may still be leaving when the next one comes)
        self.block_id = block_id
        self.ports: list[str] = []
        self.report = None
        self.advice: list = []
        self.heat: float | None = None  # share of the measured time (the latency overlay), or None
        self.mark: str | None = None  # in a compare view: "added", "removed", "changed" or "same"
        self.candidates = 0  # designs its search choices add (their candidates' product), 0: none
        self.painted_title = None  # (text, pixel height on screen) of the name as last painted
        self._tip_stale = True
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        self.refresh_model()

    # ------------------------------------------------------------------ model -> item
    @property
    def block(self):
        return self.graph.block(self.block_id)

    def refresh_model(self):
        b = self.block
        spec = b.spec
        self.kind_title = spec.title if spec else f"unknown: {b.type}"
        self.summary = spec.summary(b.params) if spec and spec.summary else ""
        self.colour = theme.colour(spec.category if spec else "")
        self.has_output = b.type != "output"
        self.ports = self.graph.ports_of(self.block_id)
        self._port_index = {p: i for i, p in enumerate(self.ports)}  # an 8,000-input concat: no list.index
        self.title = b.label or b.id
        self._update_tooltip()
        self.prepareGeometryChange()
        self.update()

    def set_heat(self, share: float | None) -> None:
        """Colour the block's body by its share of the measured time (None: no overlay)."""
        if share != self.heat:
            self.heat = share
            self.update()

    def set_mark(self, mark: str | None) -> None:
        """In a compare view: tinted by what became of it (theme.DIFF), dimmed when it is the same in both."""
        self.mark = mark
        self.setOpacity(theme.DIFF_DIMMED if mark == "same" else 1.0)
        self.update()

    def body_colour(self) -> QColor:
        """White, or from pale yellow to red as the block takes more of the time (relative to the slowest); in a
        compare view, the colour of what became of it."""
        if self.mark in theme.DIFF:
            return QColor(theme.DIFF[self.mark])
        if self.heat is None:
            return QColor(theme.BODY)
        t = max(0.0, min(1.0, self.heat))
        return QColor(255, int(248 - 180 * t), int(225 - 205 * t))

    def set_report(self, rep):
        key = None if rep is None else (rep.out_shape, rep.params, rep.macs,
                                        tuple(e.message for e in rep.errors), tuple(w.message for w in rep.warnings))
        self.report = rep
        if key != getattr(self, "_report_key", ()):  # repaint only blocks whose figures changed
            self._report_key = key
            self._update_tooltip()
            self.update()

    def _update_tooltip(self):
        """The tooltip is written when the pointer comes over the block (a 20,000-block network opens without
        composing 20,000 of them)."""
        self._tip_stale = True
        if self.isUnderMouse():
            self._write_tooltip()

    def hoverEnterEvent(self, event):
        if self._tip_stale:
            self._write_tooltip()
        super().hoverEnterEvent(event)

    def _write_tooltip(self):
        self._tip_stale = False
        b = self.block
        lines = [f"<b>{_esc(b.label or b.id)}</b> &nbsp;<i>{_esc(self.kind_title)}</i>", f"id: {_esc(b.id)}"]
        rep = self.report
        if rep is not None:
            if rep.out_shape:
                lines.append(f"output: {fmt_shape(rep.out_shape)}")
            lines.append(f"params: {rep.params:,} &nbsp; MACs: {rep.macs:,} &nbsp; FLOPs: {2 * rep.macs:,}")
            for e in rep.errors:
                lines.append(f"<span style='color:#E53935'>error: {_esc(e.message)}</span>")
            for w in rep.warnings:
                lines.append(f"<span style='color:#B26A00'>warning: {_esc(w.message)}</span>")
        for f in self.advice:
            lines.append(f"<span style='color:#1565C0'>advice ({_esc(f.title)}): {_esc(f.message)}</span>")
        self.setToolTip("<br>".join(lines))

    def set_advice(self, findings):
        if [f.message for f in findings] != [f.message for f in self.advice]:
            self.advice = findings
            self._update_tooltip()
            self.update()

    # ------------------------------------------------------------------ geometry
    def boundingRect(self) -> QRectF:
        r = theme.PORT_R + 3
        return QRectF(-r, -r - 2, theme.BLOCK_W + 2 * r, theme.BLOCK_H + 2 * r + 4)

    def shape(self) -> QPainterPath:
        p = QPainterPath()
        p.addRoundedRect(QRectF(0, 0, theme.BLOCK_W, theme.BLOCK_H), 8, 8)
        return p

    def in_port_local(self, port: str) -> QPointF:
        """Input ports along the top edge (along the left edge when the diagram reads left to right)."""
        return self._port_point(self._port_index.get(port, 0), max(len(self.ports), 1))

    def _port_point(self, i: int, n: int) -> QPointF:
        if self.canvas.horizontal:
            return QPointF(0.0, theme.BLOCK_H * (i + 1) / (n + 1))
        return QPointF(theme.BLOCK_W * (i + 1) / (n + 1), 0.0)

    def out_port_local(self) -> QPointF:
        return QPointF(theme.BLOCK_W, theme.BLOCK_H / 2) if self.canvas.horizontal else \
            QPointF(theme.BLOCK_W / 2, theme.BLOCK_H)

    def in_port_pos(self, port: str) -> QPointF:
        return self.mapToScene(self.in_port_local(port))

    def out_port_pos(self) -> QPointF:
        return self.mapToScene(self.out_port_local())

    def port_at(self, scene_pos: QPointF, slack: float = 10.0):
        """('in', port) or ('out', None) when scene_pos is on a port."""
        local = self.mapFromScene(scene_pos)
        if self.has_output and QLineF(local, self.out_port_local()).length() <= slack:
            return ("out", None)
        for p in self.ports:
            if QLineF(local, self.in_port_local(p)).length() <= slack:
                return ("in", p)
        return None

    # ------------------------------------------------------------------ painting
    def paint(self, painter: QPainter, option, widget=None):
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        rect = QRectF(0, 0, theme.BLOCK_W, theme.BLOCK_H)
        rep = self.report
        has_error = bool(rep and rep.errors)
        if lod < OVERVIEW_LOD:  # zoomed out: the name (and a composite's kind) in a font that grows as we zoom out
            self._paint_overview(painter, rect, lod, has_error, bool(option.state & QStyle.State_Selected))
            return
        self.painted_title = (self.title, 9.0 * lod * 96 / 72)  # (text, its height on screen in pixels)
        selected = bool(option.state & QStyle.State_Selected)
        border = theme.ERROR if has_error else (theme.SELECTED if selected else self.colour.darker(130))
        marked = self.mark in theme.DIFF_EDGE and not selected
        if marked:
            border = theme.DIFF_EDGE[self.mark]
        painter.setPen(QPen(border, 3.0 if (has_error or selected or marked) else 1.2))
        painter.setBrush(QBrush(self.body_colour()))
        painter.drawRoundedRect(rect, 8, 8)
        header = QPainterPath()
        header.setFillRule(Qt.WindingFill)
        header.addRoundedRect(QRectF(0, 0, theme.BLOCK_W, HEADER), 8, 8)
        header.addRect(QRectF(0, HEADER / 2, theme.BLOCK_W, HEADER / 2))
        painter.fillPath(header, self.colour)
        painter.setPen(theme.BODY)
        f = QFont(painter.font())
        f.setPointSizeF(9.0)
        f.setBold(True)
        painter.setFont(f)
        painter.drawText(QRectF(8, 0, theme.BLOCK_W - 16, HEADER), Qt.AlignVCenter | Qt.AlignLeft,
                         _fit(painter, self.title, theme.BLOCK_W - 16))
        f.setBold(False)
        f.setPointSizeF(8.0)
        painter.setFont(f)
        painter.setPen(theme.TEXT)
        painter.drawText(QRectF(8, HEADER + 2, theme.BLOCK_W - 16, 16), Qt.AlignLeft | Qt.AlignVCenter,
                         _fit(painter, f"{self.summary}  ·  {self.kind_title}" if self.summary else self.kind_title,
                              theme.BLOCK_W - 16))
        if rep is not None:
            shape = fmt_shape(rep.out_shape) if rep.out_shape else "no shape"
            f.setBold(True)
            painter.setFont(f)
            painter.setPen(theme.ERROR if has_error else theme.SHAPE_TEXT)
            painter.drawText(QRectF(8, HEADER + 18, theme.BLOCK_W - 22, 16), Qt.AlignLeft | Qt.AlignVCenter,
                             _fit(painter, rep.errors[0].message if has_error else f"→ {shape}",
                                  theme.BLOCK_W - 22))
            f.setBold(False)
            painter.setFont(f)
            painter.setPen(theme.COST_TEXT)
            cost = f"{human(rep.params)} params · {human(rep.macs)} MACs" if rep.params or rep.macs else "no params"
            painter.drawText(QRectF(8, HEADER + 36, theme.BLOCK_W - 16, 16), Qt.AlignLeft | Qt.AlignVCenter, cost)
        painter.setPen(QPen(theme.PORT_EDGE, 1.2))
        painter.setBrush(theme.PORT_FILL)
        n = len(self.ports)
        if n <= MANY_PORTS:
            for i in range(n):
                painter.drawEllipse(self._port_point(i, n), theme.PORT_R, theme.PORT_R)
        else:  # more ports than could be told apart: one bar where they sit
            first, last = self._port_point(0, n), self._port_point(n - 1, n)
            painter.drawRoundedRect(QRectF(first, last).adjusted(-theme.PORT_R, -theme.PORT_R, theme.PORT_R,
                                                                 theme.PORT_R), theme.PORT_R, theme.PORT_R)
        if self.has_output:
            painter.setBrush(self.colour)
            painter.drawEllipse(self.out_port_local(), theme.PORT_R, theme.PORT_R)
        if has_error:
            painter.setPen(Qt.NoPen)
            painter.setBrush(theme.ERROR)
            c = QPointF(theme.BLOCK_W - 4, 2)
            painter.drawEllipse(c, 9, 9)
            painter.setPen(theme.BODY)
            f.setBold(True)
            painter.setFont(f)
            painter.drawText(QRectF(c.x() - 9, c.y() - 9, 18, 18), Qt.AlignCenter, "!")
        elif rep is not None and rep.warnings:
            painter.setPen(Qt.NoPen)
            painter.setBrush(theme.WARNING)
            painter.drawEllipse(QPointF(theme.BLOCK_W - 4, 2), 6, 6)
        if self.advice:  # the design advisor has something to say about this block
            painter.setPen(Qt.NoPen)
            painter.setBrush(theme.ADVICE)
            c = QPointF(theme.BLOCK_W - (26 if has_error else 4), 2)
            painter.drawEllipse(c, 8, 8)
            painter.setPen(theme.BODY)
            f.setBold(True)
            painter.setFont(f)
            painter.drawText(QRectF(c.x() - 8, c.y() - 8, 16, 16), Qt.AlignCenter, "i")
        if self.candidates:
            self._paint_candidates(painter, f)

    def set_candidates(self, n: int) -> None:
        if n != self.candidates:
            self.candidates = n
            self.update()

    def _paint_candidates(self, painter, f) -> None:
        """A badge with the number of candidates its search choices hold (bottom right)."""
        painter.setPen(Qt.NoPen)
        painter.setBrush(theme.CANDIDATES)
        text = f"{self.candidates} cand."
        box = QRectF(theme.BLOCK_W - 54, theme.BLOCK_H - 16, 50, 13)
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(theme.BODY)
        f.setBold(True)
        f.setPointSizeF(7.0)
        painter.setFont(f)
        painter.drawText(box, Qt.AlignCenter, text)

    def _second_line(self) -> str:
        spec = self.block.spec
        return self.kind_title if spec is not None and spec.is_composite and self.title != self.kind_title else ""

    def name_font(self, base: QFont, lod: float) -> tuple[QFont, float]:
        """The font the name is painted with at zoom ``lod`` and its size in canvas units: 13 px on screen, never
        more than the block allows, shrunk to fit the block down to 7 px (then the name is elided)."""
        f = QFont(base)
        f.setBold(True)
        size = min(13.0 / lod, theme.BLOCK_H * (0.42 if self._second_line() else 0.6))
        f.setPixelSize(max(1, int(size)))
        room = theme.BLOCK_W - 12
        least = 7.0 / lod
        while QFontMetrics(f).horizontalAdvance(self.title) > room and size > least:  # shrink to fit
            size = max(size * 0.9, least)
            f.setPixelSize(max(1, int(size)))
        return f, size

    def legible_at(self, base: QFont, lod: float) -> bool:
        return int(self.name_font(base, lod)[1]) * lod >= LEGIBLE_PX

    def _paint_overview(self, painter, rect, lod, has_error, selected):
        painter.fillRect(rect, theme.ERROR if has_error else theme.DIFF_EDGE.get(self.mark, self.colour))
        if selected:
            painter.setPen(QPen(theme.SELECTED, 4.0 / max(lod, 0.01)))
            painter.drawRect(rect)
        self.painted_title = None
        if lod < MIN_TEXT_LOD:  # a minimap's dot: no text could be read
            return
        second = self._second_line()
        f, size = self.name_font(painter.font(), lod)
        painter.setFont(f)
        room = theme.BLOCK_W - 12
        painter.setPen(theme.BODY)
        top = QRectF(6, 0, room, theme.BLOCK_H * (0.62 if second else 1.0))
        painter.drawText(top, Qt.AlignCenter, _fit(painter, self.title, room))
        self.painted_title = (self.title, int(size) * lod)
        if second and theme.BLOCK_H * 0.3 * lod >= 7:
            f.setBold(False)
            f.setPixelSize(max(1, int(min(theme.BLOCK_H * 0.28, 11.0 / lod))))
            painter.setFont(f)
            painter.drawText(QRectF(6, theme.BLOCK_H * 0.58, room, theme.BLOCK_H * 0.38), Qt.AlignCenter,
                             _fit(painter, second, room))

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionHasChanged and self.canvas is not None:
            self.canvas.block_item_moved(self)
        return super().itemChange(change, value)

    def mouseDoubleClickEvent(self, event):
        self.canvas.block_double_clicked.emit(self.block_id)
        super().mouseDoubleClickEvent(event)


class WireLabel(QGraphicsSimpleTextItem):
    """A wire's shape label on a pale tag, an item of its own beside the wire (not its child: Qt's index answers
    every query of a scene whose items have children by walking all of them, 17 ms at 20,000 wires, and
    it indexed the children with the wires in one go when a big network was drawn)."""

    PAD_X, PAD_Y = 4.0, 1.0
    FONT = QFont()
    FONT.setPointSizeF(7.5)
    BACKGROUND = QColor(255, 255, 255, 230)

    def __init__(self):
        super().__init__()
        self.setBrush(theme.WIRE_LABEL)
        self.setFont(self.FONT)
        self.setZValue(0.5)  # over the wires, under the blocks

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-self.PAD_X, -self.PAD_Y, self.PAD_X, self.PAD_Y)

    def paint(self, painter, option, widget=None):
        painter.fillRect(self.boundingRect(), self.BACKGROUND)
        super().paint(painter, option, widget)


class WireItem(QGraphicsPathItem):
    """A wire, painted by Qt itself (no Python paint: a thousand of them must redraw within a frame), with a
    shape label at its middle (:class:`WireLabel`, added to the scene with the wire) that hides when zoomed far
    out."""

    PEN = QPen(theme.WIRE, 2.0)
    PEN.setCosmetic(True)  # 2 px at every zoom: a zoomed-out view of thousands of wires strokes them quickly
    PEN_SELECTED = QPen(theme.SELECTED, 3.0)
    PEN_SELECTED.setCosmetic(True)

    def __init__(self, scene: QGraphicsScene, src: str, dst: str, port: str):
        super().__init__()
        self.canvas, self.src, self.dst, self.port = scene, src, dst, port
        self.label = ""
        self.setZValue(0)
        self.setFlag(QGraphicsItem.ItemIsSelectable)
        self.setPen(self.PEN)
        self.tag = WireLabel()
        self.tag.setVisible(False)  # until it has a text
        self.update_path()

    @property
    def key(self):
        return (self.src, self.dst, self.port)

    def update_path(self):
        s, d = self.canvas.blocks.get(self.src), self.canvas.blocks.get(self.dst)
        if s is None or d is None:
            return
        self.setPath(routed(s.out_port_pos(), d.in_port_pos(self.port), self.canvas.horizontal,
                            lambda rect: self.canvas.block_rects_in(rect, (self.src, self.dst))))
        self._place_label()

    def set_label(self, text: str):
        if text != self.label:
            self.label = text
            self.tag.setText(text)
            self.tag.setVisible(bool(text) and self.canvas.show_labels)
            self._place_label()

    def _place_label(self):
        if not self.label:
            return
        r = QGraphicsSimpleTextItem.boundingRect(self.tag)
        mid = self.path().pointAtPercent(0.5)
        self.tag.setPos(mid.x() - r.width() / 2, mid.y() - r.height() / 2)

    def shape(self):
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        return stroker.createStroke(self.path())

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemSelectedHasChanged:
            self.setPen(self.PEN_SELECTED if value else self.PEN)
        return super().itemChange(change, value)


def _fit(painter: QPainter, text: str, width: float) -> str:
    return painter.fontMetrics().elidedText(text, Qt.ElideRight, int(width))
