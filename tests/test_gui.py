"""The desktop app driven through its real widgets with pytest-qt."""
import json
import subprocess
import sys

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent, QDragEnterEvent, QDragMoveEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox
from PySide6.QtTest import QTest

from builder.ui.canvas import MIME_KIND
from helpers import answer_paths, load_module, when_modal
from helpers import click_menu_item as _click_item
from helpers import context_menu as _context
from helpers import menu_texts as _texts

# Every test here takes seconds; a minute and a half means it waits on something that will not come.
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def win(make_window):
    return make_window(new=True)


def vp_point(win, scene_pt: QPointF) -> QPoint:
    return win.view.mapFromScene(scene_pt)


def drop_from_palette(qtbot, win, type_id, scene_pt):
    """What a drag from the palette delivers: the palette's own mime data, dropped on the canvas viewport."""
    item = win.palette.items[type_id]
    mime = win.palette.tree.mimeData([item])
    assert mime.hasFormat(MIME_KIND)
    target = win.view.viewport()
    pos = QPointF(vp_point(win, scene_pt))
    for ev in (QDragEnterEvent(pos.toPoint(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier),
               QDragMoveEvent(pos.toPoint(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier),
               QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)):
        QApplication.sendEvent(target, ev)
    settle(qtbot, win)


def settle(qtbot, win):
    """Wait (bounded) until the last edit's analysis ran and the canvas shows it."""
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)


def test_drag_block_from_palette_onto_canvas(qtbot, win):
    before = set(win.doc.graph.ids())
    drop_from_palette(qtbot, win, "inception_v1", QPointF(300, 200))
    new = set(win.doc.graph.ids()) - before
    assert len(new) == 1
    b = win.doc.graph.block(new.pop())
    assert b.type == "inception_v1"
    assert abs(b.pos[0] + 105 - 300) < 3 and abs(b.pos[1] + 41 - 200) < 3  # centred where it was dropped
    assert b.id in win.scene.blocks
    assert win.doc.undo_stack.count() == 1


def _mouse_drag(qtbot, win, a: QPointF, b: QPointF, steps=6):
    vp = win.view.viewport()
    pa, pb = vp_point(win, a), vp_point(win, b)
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, pa)
    for i in range(1, steps + 1):
        p = pa + (pb - pa) * (i / steps)
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, pb)
    settle(qtbot, win)


def test_connect_two_ports_with_a_mouse_drag(qtbot, win):
    g = win.doc.graph
    assert g.edges() == []  # a new file: an Input and an Output, not wired
    drop_from_palette(qtbot, win, "conv2d", QPointF(400, 150))
    conv = [b for b in g.ids() if b.startswith("conv2d")][0]
    settle(qtbot, win)
    src = win.scene.blocks["input"].out_port_pos()
    dst = win.scene.blocks[conv].in_port_pos("x")
    win.view.centerOn((src + dst) / 2)
    settle(qtbot, win)
    _mouse_drag(qtbot, win, src, dst)
    assert ("input", conv, "x") in g.edges()
    assert ("input", conv, "x") in win.scene.wires
    win.doc.refresh()
    assert win.scene.wires[("input", conv, "x")].label == "3x224x224"
    assert list(win.doc.analysis.blocks[conv].in_shapes) == [(3, 224, 224)]
    assert win.doc.undo_stack.count() == 2  # the drop and the wire: each its own undo step


def test_inspector_edit_updates_shapes_and_totals(qtbot, win):
    g = win.doc.graph
    win.open_template("lenet5")
    settle(qtbot, win)
    item = win.scene.blocks["c1"]
    win.view.centerOn(item)
    settle(qtbot, win)
    QTest.mouseClick(win.view.viewport(), Qt.LeftButton, Qt.NoModifier, vp_point(win, item.sceneBoundingRect().center()))
    settle(qtbot, win)
    assert win.inspector.block_id == "c1"
    spin = win.inspector.editors["out_channels"][1]
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "8")
    QTest.keyClick(spin, Qt.Key_Return)
    settle(qtbot, win)
    g = win.doc.graph
    assert g.block("c1").params["out_channels"] == 8
    a = win.doc.analysis
    assert a.blocks["c1"].out_shape == (8, 28, 28)
    assert a.blocks["c3"].params == 16 * 8 * 25 + 16
    assert win.scene.wires[("c1", "c1_act", "x")].label == "8x28x28"
    assert f"{a.inference.params:,} params" in win.totals.toolTip()
    assert a.inference.params == 61706 + 2 * 25 + 2 + 2 * 16 * 25


def test_undo_and_redo_restore_the_graph_exactly(qtbot, win):
    win.open_template("googlenet")
    g = win.doc.graph
    start = g.signature()
    win.scene.blocks["inception3a"].setSelected(True)
    win.inspector.editors["ch1x1"][1].setValue(70)
    win.expand_selected()
    win.scene.clearSelection()
    win.scene.blocks["aux1"].setSelected(True)
    QTest.keyClick(win.view, Qt.Key_Delete)
    drop_from_palette(qtbot, win, "relu", QPointF(-400, 0))
    after = g.signature()
    n = win.doc.undo_stack.count()
    assert n == 4
    for _ in range(n):
        QTest.keySequence(win, "Ctrl+Z")
    assert g.signature() == start
    for _ in range(n):
        QTest.keySequence(win, "Ctrl+Shift+Z")
    assert g.signature() == after
    win.doc.refresh()
    errors = win.doc.analysis.errors
    # the dropped ReLU is not wired yet, and aux1's Output lost its input with aux1
    assert sorted((e.block.split("_")[0], e.code) for e in errors) == [("aux1", "unconnected_input"),
                                                                       ("relu", "unconnected_input")]


def test_a_mouse_drag_moves_blocks_in_one_undo_step(qtbot, win):
    item = win.scene.blocks["output"]
    win.view.centerOn(item)
    settle(qtbot, win)
    start = item.sceneBoundingRect().center() + QPointF(0, 10)
    _mouse_drag(qtbot, win, start, start + QPointF(120, 60), steps=10)
    assert win.doc.graph.block("output").pos == pytest.approx((120.0, 500.0), abs=2)
    assert win.doc.undo_stack.count() == 1
    QTest.keySequence(win, "Ctrl+Z")
    assert win.doc.graph.block("output").pos == (0.0, 440.0)
    assert win.scene.blocks["output"].pos() == QPointF(0, 440)


def test_delete_blocks_and_wires(qtbot, win):
    win.open_template("lenet5")
    g = win.doc.graph
    win.scene.blocks["s2"].setSelected(True)
    QTest.keyClick(win.view, Qt.Key_Delete)
    assert "s2" not in g and "s2" not in win.scene.blocks
    assert not [e for e in g.edges() if "s2" in e[:2]]
    win.doc.refresh()
    assert any(e.code == "unconnected_input" and e.block == "c3" for e in win.doc.analysis.errors)
    assert "1 error" in win.problems.text()
    QTest.keySequence(win, "Ctrl+Z")
    assert "s2" in g and ("c1_act", "s2", "x") in g.edges()


def test_googlenet_template_totals_equal_the_cli(qtbot, win, tmp_path):
    win.open_template("googlenet")
    settle(qtbot, win)
    f = tmp_path / "g.json"
    subprocess.run([sys.executable, "-m", "builder", "new", "googlenet", "-o", str(f)], check=True, timeout=120)
    out = subprocess.run([sys.executable, "-m", "builder", "info", str(f), "--json"], capture_output=True,
                         text=True, timeout=120)
    doc = json.loads(out.stdout)
    tip = win.totals.toolTip()
    assert f"inference: {doc['inference']['params']:,} params, {doc['inference']['macs']:,} MACs" in tip
    assert f"training: {doc['training']['params']:,} params, {doc['training']['macs']:,} MACs" in tip
    assert "6.62M params" in win.totals.text() and "1.50G MACs" in win.totals.text()


def test_export_code_from_the_menu(qtbot, win, tmp_path, monkeypatch):
    win.open_template("googlenet")
    target = tmp_path / "net.py"
    asked = answer_paths(monkeypatch, win, target)
    win.export_actions["py"].trigger()
    assert asked == [("Export PyTorch code (.py)", True)]
    assert target.exists()
    mod = load_module(target, "exported_net")
    import torch
    model = mod.build_model().eval()
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
    assert sum(p.numel() for p in model.parameters()) == 13_004_888


def test_save_open_and_unsaved_changes_prompt(qtbot, win, tmp_path, monkeypatch):
    win.open_template("lenet5")
    path = tmp_path / "lenet.json"
    asked = answer_paths(monkeypatch, win, path, path)
    assert win.save_as()
    assert asked == [("Save project", True)]
    assert path.exists() and not win.doc.dirty and "lenet.json" in win.windowTitle()
    win.doc.push("edit", lambda g: g.set_params("c1", {"out_channels": 9}))
    assert win.doc.dirty and "*" in win.windowTitle()

    cancelled = when_modal(QMessageBox, lambda box: box.button(QMessageBox.Cancel).click())
    win.act_new.trigger()
    cancelled.check()
    assert win.doc.graph.block("c1").params["out_channels"] == 9  # nothing was lost
    win.doc.undo_stack.setClean()
    win.open_file_dialog()
    assert asked[-1] == ("Open project", False)
    assert win.doc.graph.block("c1").params["out_channels"] == 6 and win.doc.path == path
    assert str(path) in win.recent_menu.actions()[0].text()


def test_save_as_through_the_real_file_dialog(qtbot, win, tmp_path, monkeypatch):
    """The one test that drives Qt's own file dialog as a user does: type a name, wait for Save to be enabled,
    click it."""
    from PySide6.QtWidgets import QDialogButtonBox, QLineEdit
    monkeypatch.chdir(tmp_path)  # the dialog opens in the working directory, with the graph's name filled in
    win.open_template("lenet5")
    seen = {}

    def answer(dlg):
        edit = dlg.findChild(QLineEdit, "fileNameEdit")
        seen["suggested"] = edit.text()
        edit.setFocus()
        edit.selectAll()
        QTest.keyClicks(edit, "mine")
        button = dlg.findChild(QDialogButtonBox, "buttonBox").button(QDialogButtonBox.Save)
        qtbot.waitUntil(lambda: edit.text() == "mine" and button.isEnabled(), timeout=10000)
        QTest.mouseClick(button, Qt.LeftButton)
    answered = when_modal(QFileDialog, answer)
    assert win.save_as()
    answered.check()
    assert seen["suggested"].endswith(".json")
    target = tmp_path / "mine.json"  # ".json" is added to a name typed without it
    assert target.exists() and win.doc.path == target and not win.doc.dirty
    from builder.core import project
    assert project.load(target).signature() == win.doc.graph.signature()


def test_bad_file_shows_a_message_not_a_traceback(qtbot, win, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    seen = []
    shown = when_modal(QMessageBox, lambda box: (seen.append(box.text()), box.accept()))
    assert not win.open_path(bad, ask=False)
    shown.check()
    assert seen and str(bad) in seen[0] and "not valid JSON" in seen[0] and "Traceback" not in seen[0]


def test_copy_paste_and_duplicate(qtbot, win):
    win.open_template("lenet5")
    g = win.doc.graph
    for bid in ("c1", "c1_act"):
        win.scene.blocks[bid].setSelected(True)
    n = len(g)
    QTest.keySequence(win, "Ctrl+D")
    assert len(g) == n + 2
    new = set(win.scene.selected_block_ids())
    assert len(new) == 2 and all(b not in ("c1", "c1_act") for b in new)
    src, dst = sorted(new, key=lambda b: g.block(b).type)
    assert (dst, src, "x") in g.edges() or (src, dst, "x") in g.edges()
    QTest.keySequence(win, "Ctrl+C")
    QTest.keySequence(win, "Ctrl+V")
    assert len(g) == n + 4


def test_palette_search_and_keyboard_add(qtbot, win):
    win.palette.search.setText("1x1 reduce")
    visible = [k for k, it in win.palette.items.items() if not it.isHidden()]
    assert {"branch_reduce_3x3", "branch_reduce_5x5"} <= set(visible)
    assert "maxpool2d" not in visible and "inception_v1" not in visible
    win.scene.blocks["input"].setSelected(True)
    win.palette.tree.setCurrentItem(win.palette.items["branch_reduce_3x3"])
    win.palette.tree.setFocus()
    QTest.keyClick(win.palette.tree, Qt.Key_Return)
    g = win.doc.graph
    new = [b for b in g.ids() if g.block(b).type == "branch_reduce_3x3"]
    assert len(new) == 1 and ("input", new[0], "x") in g.edges()  # added below the selection, wired to it


def test_hundred_consecutive_renders(qtbot, win):
    win.open_template("inception_v3")
    start = win.view.transform().m11()
    for i in range(100):
        win.view.viewport().repaint()
        if i % 10 == 0:
            win.view.zoom(0.9 if i % 20 else 1.1)
    assert win.view.transform().m11() == pytest.approx(start * 1.1 ** 5 * 0.9 ** 5)
    assert win.zoom_label.text() == f"{round(win.view.transform().m11() * 100)}%"
    # what was painted last is the network: the pixels under a block differ from the empty canvas's
    item = win.scene.blocks["Conv2d_1a_3x3"]
    win.view.centerOn(item)
    image = win.view.viewport().grab().toImage()
    centre = win.view.mapFromScene(item.sceneBoundingRect().center())
    corner = win.view.mapFromScene(item.sceneBoundingRect().topLeft()) - QPoint(30, 30)
    assert image.pixelColor(centre) != image.pixelColor(corner)


def test_rubber_band_select_then_group_into_a_new_composite(qtbot, win):
    win.open_template("lenet5")
    g = win.doc.graph
    ids = ["c3", "c3_act", "s4"]
    rect = win.scene.blocks[ids[0]].sceneBoundingRect()
    for b in ids[1:]:
        rect = rect.united(win.scene.blocks[b].sceneBoundingRect())
    win.view.centerOn(rect.center())
    settle(qtbot, win)
    vp = win.view.viewport()
    a = vp_point(win, rect.topLeft() + QPointF(-60, -8))
    b = vp_point(win, rect.bottomRight() + QPointF(60, 8))
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, a)
    for i in range(1, 9):
        QTest.mouseMove(vp, a + (b - a) * (i / 8))
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, b)
    assert sorted(win.scene.selected_block_ids()) == sorted(ids)
    before = g.signature()
    macs = win.doc.analysis.inference.macs
    QTest.keySequence(win, "Ctrl+G")
    settle(qtbot, win)
    groups = [x for x in g.ids() if g.block(x).type == "group"]
    assert len(groups) == 1 and all(i not in g for i in ids)
    assert win.doc.analysis.ok and win.doc.analysis.inference.macs == macs
    QTest.keySequence(win, "Ctrl+Z")
    assert g.signature() == before


def test_expanding_an_unwired_composite_explains_why(qtbot, win):
    drop_from_palette(qtbot, win, "inception_a", QPointF(500, 500))
    bid = [b for b in win.doc.graph.ids() if win.doc.graph.block(b).type == "inception_a"][0]
    messages = []
    win.doc.edit_failed.connect(messages.append)
    win.select_block(bid)
    QTest.keySequence(win, "Ctrl+E")
    assert bid in win.doc.graph and messages and "connect" in messages[0] and "Error" not in messages[0]


def test_unexpected_errors_show_a_short_message_and_log_details(qtbot, win, tmp_path, monkeypatch):
    from builder.ui.app import install_error_dialog
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    install_error_dialog()
    seen = []
    shown = when_modal(QMessageBox, lambda box: (seen.append(box.text()), box.accept()))
    try:
        raise ValueError("boom in a slot")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    shown.check()
    assert seen and seen[0].startswith("ValueError: boom in a slot") and "Traceback" not in seen[0]
    log = tmp_path / "config" / "errors.log"
    assert "Traceback" in log.read_text() and "boom in a slot" in log.read_text()


def test_template_gallery_from_the_keyboard(qtbot, win):
    from builder.ui.dialogs import TemplateGallery

    def answer(dlg):
        dlg.select("inception_v3")
        dlg.classes.setValue(10)
        dlg.aux.setChecked(False)
        QTest.keyClick(dlg.list, Qt.Key_Return)
    answered = when_modal(TemplateGallery, answer)
    QTest.keySequence(win, "Ctrl+Shift+N")
    answered.check()
    g = win.doc.graph
    assert g.meta["template"] == "inception_v3" and "AuxLogits" not in g
    assert g.block("fc").params["out_features"] == 10
    win.doc.refresh()
    assert win.doc.analysis.ok and win.doc.analysis.blocks["fc"].out_shape == (10,)


def test_help_lists_the_shortcuts(qtbot, win):
    text = win.shortcuts_text()
    for action in ("Undo", "Save", "Expand composite", "Group selection into a new composite block", "Auto layout"):
        assert action in text
    assert "Ctrl+G" in text and "Ctrl+E" in text


def test_a_refused_rename_keeps_the_block_selected_and_says_why(qtbot, win):
    """Typing an id torch modules use ('train') is refused with the reason and a free name; nothing changes and
    the inspector stays on the block (the refused rename once removed and re-added it, losing the selection)."""
    win.open_template("lenet5")
    win.select_block("c1")
    before = win.doc.graph.signature()
    ed = win.inspector.editors["__id__"]
    ed.setFocus()
    ed.selectAll()
    QTest.keyClicks(ed, "train")
    QTest.keyClick(ed, Qt.Key_Return)
    assert win.doc.graph.signature() == before and win.doc.undo_stack.count() == 0
    assert win.inspector.block_id == "c1" and win.inspector.editors["__id__"].text() == "c1"
    assert "torch module's own attribute" in win.inspector.message.text() and "'train_'" in win.inspector.message.text()


def test_an_output_switched_to_aux_in_the_inspector_takes_the_papers_loss_weight_and_the_status_follows(
        qtbot, make_window):
    """Issue 22: choosing aux for an Output with the keyboard gives it GoogLeNet's 0.3 loss weight, shown on the
    block and in the inspector; the status bar's error count follows at once (no main output is an error), and
    switching back restores 1.0 and the count."""
    win = make_window(template="lenet5")
    win.select_block("output")
    qtbot.waitUntil(lambda: win.inspector.block_id == "output", timeout=5000)
    assert "✓ no errors" in win.problems.text()
    role = win.inspector.editors["role"][1]
    role.setFocus()
    qtbot.keyClick(role, Qt.Key_Down)  # main -> aux
    settle(qtbot, win)
    blk = win.doc.graph.block("output")
    assert blk.params == {"role": "aux", "loss_weight": 0.3}
    assert win.scene.blocks["output"].summary == "aux x0.3"  # what the block shows
    assert float(win.inspector.editors["loss_weight"][1].value()) == pytest.approx(0.3)
    qtbot.waitUntil(lambda: "1 error" in win.problems.text(), timeout=5000)
    assert "main" in win.problems.toolTip()
    qtbot.keyClick(role, Qt.Key_Up)  # back to main
    settle(qtbot, win)
    assert win.doc.graph.block("output").params == {"role": "main", "loss_weight": 1.0}
    qtbot.waitUntil(lambda: "✓ no errors" in win.problems.text(), timeout=5000)
    assert win.doc.undo_stack.count() == 1  # two changes of one parameter in a row: one undo step


def _visible(win, bid) -> bool:
    shown = win.view.mapToScene(win.view.viewport().rect()).boundingRect()
    return shown.intersects(win.scene.blocks[bid].sceneBoundingRect())


def test_selection_follows_delete_undo_redo_and_expand(qtbot, make_window):
    """Issue 22: Delete selects the nearest block left (what read the deleted one); Ctrl+Z selects what came
    back, Ctrl+Shift+Z the neighbour again; Ctrl+E selects the expanded blocks; an inspector edit keeps the block
    selected. Real key presses on the canvas, in a window that is not scrolled anywhere else."""
    win = make_window(template="lenet5")
    win.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    win.select_block("c3")
    QTest.keyClick(win.view, Qt.Key_Delete)
    settle(qtbot, win)
    assert "c3" not in win.doc.graph and win.scene.selected_block_ids() == ["c3_act"]
    assert win.inspector.block_id == "c3_act"
    QTest.keySequence(win, "Ctrl+Z")
    settle(qtbot, win)
    assert win.scene.selected_block_ids() == ["c3"] and _visible(win, "c3")
    QTest.keySequence(win, "Ctrl+Shift+Z")
    settle(qtbot, win)
    assert win.scene.selected_block_ids() == ["c3_act"]
    QTest.keySequence(win, "Ctrl+Z")
    settle(qtbot, win)
    win.inspector._apply("out_channels", 20)  # as the spin box does on Enter
    settle(qtbot, win)
    assert win.scene.selected_block_ids() == ["c3"] and win.inspector.block_id == "c3"

    g = make_window(template="googlenet")
    g.activateWindow()
    qtbot.waitUntil(g.isActiveWindow, timeout=5000)
    g.select_block("inception4a")
    QTest.keySequence(g, "Ctrl+E")
    settle(qtbot, g)
    inner = [b for b in g.doc.graph.ids() if b.startswith("inception4a.")]
    assert len(inner) == 8 and sorted(g.scene.selected_block_ids()) == sorted(inner)
    assert all(_visible(g, b) for b in inner[:1])
    g.select_block(inner[3])
    QTest.keySequence(g, "Ctrl+Shift+E")  # collapse: the composite again, selected and in view
    settle(qtbot, g)
    assert g.scene.selected_block_ids() == ["inception4a"] and _visible(g, "inception4a")
    g.select_block("conv3")
    QTest.keySequence(g, "Ctrl+D")  # duplicate: the copy selected
    settle(qtbot, g)
    (copy,) = g.scene.selected_block_ids()
    assert copy != "conv3" and g.doc.graph.block(copy).type == g.doc.graph.block("conv3").type


def test_context_menus_on_a_block_a_wire_the_canvas_a_layers_row_and_a_run(qtbot, make_window):
    """Issue 22: right click (and the Menu key) gives the actions that apply there, with their shortcuts; an item
    clicked does what the menu bar's does."""
    win = make_window(template="googlenet")
    item = win.scene.blocks["inception3a"]
    vp = win.view.viewport()
    _context(vp, vp_point(win, item.sceneBoundingRect().center()))
    menu = win.menus.last
    texts = _texts(menu)
    assert "Expand composite\tCtrl+E" in texts and "Delete\tDel" in texts and "Duplicate\tCtrl+D" in texts
    assert "Find in the Layers table" in texts and "Show its receptive field" in texts
    assert win.scene.selected_block_ids() == ["inception3a"]
    _click_item(qtbot, menu, "Expand composite")
    settle(qtbot, win)
    assert "inception3a" not in win.doc.graph and "inception3a.branch1" in win.doc.graph

    inner = win.scene.blocks["inception3a.branch1"]
    _context(vp, vp_point(win, inner.sceneBoundingRect().center()))
    assert [a.isEnabled() for a in win.menus.last.actions() if a.text().startswith("&Collapse")] == [True]
    win.menus.last.close()

    win.select_block("conv3")  # the Menu key: the menu of the selected block
    _context(vp, QPoint(5, 5), keyboard=True)
    assert win.menus.last.title() == "conv3"
    _click_item(qtbot, win.menus.last, "Show its receptive field")
    assert "conv3: receptive field" in win.messages.history[-1]

    empty = vp_point(win, QPointF(-3000, -3000))
    _context(vp, empty)
    assert _texts(win.menus.last)[:2] == ["Paste\tCtrl+V", "Select all\tCtrl+A"]
    _click_item(qtbot, win.menus.last, "Select all")
    assert len(win.scene.selected_block_ids()) == len(win.doc.graph)

    wire = next(w for w in win.scene.items() if type(w).__name__ == "WireItem" and w.dst == "maxpool2")
    _context(vp, vp_point(win, wire.path().pointAtPercent(0.5)))
    texts = _texts(win.menus.last)
    assert texts[0] == "Delete this wire\tDel" and any(t.startswith("Go to") for t in texts)
    _click_item(qtbot, win.menus.last, "Delete this wire")
    settle(qtbot, win)
    assert ("conv3", "maxpool2") not in {(u, v) for u, v, _ in win.doc.graph.edges()}

    win.layers_dock.show()
    win.layers_dock.raise_()
    qtbot.waitUntil(lambda: win.layers.model.rowCount() > 3, timeout=5000)
    row = next(r for r in range(win.layers.model.rowCount()) if win.layers.block_at_row(r) == "conv1")
    rect = win.layers.view.visualRect(win.layers.proxy.index(row, 0))
    _context(win.layers.view.viewport(), rect.center())
    assert _texts(win.menus.last)[0] == "Go to conv1 on the canvas"
    _click_item(qtbot, win.menus.last, "Go to conv1")
    assert win.scene.selected_block_ids() == ["conv1"]


def test_the_inspector_fits_its_dock_and_says_what_zero_means(qtbot, win):
    """Issue 22's polish: every field within the dock's width (no sideways scrolling), an in_channels of 0 reads
    "from the input", and a value typed out of range names its parameter once."""
    win.resize(1366, 768)
    win.open_template("lenet5")
    win.select_block("c1")
    settle(qtbot, win)
    insp = win.inspector
    dock = insp.parentWidget()
    win.resizeDocks([dock], [300], Qt.Horizontal)  # narrower than its fields would like
    qtbot.waitUntil(lambda: dock.width() <= 310, timeout=5000)

    def past_the_edge():  # the fields whose right edge is beyond the dock's (once its layout has run)
        right = insp.viewport().width()
        fields = {n: (e if n.startswith("__") else e[1]) for n, e in insp.editors.items()}
        return [(n, w.mapTo(insp.viewport(), QPoint(w.width(), 0)).x(), right) for n, w in fields.items()
                if w.mapTo(insp.viewport(), QPoint(w.width(), 0)).x() > right]
    qtbot.waitUntil(lambda: not past_the_edge(), timeout=5000)
    assert insp.body.width() <= insp.viewport().width() and not past_the_edge()
    # and nothing in it is squeezed below what it needs: the whole form can be laid out at the dock's width
    assert insp.body.minimumSizeHint().width() <= insp.viewport().width()
    in_ch = insp.editors["in_channels"][1]
    assert in_ch.value() == 0 and in_ch.text() == "from the input"
    spin = insp.editors["out_channels"][1]
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "0")
    assert insp.message.text() == "out channels: 0 is below the minimum 1"
    QTest.keyClick(spin, Qt.Key_Escape)


def test_a_block_dropped_near_the_canvas_edge_leaves_the_view_where_it_was(qtbot, win):
    """Issue 22: the view panned after a drop (the new block was 'brought into view' with margins, and the scene
    grew around it and Qt re-centred a scene narrower than the view)."""
    win.resize(1366, 768)
    win.open_template("googlenet")
    settle(qtbot, win)
    vp = win.view.viewport()
    for fx, fy in ((0.5, 0.5), (0.9, 0.9), (0.08, 0.95), (0.95, 0.08)):
        before = win.view.mapToScene(vp.rect()).boundingRect()
        spot = win.view.mapToScene(QPoint(int(vp.width() * fx), int(vp.height() * fy)))
        n = len(win.doc.graph)
        drop_from_palette(qtbot, win, "relu", spot)
        assert len(win.doc.graph) == n + 1
        qtbot.waitUntil(lambda: not win.scene._grow.isActive(), timeout=5000)  # the scene has grown around it
        after = win.view.mapToScene(vp.rect()).boundingRect()
        assert (after.left(), after.top()) == (before.left(), before.top()), (fx, fy)
        new = next(iter(win.scene.selected_block_ids()))
        assert after.contains(win.scene.blocks[new].sceneBoundingRect().center())  # where it was dropped


def test_profile_up_to_here_times_only_what_computes_the_block(qtbot, make_window):
    """Issue 22's block menu: "Profile up to here" times the blocks that compute the block's output (the network
    as far as it) and colours them; the blocks after it stay uncoloured."""
    win = make_window(template="lenet5")
    item = win.scene.blocks["c3"]
    vp = win.view.viewport()
    _context(vp, vp_point(win, item.sceneBoundingRect().center()))
    with qtbot.waitSignal(win.profiled, timeout=120_000) as got:
        _click_item(qtbot, win.menus.last, "Profile up to here")
    result = got.args[0]
    timed = [r["id"] for r in result["rows"]]
    assert [t for t in timed if t in win.doc.graph] == ["input", "c1", "c1_act", "s2", "c3"]  # in run order
    assert set(timed) <= {"input", "c1", "c1_act", "s2", "c3", "probe_output"}
    assert all(r["ms"] >= 0 for r in result["rows"]) and result["total_ms"] > 0
    assert win.scene.blocks["c3"].heat is not None and win.scene.blocks["f6"].heat in (None, 0.0)
    assert win.messages.history[-1].startswith("Up to c3: ")
