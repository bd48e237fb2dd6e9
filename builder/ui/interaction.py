"""The canvas's mouse interactions, apart from the scene that draws: wiring by dragging from a port (a small state
machine: idle, or dragging a wire from a source, maybe one picked up by its end) and moves that become one undo
step. The scene passes its mouse events here first; what is not consumed goes on to Qt's own item handling."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsPathItem

from . import theme
from .routing import smooth


@dataclass
class WireDrag:
    """A wire being dragged: from ``src``'s output; ``detached`` is (block, port) when an existing wire was picked
    up by its end (dropped on nothing, it is removed)."""
    src: str
    detached: tuple | None
    temp: QGraphicsPathItem


class CanvasInteraction:
    def __init__(self, scene):
        self.scene = scene
        self.drag: WireDrag | None = None      # None: idle
        self._press_positions: dict | None = None

    @property
    def dragging(self) -> bool:
        return self.drag is not None

    # ------------------------------------------------------------------ wire drags
    def press(self, pos: QPointF) -> bool:
        """A left press on a port starts a wire drag (an output port: a new wire; an input port with a wire: that
        wire, picked up by its end). True when the press was consumed."""
        item, hit = self.scene.port_at(pos)
        if item is None:
            return False
        kind, port = hit
        if kind == "out":
            self._begin(item.block_id, None, pos)
            return True
        src = self.scene.graph.source_of(item.block_id, port)
        if src is None:
            return False
        self._begin(src, (item.block_id, port), pos)
        return True

    def _begin(self, src, detached, pos):
        temp = QGraphicsPathItem()
        temp.setPen(QPen(theme.DRAG_WIRE, 2.0, Qt.DashLine))
        temp.setZValue(5)
        self.scene.addItem(temp)
        self.drag = WireDrag(src, detached, temp)
        temp.setPath(smooth(self.scene.blocks[src].out_port_pos(), pos, self.scene.horizontal))

    def move(self, pos: QPointF) -> bool:
        if self.drag is None:
            return False
        self.drag.temp.setPath(smooth(self.scene.blocks[self.drag.src].out_port_pos(), pos, self.scene.horizontal))
        return True

    def release(self, pos: QPointF) -> bool:
        """Ends a wire drag: on an input port it connects there (replacing what the port had); elsewhere a
        picked-up wire is dropped. True when a drag was under way."""
        if self.drag is None:
            return False
        drag, self.drag = self.drag, None
        self.scene.removeItem(drag.temp)
        item, hit = self.scene.port_at(pos)
        target = (item.block_id, hit[1]) if item is not None and hit and hit[0] == "in" else None
        self.request_wire(drag.src, target, drag.detached)
        return True

    def request_wire(self, src, target, detached=None):
        """Connect ``src`` to ``target`` (block, port), replacing what the port had; ``detached`` is a wire
        picked up by its end (dropped on nothing, it is removed). One undo step."""
        if target == detached:
            return
        if target is None and detached is None:
            return

        def edit(g):
            if detached is not None:
                g.disconnect(src, *detached)
            if target is not None:
                old = g.source_of(*target)
                if old is not None:
                    g.disconnect(old, *target)
                g.connect(src, *target)
        text = f"Connect {src} to {target[0]}" if target else f"Disconnect {src} from {detached[0]}"
        self.scene.doc.push(text, edit)

    # ------------------------------------------------------------------ moves as one undo step
    def moves_begin(self):
        """After Qt handled a press: where the selected blocks are, to know on release what a drag moved."""
        self._press_positions = {bid: it.pos() for bid, it in self.scene.blocks.items() if it.isSelected()}

    def moves_end(self):
        before, self._press_positions = self._press_positions, None
        if not before:
            return
        moved = {bid: (it.pos().x(), it.pos().y()) for bid, it in self.scene.blocks.items()
                 if bid in before and it.pos() != before[bid]}
        if not moved:
            return

        def edit(g):
            for bid, pos in moved.items():
                g.move(bid, pos)
        self.scene.doc.push(f"Move {len(moved)} block{'s' if len(moved) > 1 else ''}", edit)
