"""Context menus (right click, or the Menu key) on a block, a wire, the empty canvas, a Layers row and a run:
the actions that apply there, with the shortcuts the menu bar gives them. Each menu is built from the window's
own actions, so a menu item does exactly what the menu bar's does."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu


class ContextMenus:
    """Builds and shows the menus for a :class:`~builder.ui.main_window.MainWindow`; ``last`` is the menu shown
    last (tests read it)."""

    def __init__(self, win):
        self.win = win
        self.last: QMenu | None = None
        win.view.context_requested.connect(self.canvas)

    def _show(self, menu: QMenu, global_pos) -> QMenu:
        self.last = menu
        menu.popup(global_pos)  # not exec(): the event loop, and the tests, go on while it is open
        return menu

    def _add(self, menu, text, slot, shortcut=None, enabled=True) -> QAction:
        keys = shortcut.toString(QKeySequence.NativeText) if shortcut is not None else ""
        a = menu.addAction(f"{text}\t{keys}" if keys else text)  # the shortcut shown; the window's action has it
        a.setEnabled(enabled)
        a.triggered.connect(lambda *_: slot())
        return a

    def _shortcut(self, name):
        act = self.win.named_actions.get(name)
        return act.shortcut() if act is not None else None

    def _same(self, menu, name, text=None, enabled=True) -> QAction:
        """An item that triggers the window's action ``name`` (same text and shortcut)."""
        act = self.win.named_actions[name]
        return self._add(menu, text or act.text(), act.trigger, act.shortcut(), enabled)

    # ------------------------------------------------------------------ the canvas
    def canvas(self, item, scene_pt, global_pos):
        from .canvas import BlockItem, WireItem
        win = self.win
        menu = QMenu(win)
        if isinstance(item, BlockItem):
            if item.block_id not in win.scene.selected_block_ids():
                win.select_block(item.block_id)
            ids = win.scene.selected_block_ids()
            blk = win.doc.graph.block(item.block_id)
            composite = blk.spec is not None and blk.spec.is_composite
            menu.setTitle(item.block_id)
            self._same(menu, "expand", enabled=composite and len(ids) == 1)
            self._same(menu, "collapse", enabled=bool(blk.group))
            self._same(menu, "group", enabled=len(ids) > 1)
            menu.addSeparator()
            self._same(menu, "duplicate")
            self._same(menu, "cut")
            self._same(menu, "copy")
            self._same(menu, "delete")
            menu.addSeparator()
            self._add(menu, "Find in the Layers table", lambda: self.find_in_layers(item.block_id))
            self._add(menu, "Show its receptive field", lambda: self.show_receptive_field(item.block_id))
            self._add(menu, "Show its feature maps", lambda: self.show_feature_maps(item.block_id))
            self._same(menu, "profile", "Profile the network (measured latency per block)")
            self._add(menu, "Profile up to here (the blocks that compute its output)",
                      lambda: win.profile_latency(up_to=item.block_id))
            rep = win.doc.analysis.blocks.get(item.block_id) if win.doc.analysis is not None else None
            alone = rep is not None and not rep.errors and len(rep.in_shapes) == 1 and \
                rep.in_shapes[0] is not None and len(rep.in_shapes[0]) == 3
            self._add(menu, "Export this block as PyTorch code…", lambda: self.export_block(item.block_id),
                      enabled=alone)
        elif isinstance(item, WireItem):
            win.scene.clearSelection()
            item.setSelected(True)
            self._add(menu, "Delete this wire", win.delete_selected, self._shortcut("delete"))
            self._add(menu, f"Go to {item.src} (its source)", lambda: win.go_to_block(item.src))
            self._add(menu, f"Go to {item.dst} (what it feeds)", lambda: win.go_to_block(item.dst))
        else:
            self._same(menu, "paste")
            self._same(menu, "select_all")
            menu.addSeparator()
            self._same(menu, "fit")
            self._same(menu, "auto_layout")
            self._same(menu, "left_right")
            self._same(menu, "find")
            menu.addSeparator()
            self._same(menu, "compare")
            self._same(menu, "compare_saved", enabled=win.doc.path is not None)
        return self._show(menu, global_pos)

    # ------------------------------------------------------------------ what the block items do
    def find_in_layers(self, bid):
        win = self.win
        win.layers_dock.show()
        win.layers_dock.raise_()
        win.layers.select(bid)

    def show_receptive_field(self, bid):
        win = self.win
        win.select_block(bid)
        win.inspector.parentWidget().show()
        win.inspector.parentWidget().raise_()
        from builder.insight.receptive import receptive_fields
        field = receptive_fields(win.doc.graph, win.doc.analysis).get(bid)
        win.say(f"{bid}: receptive field {field.describe()}" if field is not None else
                f"{bid} has no receptive field yet (its shape is not known)")

    def show_feature_maps(self, bid):
        win = self.win
        win.select_block(bid)
        win.feature_maps_dock.show()
        win.feature_maps_dock.raise_()

    def export_block(self, bid):
        """The block as a network of its own (an Input of its input's shape, the block, an Output), written as
        readable PyTorch code: a composite becomes its class, ready to paste into a model."""
        from pathlib import Path

        from PySide6.QtWidgets import QMessageBox

        from builder.core.edits import alone
        from builder.core.errors import GraphEditError
        from exports import ExportError, export_graph
        win = self.win
        rep = win.doc.analysis.blocks.get(bid) if win.doc.analysis is not None else None
        try:
            graph = alone(win.doc.graph, bid, rep.in_shapes[0] if rep is not None and rep.in_shapes else None)
        except GraphEditError as e:
            win.say(str(e), kind="warning")
            return None
        base = win.doc.path.parent if win.doc.path else Path.cwd()
        path = win.ask_path(win, f"Export {bid} as PyTorch code", "Python files (*.py)", save=True,
                            suggested=str(base / f"{graph.name.replace('.', '_')}.py"))
        if not path:
            return None
        try:
            written = export_graph(graph, "py", path)
        except ExportError as e:
            QMessageBox.critical(win, "Export failed", str(e))
            return None
        win.say(f"Exported {bid} as PyTorch code: {Path(written[0]).name}", written[0])
        return written

    # ------------------------------------------------------------------ Layers rows and runs
    def layers(self, pos):
        win = self.win
        index = win.layers.view.indexAt(pos)
        bid = win.layers.block_at_row(index.row()) if index.isValid() else None
        menu = QMenu(win)
        if bid is not None:
            top = next((b for b in win.scene.blocks if bid == b or bid.startswith(b + ".")), None)
            self._add(menu, f"Go to {bid} on the canvas", lambda: win.go_to_block(bid))
            if top is not None:
                blk = win.doc.graph.block(top)
                self._add(menu, f"Expand {top}", lambda: (win.select_block(top), win.named_actions["expand"].trigger()),
                          self._shortcut("expand"), blk.spec is not None and blk.spec.is_composite)
            self._add(menu, "Copy its id", lambda: _copy_text(bid))
        self._add(menu, "Show: blocks", lambda: win.layers.mode.setCurrentIndex(0))
        self._add(menu, "Show: layers inside composites", lambda: win.layers.mode.setCurrentIndex(1))
        self._add(menu, "Show: the paper's Table 1", lambda: win.layers.mode.setCurrentIndex(2))
        return self._show(menu, win.layers.view.viewport().mapToGlobal(pos))

    def runs(self, pos):
        win = self.win
        row = win.runs.list.indexAt(pos).row()
        menu = QMenu(win)
        if 0 <= row < len(win.runs.runs):
            run = win.runs.runs[row]
            win.runs.list.setCurrentRow(row)
            self._add(menu, "Open the graph it trained", win.runs._open)
            item = win.runs.list.item(row)
            from PySide6.QtCore import Qt
            self._add(menu, "Hide its curves" if item.checkState() == Qt.Checked else "Overlay its curves",
                      lambda: item.setCheckState(Qt.Unchecked if item.checkState() == Qt.Checked else Qt.Checked))
            self._add(menu, "Evaluate with its best weights", lambda: win.evaluation.use_run(str(run.folder)))
            self._add(menu, "Compare its network with the open one", lambda: win.comparing.with_run(run))
            self._add(menu, "Copy its folder", lambda: _copy_text(str(run.folder)))
        self._add(menu, "Refresh", win.runs.refresh)
        return self._show(menu, win.runs.list.viewport().mapToGlobal(pos))


def _copy_text(text: str) -> None:
    from PySide6.QtGui import QGuiApplication
    QGuiApplication.clipboard().setText(text)
