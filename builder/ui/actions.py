"""The editing commands of a window (add, delete, clipboard, expand/collapse/group, layout, selection): each is one
undo step through the document; the window's menus and shortcuts call them, and so do tests."""
from __future__ import annotations

import json

from PySide6.QtCore import QPointF
from PySide6.QtGui import QGuiApplication

from blocks import REGISTRY
from builder.core import edits
from builder.core.graph import make_id
from builder.core.layout import auto_layout

from . import theme

CLIP_MIME = "application/x-block-builder-blocks"
COMMANDS = ('add_block', 'delete_selected', 'select_all', 'copy', 'cut', 'paste', 'duplicate', 'expand_selected', 'collapse_selected', 'group_selected', 'auto_layout', 'toggle_direction', 'select_block', 'go_to_block', 'double_clicked')  # what the window exposes under the same names


class EditActions:
    def __init__(self, window):
        self.window = window
        self.doc, self.scene, self.view = window.doc, window.scene, window.view

    def say(self, text, path=None, kind="info"):
        self.window.say(text, path, kind)

    def add_block(self, type_id: str, pos: QPointF | None = None):
        """Drop or add a block; from the keyboard it goes below the selected block and is wired to it."""
        sel = self.scene.selected_block_ids()
        src = sel[0] if len(sel) == 1 and pos is None else None
        if pos is None:
            if src is not None:
                sp = self.doc.graph.block(src).pos
                pos = QPointF(sp[0], sp[1] + theme.BLOCK_H + 40)
            else:
                c = self.view.mapToScene(self.view.viewport().rect().center())
                pos = c - QPointF(theme.BLOCK_W / 2, theme.BLOCK_H / 2)
        new_id = [None]
        spec = REGISTRY[type_id]

        def edit(g):
            new_id[0] = g.add_block(type_id, None, None, pos=(pos.x(), pos.y()))
            if src is not None and g.block(src).type != "output" and (spec.ports or spec.variadic):
                g.connect(src, new_id[0])
        self.doc.push(f"Add {spec.title}", edit)  # selected and brought into view by MainWindow._select_produced
        return new_id[0]

    def delete_selected(self):
        ids = self.scene.selected_block_ids()
        wires = [w for w in self.scene.selected_wires() if w[0] not in ids and w[1] not in ids]
        if not ids and not wires:
            return

        def edit(g):
            for w in wires:
                g.disconnect(*w)
            for bid in ids:
                g.remove_block(bid)
        n = len(ids) + len(wires)
        self.doc.push(f"Delete {n} item{'s' if n > 1 else ''}", edit)

    def select_all(self):
        for it in self.scene.blocks.values():
            it.setSelected(True)

    def _clip_payload(self):
        ids = set(self.scene.selected_block_ids())
        if not ids:
            return None
        g = self.doc.graph
        blocks = [{"id": b.id, "type": b.type, "params": b.params, "label": b.label, "pos": list(b.pos)}
                  for b in g.blocks() if b.id in ids]
        edges = [[u, v, k] for u, v, k in g.edges() if u in ids and v in ids]
        return {"blocks": blocks, "edges": edges}

    def copy(self):
        payload = self._clip_payload()
        if payload:
            # plain text keeps the clipboard simple and lets people paste blocks between windows
            QGuiApplication.clipboard().setText(json.dumps({CLIP_MIME: payload}))

    def cut(self):
        self.copy()
        self.delete_selected()

    def paste(self, payload=None):
        if payload is None:
            try:
                payload = json.loads(QGuiApplication.clipboard().text())[CLIP_MIME]
                assert isinstance(payload["blocks"], list) and isinstance(payload["edges"], list)
            except (ValueError, KeyError, TypeError, AssertionError):
                self.say("The clipboard holds no blocks to paste", kind="warning")
                return
        mapping = {}

        def edit(g):
            taken = set(g.ids())
            for b in payload["blocks"]:
                nid = make_id(b["id"].replace(".", "_"), taken, fallback=b["type"])
                taken.add(nid)
                mapping[b["id"]] = g.add_block(b["type"], b["params"], nid, b.get("label", ""),
                                               (b["pos"][0] + 40, b["pos"][1] + 40))
            for u, v, k in payload["edges"]:
                g.connect(mapping[u], mapping[v], k)
        if self.doc.push(f"Paste {len(payload['blocks'])} blocks", edit):
            self.scene.clearSelection()
            for nid in mapping.values():
                self.scene.blocks[nid].setSelected(True)

    def duplicate(self):
        payload = self._clip_payload()
        if payload:
            self.paste(payload)

    def expand_selected(self):
        for bid in self.scene.selected_block_ids() or ([self.window.inspector.block_id] if self.window.inspector.block_id else []):
            b = self.doc.graph.block(bid)
            if b.spec and b.spec.is_composite:
                self.doc.push(f"Expand {bid}", lambda g, bid=bid: edits.expand(g, bid))
                return

    def collapse_selected(self):
        for bid in self.scene.selected_block_ids():
            grp = self.doc.graph.block(bid).group
            if grp:
                self.doc.push(f"Collapse {grp['id']}", lambda g, gid=grp["id"]: edits.collapse(g, gid))
                return
        self.say("Select a block that came from expanding a composite block", kind="warning")

    def group_selected(self):
        ids = self.scene.selected_block_ids()
        made = [None]

        def edit(g):
            made[0] = edits.group(g, ids, "Group")
        if self.doc.push(f"Group {len(ids)} blocks", edit):
            self.select_block(made[0])

    def auto_layout(self):
        pos = auto_layout(self.doc.graph)

        def edit(g):
            for bid, p in pos.items():
                if tuple(g.block(bid).pos) != p:
                    g.move(bid, p)
        self.doc.push("Auto layout", edit)
        self.view.fit()

    def toggle_direction(self):
        """Top to bottom <-> left to right: the direction and the new layout are one undo step."""
        direction = "LR" if self.doc.graph.direction == "TB" else "TB"

        def edit(g):
            g.set_direction(direction)
            for bid, p in auto_layout(g).items():
                if tuple(g.block(bid).pos) != p:
                    g.move(bid, p)
        self.doc.push("Read left to right" if direction == "LR" else "Read top to bottom", edit)
        self.view.fit()

    def select_block(self, bid):
        item = self.scene.blocks.get(bid)
        if item is not None:
            self.scene.clearSelection()
            item.setSelected(True)
            self.view.ensureVisible(item, 60, 60)

    def go_to_block(self, bid):
        """Select a block and bring it to the middle of the view (Find, the Layers table, the Advisor)."""
        item = self.scene.blocks.get(bid)
        if item is None:  # a layer inside a composite: its top-level block
            item = next((self.scene.blocks[b] for b in self.scene.blocks if bid.startswith(b + ".")), None)
        if item is None:
            return
        self.scene.clearSelection()
        item.setSelected(True)
        if not self.view.mapToScene(self.view.viewport().rect()).boundingRect().contains(item.sceneBoundingRect()):
            self.view.centerOn(item)

    def double_clicked(self, bid):
        b = self.doc.graph.block(bid)
        if b.spec and b.spec.is_composite:
            self.doc.push(f"Expand {bid}", lambda g: edits.expand(g, bid))
