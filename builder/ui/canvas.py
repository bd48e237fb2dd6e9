"""The canvas: the scene that keeps a block item (builder.ui.items) for every block of the graph and a wire item
for every wire, and the view that frames, zooms and scrolls it.

The scene observes the graph (its plain-Python events) and pushes edits through the document's undo stack;
a drag only moves items, and its release pushes one "Move" step.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QLineF, QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView

from blocks import REGISTRY, fmt_shape

from . import theme
from .interaction import CanvasInteraction
from .items import BODY, BlockItem, WireItem
from .routing import CLEAR

MIME_KIND = "application/x-block-builder-kind"
OVERVIEW_ZOOM = 0.4  # Fit view: the whole network when every name reads at that zoom (>= 7 px on screen; never
#                      more zoom asked than this), else that zoom from the top
FIT_FLOOR = 0.2  # Fit view never zooms out further to show a network's whole width (names stop reading)
SCENE_MARGIN = 600.0  # room around the network to scroll into (and to drop blocks in)
SLICED_FROM = 250  # a network with more blocks gets its canvas items in slices (the window keeps answering)


def index_depth(items: int) -> int:
    """The depth Qt's BSP index picks for ``items`` items (log2, at least 5)."""
    return max(5, math.ceil(math.log2(max(items, 1))))


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
        self._attaching = False  # attach() adds every block before any wire: nothing to re-path, re-route or regrow
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
        if len(graph) <= SLICED_FROM and len(leaving) <= 4 * SLICED_FROM:  # at once (the steps clear the scene)
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
        self._attaching = True  # each wire is placed (and routed) once, as it is made, after every block
        try:
            for n, bid in enumerate(ids):
                if bid in nodes and bid not in self.blocks:
                    self._add_block(bid)
                    if bid in reports:
                        self.blocks[bid].set_report(reports[bid])
                yield gone + n + 1, total
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
