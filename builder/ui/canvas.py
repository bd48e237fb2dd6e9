"""The canvas: blocks with named ports, wires labelled with tensor shapes, error badges.

The scene observes the graph (its plain-Python events) and pushes edits through the document's undo stack;
a drag only moves items, and its release pushes one "Move" step.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QLineF, QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPainterPathStroker, QPen, QTransform
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsPathItem, QGraphicsScene,
                               QGraphicsSimpleTextItem, QGraphicsView, QStyle)

from blocks import REGISTRY, fmt_shape
from builder.insight.report import human

from . import theme
from .interaction import CanvasInteraction
from .routing import CLEAR, routed
from .text import esc as _esc

MIME_KIND = "application/x-block-builder-kind"
HEADER = 24.0
OVERVIEW_LOD = 0.6   # below this zoom a block shows only its name (and a composite's kind), large enough to read
MIN_TEXT_LOD = 0.06  # below this (a minimap) not even that
OVERVIEW_ZOOM = 0.4  # Fit view: the whole network when every name reads at that zoom (>= 7 px on screen; never
#                      more zoom asked than this), else that zoom from the top
LEGIBLE_PX = 7.0
FIT_FLOOR = 0.2  # Fit view never zooms out further to show a network's whole width (names stop reading)
MANY_PORTS = 48  # a block with more inputs draws them as one bar (each would be under 5 px wide)
SCENE_MARGIN = 600.0  # room around the network to scroll into (and to drop blocks in)
SLICED_FROM = 250  # a network with more blocks gets its canvas items in slices (the window keeps answering)


BODY = QRectF(0, 0, theme.BLOCK_W, theme.BLOCK_H)  # a block's body in its own coordinates


def index_depth(items: int) -> int:
    """The depth Qt's BSP index picks for ``items`` items (log2, at least 5)."""
    return max(5, math.ceil(math.log2(max(items, 1))))


class BlockItem(QGraphicsItem):
    def __init__(self, scene: "CanvasScene", block_id: str):
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

    def __init__(self, scene: "CanvasScene", src: str, dst: str, port: str):
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


class CanvasScene(QGraphicsScene):
    block_double_clicked = Signal(str)
    status_message = Signal(str)
    attach_progress = Signal(int, int)  # items made, of all (a sliced attach)
    attached = Signal()  # every block and wire of the graph has its item

    def show_heat(self, ms_by_block: dict | None) -> None:
        """The latency overlay: each block coloured by its measured time relative to the slowest; None clears."""
        top = max((v for v in (ms_by_block or {}).values()), default=0.0) or 1.0
        for bid, item in self.blocks.items():
            item.set_heat(None if ms_by_block is None else ms_by_block.get(bid, 0.0) / top)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.graph = None
        self.blocks: dict[str, BlockItem] = {}
        self.wires: dict[tuple, WireItem] = {}
        self.wires_at: dict[str, set] = {}  # block id -> keys of the wires into or out of it (an edit repaths those)
        self._shown = -1  # the serial of the analysis the items show (apply_analysis: only what changed since)
        self._attaching = False  # attach() adds every block before any wire: nothing to re-path or regrow
        self._rect = None  # the network's bounds (network_rect), until a block is added, removed or moved
        self.attaching = None  # the Slices making a big network's items, while it runs
        self._grow = QTimer(self)  # the scene's rect follows the network's bounds once per burst of changes
        self._grow.setSingleShot(True)
        self._grow.setInterval(0)
        self._grow.timeout.connect(self._grow_scene)
        self._reroute_rects: list = []  # where blocks came, went or moved: the wires there find their way again
        self._reroute_timer = QTimer(self)  # once the edit is whole (its blocks are all in place)
        self._reroute_timer.setSingleShot(True)
        self._reroute_timer.setInterval(0)
        self._reroute_timer.timeout.connect(self._reroute)
        self.interaction = CanvasInteraction(self)  # wire drags and one-step moves
        self._repaint_pending = False
        self.show_labels = True
        self.horizontal = False  # the diagram reads left to right (the graph's direction "LR")
        self.setBackgroundBrush(theme.CANVAS_BACKGROUND)
        doc.graph_replaced.connect(self.attach)
        doc.analysed.connect(self.apply_analysis)
        self.attach(doc.graph)

    def _bounds_changed(self) -> None:
        """A block was added, removed or moved: the network's bounds are measured again when asked, and the
        scene grows around them (never shrinks: the view does not jump under the user) a moment later."""
        self._rect = None
        if self.attaching is None:
            self._grow.start()

    def grow_now(self) -> None:
        """The scene's rect around the network now (before the view scrolls to a block just made)."""
        if self._grow.isActive():
            self._grow.stop()
            self._grow_scene()

    def _grow_scene(self) -> None:
        want = self.network_rect().adjusted(-SCENE_MARGIN / 2, -SCENE_MARGIN / 2, SCENE_MARGIN / 2,
                                            SCENE_MARGIN / 2)
        if want.isValid() and not self.sceneRect().contains(want):
            # each view keeps what it shows: the scene takes in the area in view too, and a view whose scene was
            # smaller than it (centred by Qt) is put back on the same centre (it panned when a block was dropped
            # near the canvas's edge)
            views = [(v, v.mapToScene(v.viewport().rect()).boundingRect()) for v in self.views()]
            grown = self.sceneRect().united(want.adjusted(-SCENE_MARGIN / 2, -SCENE_MARGIN / 2, SCENE_MARGIN / 2,
                                                          SCENE_MARGIN / 2))
            for _, shown in views:
                grown = grown.united(shown)
            self.setSceneRect(grown)
            for v, shown in views:
                if v.mapToScene(v.viewport().rect()).boundingRect().center() != shown.center():
                    QGraphicsView.centerOn(v, shown.center())

    def network_rect(self) -> QRectF:
        """The bounds of every block (wires run between them), from their positions: what Qt's
        itemsBoundingRect() gives, without asking 40,000 items for their shapes after every edit."""
        if self._rect is None:
            if not self.blocks:
                self._rect = QRectF()
            else:  # the model's positions (an item's pos() makes a QPointF: 10x slower), and the items being
                nodes = self.graph.g._node  # dragged (the model has their place when they are dropped)
                points = [nodes[bid]["block"].pos for bid in self.blocks if bid in nodes]
                points += [(p.x(), p.y()) for p in (item.pos() for item in self.selectedItems()
                                                   if isinstance(item, BlockItem))]
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                r = theme.PORT_R + 3
                self._rect = QRectF(min(xs) - r, min(ys) - r, max(xs) - min(xs) + theme.BLOCK_W + 2 * r,
                                    max(ys) - min(ys) + theme.BLOCK_H + 2 * r)
        return self._rect

    # ------------------------------------------------------------------ model events
    def attach(self, graph):
        """Show ``graph``: a network of up to SLICED_FROM blocks at once; a bigger one (or one that replaces a bigger
        one) in slices (builder.ui.slices) with :attr:`attach_progress` after each and :attr:`attached` at the end,
        so the window keeps answering while 20,000 blocks leave or get their items. Each item takes the
        document's analysis as it is made."""
        if self.attaching is not None:
            self.attaching.running = False
            self.attaching.timer.stop()
            self.attaching = None
        if self.graph is not None:
            for name, fn in self._subscriptions():
                getattr(self.graph, name).disconnect(fn)
        # the items shown leave the model's maps at once (edits and analyses reach only the new ones) and the
        # scene in the first slices (Qt takes 15 us an item: 80,000 items of a 20,000-block chain are 1 s)
        self.clearSelection()
        leaving = list(self.blocks.values())  # in the order they came: the last one leaves first (Qt's list of
        leaving += [item for w in self.wires.values() for item in (w, w.tag)]  # items then shifts nothing)
        self.blocks, self.wires, self.wires_at = {}, {}, {}
        self._bounds_changed()
        self.graph = graph
        self.horizontal = graph.direction == "LR"
        for name, fn in self._subscriptions():
            getattr(graph, name).connect(fn)
        if len(graph) <= SLICED_FROM and len(leaving) <= 4 * SLICED_FROM:
            del leaving
            self.clear()
            for _ in self._attach_steps(graph):
                pass
            self.attached.emit()
            return
        from .slices import Slices
        # the views paint once, when every item is there (a half-made network would be painted at every slice:
        # 8,000 wires into one concat are all in view)
        for view in self.views():
            view.viewport().setUpdatesEnabled(False)

        def done():
            self.attaching = None
            for view in self.views():
                view.viewport().setUpdatesEnabled(True)
                view.viewport().update()
            self.attached.emit()
        self.attaching = Slices(self, self._attach_steps(graph, leaving), done,
                                lambda n, total: self.attach_progress.emit(n, total), after=self.index_now)

    def _prepare_for(self, graph) -> None:
        """The scene's rect and Qt's index set for ``graph``'s items before they come (an empty scene: nothing is
        indexed again). The bounds are known from the positions: set once, the scene is not measured as each item
        is added. The index's depth is fixed for the items to come (left to itself, Qt rebuilds the whole tree
        each time the count passes a power of two); each slice's items are indexed after it (else all 80,000 items
        of a 20,000-block chain at the first paint, 0.2 s)."""
        if self.itemIndexMethod() != QGraphicsScene.BspTreeIndex:
            self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        blocks = graph.blocks()
        if blocks:
            xs, ys = [b.pos[0] for b in blocks], [b.pos[1] for b in blocks]
            self.setSceneRect(QRectF(min(xs), min(ys), max(xs) - min(xs) + theme.BLOCK_W,
                                     max(ys) - min(ys) + theme.BLOCK_H).adjusted(-SCENE_MARGIN, -SCENE_MARGIN,
                                                                                 SCENE_MARGIN, SCENE_MARGIN))
        else:
            self.setSceneRect(QRectF(-SCENE_MARGIN, -SCENE_MARGIN, 2 * SCENE_MARGIN, 2 * SCENE_MARGIN))
        big = len(graph) > SLICED_FROM
        self.setBspTreeDepth(index_depth(len(graph) + 2 * graph.g.number_of_edges()) if big else 0)

    def index_now(self) -> None:
        """Qt indexes the items added since the last query now (any query asks it to: here one of a point in the
        scene's corner, by bounding rects, so that no item's shape is computed)."""
        r = self.sceneRect()
        self.items(QRectF(r.left(), r.top(), 1, 1), Qt.IntersectsItemBoundingRect)

    def finish_attach(self) -> None:
        """Make every item now (a sliced attach still under way)."""
        if self.attaching is not None:
            self.attaching.finish()

    def _attach_steps(self, graph, leaving=()):
        """The items of the network shown before leave (``leaving``; with them whatever else the scene holds);
        then every block's item, then every wire's, each placed once (the ports are all there before the first
        wire); the steps say how far they are. What the graph lost or gained meanwhile is skipped or already
        there (its own events made it)."""
        ids, edges = list(graph.ids()), list(graph.edges())
        gone = len(leaving)
        total = gone + len(ids) + len(edges)
        if gone:
            # Qt's tree index takes 0.5 ms to drop a wire that spans the scene (8,000 into one concat): none now
            self.setItemIndexMethod(QGraphicsScene.NoIndex)
            for n in range(gone):  # popped: each item is freed as it leaves
                self.removeItem(leaving.pop())
                yield n + 1, total
        if self.blocks or self.wires:  # the new network's own events made items meanwhile: those stay
            mine = set(self.blocks.values()) | set(self.wires.values()) | {w.tag for w in self.wires.values()}
            for item in self.items():
                if item.parentItem() is None and item not in mine:
                    self.removeItem(item)
        else:
            self.clear()  # what is left: an overlay's items (a receptive field, feature maps)
        self._prepare_for(graph)
        analysis = self.doc.analysis if self.doc.graph is graph else None
        reports = analysis.blocks if analysis is not None else {}
        self._shown = analysis.serial if analysis is not None else -1  # the figures the items are made with
        nodes = graph.g._node
        for n, bid in enumerate(ids):
            if bid in nodes and bid not in self.blocks:
                self._add_block(bid)
                if bid in reports:
                    self.blocks[bid].set_report(reports[bid])
            yield gone + n + 1, total
        self._attaching = True  # each wire is placed once, as it is made
        try:
            for n, (u, v, k) in enumerate(edges):
                if (u, v, k) not in self.wires and u in self.blocks and v in self.blocks and graph.g.has_edge(u, v, k):
                    self._add_wire(u, v, k)
                    rep = reports.get(u)
                    if rep is not None:
                        w = self.wires[(u, v, k)]
                        w._shape = rep.out_shape
                        w.set_label(fmt_shape(rep.out_shape) if rep.out_shape else "?")
                yield gone + len(ids) + n + 1, total
        finally:
            self._attaching = False

    def _subscriptions(self):
        return [("block_added", self._add_block), ("block_removed", self._remove_block),
                ("block_changed", self._block_changed), ("block_moved", self._block_moved),
                ("edge_added", self._add_wire), ("edge_removed", self._remove_wire),
                ("direction_changed", self._direction_changed)]

    def _direction_changed(self):
        self.horizontal = self.graph.direction == "LR"
        for item in self.blocks.values():
            item.refresh_model()
        for w in self.wires.values():
            w.update_path()

    def _add_block(self, bid):
        item = BlockItem(self, bid)
        item.setPos(QPointF(*self.graph.block(bid).pos))
        self.addItem(item)
        self.blocks[bid] = item
        self._bounds_changed()
        self._reroute_at(item)

    def _remove_block(self, bid):
        self.wires_at.pop(bid, None)
        self._bounds_changed()
        item = self.blocks.pop(bid, None)
        if item is not None:
            self._reroute_at(item)
            self.removeItem(item)
            if not self._repaint_pending:  # one full repaint after a burst of removals: no stale paint remains
                self._repaint_pending = True
                QTimer.singleShot(0, self._repaint_views)

    def _repaint_views(self):
        self._repaint_pending = False
        for view in self.views():
            view.viewport().update()

    def _block_changed(self, bid):
        item = self.blocks.get(bid)
        if item is not None:
            item.refresh_model()

    def _block_moved(self, bid):
        item = self.blocks.get(bid)
        if item is not None:
            pos = QPointF(*self.graph.block(bid).pos)
            if item.pos() != pos:
                item.setPos(pos)
                self._bounds_changed()

    def _add_wire(self, u, v, k):
        if not self._attaching and v in self.blocks:
            self.blocks[v].refresh_model()  # variadic blocks grow a port
        w = WireItem(self, u, v, k)
        self.addItem(w)
        self.addItem(w.tag)
        key = (u, v, k)
        self.wires[key] = w
        self.wires_at.setdefault(u, set()).add(key)
        self.wires_at.setdefault(v, set()).add(key)
        if not self._attaching:
            self._repath_into(v)

    def _remove_wire(self, u, v, k):
        key = (u, v, k)
        w = self.wires.pop(key, None)
        if w is not None:
            self.removeItem(w.tag)
            self.removeItem(w)
        for bid in (u, v):
            self.wires_at.get(bid, set()).discard(key)
        if v in self.blocks:
            self.blocks[v].refresh_model()
            self._repath_into(v)

    def _repath_into(self, bid):
        """The wires into ``bid`` follow its ports (a variadic block's move as it grows or shrinks)."""
        for key in self.wires_at.get(bid, ()):
            if key[1] == bid:
                self.wires[key].update_path()

    def apply_analysis(self, analysis):
        """Every block's figures and every wire's shape from ``analysis``; after an edit, only those of the blocks
        whose reports it made anew (and the wires into and out of them): a 10,000-block canvas pays for the
        edit, not for its size."""
        changed = analysis.changed_since(self._shown)
        self._shown = analysis.serial
        reports = analysis.blocks
        if changed is None:
            items, wires = self.blocks.items(), self.wires.items()
        else:
            items = [(b, self.blocks[b]) for b in changed if b in self.blocks]
            wires = [(k, self.wires[k]) for b in changed for k in self.wires_at.get(b, ()) if k in self.wires]
        for bid, item in items:
            item.set_report(reports.get(bid))
        for (u, _, _), w in wires:
            rep = reports.get(u)
            shape = rep.out_shape if rep else None
            if shape != getattr(w, "_shape", ()):  # relabel only the wires whose shape changed
                w._shape = shape
                w.set_label(fmt_shape(shape) if shape else "?")

    def draw_overview(self, painter: QPainter) -> None:
        """The network as a minimap shows it, in scene coordinates: each block a rectangle in its colour (red
        with an error), each wire a line between its ports; no item is painted. Where a block is under two
        pixels of the painter's device, blocks and wires are drawn once per pixel they fall on (a 20,000-block
        chain on a 200-pixel map: a few hundred rectangles, not 20,000)."""
        w, h = theme.BLOCK_W, theme.BLOCK_H
        nodes = self.graph.g._node  # the model's positions (an item's pos() makes a QPointF: 10x slower)
        pos = {bid: nodes[bid]["block"].pos for bid in self.blocks if bid in nodes}
        scale = max(abs(painter.worldTransform().m11()), abs(painter.worldTransform().m22()), 1e-9)
        cell = 1.0 / scale  # one device pixel, in scene units
        if self.horizontal:  # from the right edge's middle to the left edge's (a port is a pixel here)
            out_at, in_at = (w, h / 2), (0.0, h / 2)
        else:
            out_at, in_at = (w / 2, h), (w / 2, 0.0)
        ends = [(pos[u], pos[v]) for u, v, _ in self.wires if u in pos and v in pos]
        if h * scale >= 2:
            lines = [QLineF(a[0] + out_at[0], a[1] + out_at[1], b[0] + in_at[0], b[1] + in_at[1]) for a, b in ends]
        else:  # one line per pair of pixels it joins
            pairs = {(int((a[0] + out_at[0]) // cell), int((a[1] + out_at[1]) // cell),
                      int((b[0] + in_at[0]) // cell), int((b[1] + in_at[1]) // cell)) for a, b in ends}
            lines = [QLineF(x0 * cell, y0 * cell, x1 * cell, y1 * cell) for x0, y0, x1, y1 in pairs
                     if (x0, y0) != (x1, y1)]
        painter.setPen(QPen(theme.WIRE, 0))
        painter.drawLines(lines)
        painter.setPen(Qt.NoPen)
        by_colour: dict = {}
        for bid, item in self.blocks.items():
            rep = item.report
            colour = theme.ERROR if rep is not None and rep.errors else theme.DIFF_EDGE.get(item.mark, item.colour)
            by_colour.setdefault(colour.rgba(), []).append(pos.get(bid, (0.0, 0.0)))
        for rgba, points in by_colour.items():
            painter.setBrush(QColor.fromRgba(rgba))
            if h * scale >= 2:
                painter.drawRects([QRectF(x, y, w, h) for x, y in points])
            else:  # a block covers the pixels from its corner to its far edge: each pixel drawn once
                across = max(1, round(w * scale))
                cells = {(int(x // cell), int(y // cell)) for x, y in points}
                painter.drawRects([QRectF(cx * cell, cy * cell, across * cell, cell) for cx, cy in cells])

    def apply_candidates(self, counts: dict) -> None:
        """Badges: {block id: its candidates} from the project's search choices."""
        for bid, item in self.blocks.items():
            item.set_candidates(counts.get(bid, 0))

    def apply_advice(self, findings):
        per_block: dict = {}
        for f in findings:
            if f.block:
                per_block.setdefault(f.block, []).append(f)
        for bid, item in self.blocks.items():
            item.set_advice(per_block.get(bid, []))

    def set_detail(self, zoom: float):
        """Wire labels only where they can be read."""
        show = zoom >= 0.45
        if show != self.show_labels:
            self.show_labels = show
            for w in self.wires.values():
                w.tag.setVisible(show and bool(w.label))

    def block_item_moved(self, item: BlockItem):
        self._bounds_changed()
        for key in self.wires_at.get(item.block_id, ()):
            self.wires[key].update_path()
        self._reroute_at(item)

    def _reroute_at(self, item: BlockItem) -> None:
        """The wires that pass where ``item`` is, or was, route again once the edit is whole (not while a network
        is being drawn: each wire is routed as it is made, after every block)."""
        if self.attaching is not None or self._attaching:
            return
        here = item.mapRectToScene(BODY)
        was = getattr(item, "_routed_at", None)
        item._routed_at = here
        self._reroute_rects += [here] if was is None else [here, was]
        self._reroute_timer.start()

    def _reroute(self) -> None:
        rects, self._reroute_rects = self._reroute_rects, []
        wires = {id(it): it for r in rects for it in self.items(r.adjusted(-CLEAR, -CLEAR, CLEAR, CLEAR),
                                                                 Qt.IntersectsItemBoundingRect)
                 if isinstance(it, WireItem) and it.key in self.wires}
        for w in wires.values():
            w.update_path()

    # ------------------------------------------------------------------ helpers
    def neighbour(self, bid: str, key) -> str | None:
        """The block an arrow key goes to from ``bid`` (see CanvasView.keyPressEvent), or None."""
        g = self.graph
        main, cross = (0, 1) if self.horizontal else (1, 0)
        forward = Qt.Key_Right if self.horizontal else Qt.Key_Down
        backward = Qt.Key_Left if self.horizontal else Qt.Key_Up
        here = g.block(bid).pos
        if key in (forward, backward):
            near = g.g.successors(bid) if key == forward else g.g.predecessors(bid)
            near = [n for n in dict.fromkeys(near) if n in self.blocks]
            return min(near, key=lambda n: abs(g.block(n).pos[cross] - here[cross]), default=None)
        sign = 1 if key in (Qt.Key_Right, Qt.Key_Down) else -1
        row = (theme.BLOCK_H if not self.horizontal else theme.BLOCK_W) * 0.75
        beside = [b.id for b in g.blocks() if b.id != bid and abs(b.pos[main] - here[main]) <= row
                  and (b.pos[cross] - here[cross]) * sign > 0]
        return min(beside, key=lambda n: abs(g.block(n).pos[cross] - here[cross]), default=None)

    def block_rects_in(self, rect: QRectF, besides=()) -> list:
        """The bodies of the blocks that lie in ``rect`` (a wire's way), other than ``besides``."""
        return [it.mapRectToScene(BODY) for it in self.items(rect, Qt.IntersectsItemBoundingRect)
                if isinstance(it, BlockItem) and it.block_id not in besides
                and it.mapRectToScene(BODY).intersects(rect)]

    def block_at(self, pos: QPointF) -> BlockItem | None:
        for it in self.items(pos):
            if isinstance(it, BlockItem):
                return it
        return None

    def port_at(self, pos: QPointF):
        for it in self.items(QRectF(pos.x() - 12, pos.y() - 12, 24, 24)):
            if isinstance(it, BlockItem):
                hit = it.port_at(pos)
                if hit:
                    return it, hit
        return None, None

    def selected_block_ids(self) -> list[str]:
        return [it.block_id for it in self.selectedItems() if isinstance(it, BlockItem)]

    def selected_wires(self) -> list[tuple]:
        return [it.key for it in self.selectedItems() if isinstance(it, WireItem)]

    # ------------------------------------------------------------------ mouse: the interaction handler decides
    def mousePressEvent(self, event):
        if event.button() == Qt.LeftButton and self.interaction.press(event.scenePos()):
            event.accept()
            return
        super().mousePressEvent(event)
        self.interaction.moves_begin()

    def mouseMoveEvent(self, event):
        if self.interaction.move(event.scenePos()):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if self.interaction.release(event.scenePos()):
            event.accept()
            return
        super().mouseReleaseEvent(event)
        self.interaction.moves_end()

    def request_wire(self, src, target, detached=None):
        return self.interaction.request_wire(src, target, detached)


class CanvasView(QGraphicsView):
    zoom_changed = Signal(float)
    block_dropped = Signal(str, QPointF)  # type id, scene position
    context_requested = Signal(object, QPointF, QPoint)  # the item under it (block, wire or None), scene, global

    def __init__(self, scene: CanvasScene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self._panning = None
        self.user_moved = False  # zoomed or panned by the user since the last fit
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.sliderMoved.connect(lambda _v: setattr(self, "user_moved", True))

    # zoom and pan
    def zoom(self, factor: float):
        self.user_moved = True
        current = self.transform().m11()
        factor = max(0.05 / current, min(factor, 4.0 / current))
        self.scale(factor, factor)
        self._zoomed()

    def _zoomed(self):
        z = self.transform().m11()
        self.scene().set_detail(z)
        self.zoom_changed.emit(z)

    def wheelEvent(self, event):
        """Every diagram tool's convention: the wheel scrolls, Shift+wheel scrolls sideways, Ctrl+wheel zooms
        around the cursor (a touchpad's pinch zooms too: see viewportEvent)."""
        self.user_moved = True
        delta = event.angleDelta()
        if event.modifiers() & Qt.ControlModifier:
            if delta.y():
                self.zoom(1.15 ** (delta.y() / 120))
            event.accept()
            return
        if event.modifiers() & Qt.ShiftModifier and delta.y() and not delta.x():
            bar = self.horizontalScrollBar()
            bar.setValue(bar.value() - delta.y())
            event.accept()
            return
        super().wheelEvent(event)

    def viewportEvent(self, event):
        if event.type() == QEvent.NativeGesture and event.gestureType() == Qt.ZoomNativeGesture:
            self.zoom(1.0 + event.value())
            return True
        return super().viewportEvent(event)

    def ensureVisible(self, *args):
        self.scene().grow_now()  # a block just made may lie past the scene's rect until it grows
        super().ensureVisible(*args)

    def centerOn(self, *args):
        self.scene().grow_now()
        super().centerOn(*args)

    def fit(self):
        """The whole network when its names can be read that way; else its full width (its height when it reads
        left to right) at a zoom where every name can still be read, from the top: it reads top to bottom by
        scrolling, never at a zoom that shows only coloured bars."""
        rect = self.scene().network_rect().adjusted(-40, -40, 40, 40)
        if not rect.isValid():
            return
        vw, vh = max(self.viewport().width(), 1), max(self.viewport().height(), 1)
        whole = min(vw / rect.width(), vh / rect.height())
        along_width = (vh / rect.height()) if self.scene().horizontal else (vw / rect.width())
        readable = whole >= OVERVIEW_ZOOM or (whole >= 0.25 and self.reads_at(whole))
        # else its full width (height) while names still read: a network too wide even at FIT_FLOOR (8,000 blocks
        # side by side) opens at its top left corner
        z = min(1.0, whole if readable else max(min(along_width, OVERVIEW_ZOOM), FIT_FLOOR))
        z = max(z, 0.05)
        self.user_moved = False
        self.setTransform(QTransform.fromScale(z, z))
        if self.scene().horizontal:
            y = rect.center().y() if rect.height() * z <= vh else rect.top() + vh / (2 * z)
            self.centerOn(rect.left() + vw / (2 * z), y)
        else:
            x = rect.center().x() if rect.width() * z <= vw else rect.left() + vw / (2 * z)
            self.centerOn(x, rect.top() + vh / (2 * z))
        self._zoomed()

    def reads_at(self, z: float) -> bool:
        """Whether every block's name paints at LEGIBLE_PX or more at zoom ``z``, as the blocks paint them (a long
        name shrinks to fit its block, so it needs more zoom)."""
        items = list(self.scene().blocks.values())
        if len(items) > 400:  # far too many to be whole on a screen at a readable zoom
            return False
        base = self.viewport().font()
        return all(it.legible_at(base, z) for it in items)

    def mousePressEvent(self, event):
        if event.button() == Qt.MiddleButton:
            self.user_moved = True
            self._panning = event.position()
            self.setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if self._panning is not None:
            d = event.position() - self._panning
            self._panning = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(d.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if self._panning is not None and event.button() == Qt.MiddleButton:
            self._panning = None
            self.unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event):
        """A right click (or the Menu key: at the selected block) asks for the menu of what is under it."""
        from PySide6.QtGui import QContextMenuEvent
        if event.reason() == QContextMenuEvent.Keyboard:
            ids = self.scene().selected_block_ids()
            item = self.scene().blocks.get(ids[0]) if ids else None
            scene_pt = item.sceneBoundingRect().center() if item is not None else \
                self.mapToScene(self.viewport().rect().center())
            self.context_requested.emit(item, scene_pt, self.viewport().mapToGlobal(self.mapFromScene(scene_pt)))
        else:
            scene_pt = self.mapToScene(event.pos())
            item = self.scene().block_at(scene_pt)
            if item is None:
                item = next((it for it in self.scene().items(QRectF(scene_pt.x() - 4, scene_pt.y() - 4, 8, 8))
                             if isinstance(it, WireItem)), None)
            self.context_requested.emit(item, scene_pt, event.globalPos())
        event.accept()

    def keyPressEvent(self, event):
        """Arrow keys move the selection along the wires: down (right, reading left to right) to the block fed,
        up to the block feeding it, sideways to the nearest block beside it."""
        ids = self.scene().selected_block_ids()
        keys = (Qt.Key_Up, Qt.Key_Down, Qt.Key_Left, Qt.Key_Right)
        if event.key() in keys and len(ids) == 1 and not event.modifiers() & ~Qt.KeypadModifier:
            target = self.scene().neighbour(ids[0], event.key())
            if target is not None:
                item = self.scene().blocks[target]
                self.scene().clearSelection()
                item.setSelected(True)
                self.ensureVisible(item, 40, 40)
            event.accept()
            return
        super().keyPressEvent(event)

    # drops from the palette
    def dragEnterEvent(self, event):
        if event.mimeData().hasFormat(MIME_KIND):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event):
        if event.mimeData().hasFormat(MIME_KIND):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event):
        if event.mimeData().hasFormat(MIME_KIND):
            type_id = bytes(event.mimeData().data(MIME_KIND)).decode()
            if type_id in REGISTRY:
                pos = self.mapToScene(event.position().toPoint())
                self.block_dropped.emit(type_id, pos - QPointF(theme.BLOCK_W / 2, theme.BLOCK_H / 2))
            event.acceptProposedAction()
        else:
            super().dropEvent(event)


def _fit(painter: QPainter, text: str, width: float) -> str:
    return painter.fontMetrics().elidedText(text, Qt.ElideRight, int(width))
