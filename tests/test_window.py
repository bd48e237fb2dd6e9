"""A window a newcomer can read (issue 14): names at every zoom, find, table and canvas linked, wheel conventions,
arrow keys, messages with paths, undo from the inspector, no stale items, and a 1366x768 screen. Real input
events throughout (qtbot key presses and clicks, QWheelEvent sent to the viewport)."""
import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QWheelEvent
from PySide6.QtWidgets import QApplication

import templates
from builder.insight import advisor
from builder.ui.canvas import BlockItem, WireItem
from builder.ui.main_window import MainWindow
from helpers import answer_paths

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def win(make_window):
    return make_window(size=(1366, 768))


def _settle(qtbot, win):
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)


def _visible(win, bid) -> bool:
    shown = win.view.mapToScene(win.view.viewport().rect()).boundingRect()
    return shown.contains(win.scene.blocks[bid].sceneBoundingRect())


def _render_at_view_zoom(win):
    """Paint the whole scene at the zoom the view has (each item sees that level of detail)."""
    z = win.view.transform().m11()
    src = win.scene.itemsBoundingRect()
    img = QImage(int(src.width() * z) + 2, int(src.height() * z) + 2, QImage.Format_ARGB32)
    img.fill(0)
    p = QPainter(img)
    win.scene.render(p, QRectF(0, 0, src.width() * z, src.height() * z), src)
    p.end()
    return img


def test_at_fit_view_every_inception_v3_block_name_is_painted_legibly(qtbot, win):
    win.load_graph(templates.build("inception_v3"))
    _settle(qtbot, win)
    win.view.fit()
    z = win.view.transform().m11()
    assert 0.3 <= z <= 1.0  # not the 22% of coloured bars
    for item in win.scene.blocks.values():
        item.painted_title = None
    _render_at_view_zoom(win)
    for bid, item in win.scene.blocks.items():
        assert item.painted_title is not None, bid
        text, pixels = item.painted_title
        assert text == item.title and pixels >= 7.0, (bid, item.painted_title)
    # the network's width fits and its top is in view
    shown = win.view.mapToScene(win.view.viewport().rect()).boundingRect()
    net = win.scene.itemsBoundingRect()
    assert shown.left() <= net.left() and shown.right() >= net.right() and shown.top() <= net.top() + 1


def test_ctrl_f_finds_inception4d_and_scrolls_it_into_view(qtbot, win):
    win.load_graph(templates.build("googlenet"))
    _settle(qtbot, win)
    win.view.setFocus()
    assert not _visible(win, "inception4d")
    qtbot.keyClick(win.view, Qt.Key_F, Qt.ControlModifier)
    assert win.find_bar.isVisible() and win.find_bar.edit.hasFocus()
    qtbot.keyClicks(win.find_bar.edit, "inception4d")
    assert win.scene.selected_block_ids() == ["inception4d"] and _visible(win, "inception4d")
    assert win.find_bar.count.text() == "1 of 1"
    win.find_bar.edit.clear()
    qtbot.keyClicks(win.find_bar.edit, "inception v1")  # a kind: every Inception module, in reading order
    assert win.find_bar.count.text() == "1 of 9" and win.scene.selected_block_ids() == ["inception3a"]
    qtbot.keyClick(win.find_bar.edit, Qt.Key_Return)
    assert win.scene.selected_block_ids() == ["inception3b"]
    qtbot.keyClick(win.find_bar.edit, Qt.Key_Return, Qt.ShiftModifier)
    assert win.scene.selected_block_ids() == ["inception3a"]
    qtbot.keyClick(win.find_bar.edit, Qt.Key_Escape)
    assert not win.find_bar.isVisible()


def test_table_rows_and_canvas_selection_are_linked_both_ways(qtbot, win):
    win.load_graph(templates.build("googlenet"))
    _settle(qtbot, win)
    win.layers_dock.raise_()
    table = win.layers.view
    qtbot.waitUntil(lambda: win.layers.proxy.rowCount() == len(win.doc.graph), timeout=5000)
    row = next(r for r in range(win.layers.proxy.rowCount())
               if win.layers.proxy.index(r, 0).data().strip() == "inception5a")
    index = win.layers.proxy.index(row, 1)
    table.scrollTo(index)
    qtbot.mouseClick(table.viewport(), Qt.LeftButton, pos=table.visualRect(index).center())
    assert win.scene.selected_block_ids() == ["inception5a"] and _visible(win, "inception5a")
    # and back: click a block on the canvas, its row is selected
    item = win.scene.blocks["inception4a"]
    win.view.centerOn(item)
    at = win.view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseClick(win.view.viewport(), Qt.LeftButton, pos=at)
    assert win.scene.selected_block_ids() == ["inception4a"]
    assert table.currentIndex().siblingAtColumn(0).data().strip() == "inception4a"


def _wheel(win, dy, modifiers=Qt.NoModifier):
    vp = win.view.viewport()
    pos = QPointF(vp.width() / 2, vp.height() / 2)
    ev = QWheelEvent(pos, vp.mapToGlobal(pos), QPoint(0, 0), QPoint(0, dy), Qt.NoButton, modifiers,
                     Qt.NoScrollPhase, False)
    QApplication.sendEvent(vp, ev)


def test_the_wheel_scrolls_and_ctrl_wheel_zooms(qtbot, win):
    win.load_graph(templates.build("googlenet"))
    _settle(qtbot, win)
    bar = win.view.verticalScrollBar()
    z0, v0 = win.view.transform().m11(), bar.value()
    _wheel(win, -120)
    assert bar.value() > v0 and win.view.transform().m11() == z0  # scrolled down, same zoom
    _wheel(win, 120, Qt.ControlModifier)
    assert win.view.transform().m11() == pytest.approx(z0 * 1.15)
    _wheel(win, -240, Qt.ControlModifier)
    assert win.view.transform().m11() == pytest.approx(z0 / 1.15)
    h = win.view.horizontalScrollBar()
    win.view.zoom(10.0)  # (capped at 400%): wider than the view
    assert h.maximum() > h.minimum()
    h.setValue(h.minimum())
    h0 = h.value()
    _wheel(win, -120, Qt.ShiftModifier)
    assert h.value() > h0  # Shift+wheel: sideways
    # a touchpad's pinch (a native zoom gesture) zooms too
    from PySide6.QtGui import QNativeGestureEvent, QPointingDevice
    z1 = win.view.transform().m11()
    vp = win.view.viewport()
    at = QPointF(vp.width() / 2, vp.height() / 2)
    pinch = QNativeGestureEvent(Qt.ZoomNativeGesture, QPointingDevice.primaryPointingDevice(), 2, at, at,
                                vp.mapToGlobal(at), -0.2, QPointF(0, 0))
    QApplication.sendEvent(vp, pinch)
    assert win.view.transform().m11() == pytest.approx(z1 * 0.8)


def test_arrow_keys_move_the_selection_along_wires(qtbot, win):
    win.load_graph(templates.build("googlenet"))
    _settle(qtbot, win)
    win.select_block("conv1")
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key_Down)
    assert win.scene.selected_block_ids() == ["maxpool1"]
    qtbot.keyClick(win.view, Qt.Key_Up)
    assert win.scene.selected_block_ids() == ["conv1"]
    win.select_block("aux1")  # beside the main column, on its right
    qtbot.keyClick(win.view, Qt.Key_Left)
    assert win.scene.selected_block_ids() == ["inception4b"]


def test_undoing_a_refactor_leaves_no_item_of_its_blocks(qtbot, win):
    win.load_graph(templates.build("googlenet"))
    _settle(qtbot, win)
    before = set(win.doc.graph.ids())
    ref = next(r for r in advisor.refactors(advisor.check(win.doc.graph, win.doc.analysis))
               if r.code == "factorize_3x3")
    assert win.doc.push(ref.title, lambda g: advisor.apply(g, ref))
    _settle(qtbot, win)
    added = set(win.doc.graph.ids()) - before
    assert added
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key_Z, Qt.ControlModifier)
    _settle(qtbot, win)
    assert set(win.doc.graph.ids()) == before
    in_scene = [it for it in win.scene.items() if isinstance(it, (BlockItem, WireItem))]
    assert not [it for it in in_scene if isinstance(it, BlockItem) and it.block_id in added]
    assert not [it for it in in_scene if isinstance(it, WireItem) and (it.src in added or it.dst in added)]
    assert len([it for it in in_scene if isinstance(it, BlockItem)]) == len(before)
    assert all(it.scene() is win.scene for it in in_scene)


def _c1_channels(qtbot, win):
    """LeNet-5 open, c1 selected, the focus in its out_channels field with the text selected."""
    win.open_template("lenet5")
    _settle(qtbot, win)
    win.select_block("c1")
    spin = win.inspector.editors["out_channels"][1]
    spin.setFocus()
    spin.lineEdit().selectAll()
    return spin


def test_ctrl_z_with_focus_in_the_inspector_undoes_the_edit(qtbot, win):
    spin = _c1_channels(qtbot, win)
    qtbot.keyClicks(spin.lineEdit(), "12")
    qtbot.keyClick(spin.lineEdit(), Qt.Key_Return)
    _settle(qtbot, win)
    assert win.doc.graph.block("c1").params["out_channels"] == 12
    assert QApplication.focusWidget() in (spin, spin.lineEdit())  # the focus stays in the inspector
    qtbot.keyClick(spin.lineEdit(), Qt.Key_Z, Qt.ControlModifier)
    _settle(qtbot, win)
    assert win.doc.graph.block("c1").params["out_channels"] == 6
    assert spin.value() == 6
    qtbot.keyClick(spin.lineEdit(), Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    _settle(qtbot, win)
    assert win.doc.graph.block("c1").params["out_channels"] == 12


def test_the_inspector_checks_a_value_as_it_is_typed(qtbot, win):
    spin = _c1_channels(qtbot, win)
    qtbot.keyClick(spin.lineEdit(), Qt.Key_Backspace)
    assert "type a value" in win.inspector.message.text()  # said at once, nothing applied
    assert win.doc.graph.block("c1").params["out_channels"] == 6
    qtbot.keyClicks(spin.lineEdit(), "8")
    assert win.inspector.message.text() == ""
    qtbot.keyClicks(spin.lineEdit(), "x")  # the spin box's validator refuses letters: still fine
    assert win.inspector.message.text() == "" and spin.lineEdit().text() == "8"


def test_save_and_export_say_so_with_the_path(qtbot, win, tmp_path, monkeypatch):
    win.new_file()
    win.add_block("conv2d")
    _settle(qtbot, win)
    target = tmp_path / "my_net.json"
    answer_paths(monkeypatch, win, target)
    qtbot.keyClick(win.view, Qt.Key_S, Qt.ControlModifier)
    assert target.exists()
    assert win.messages.isVisible() and str(target) in win.messages.text.text()
    assert win.messages.open_button.isVisible() and win.messages.copy_button.isVisible()
    win.messages.copy_button.click()
    assert QApplication.clipboard().text() == str(target)
    assert win.doc.graph.name == "my_net" and "my_net.json" in win.windowTitle()  # Save As names the project
    win.open_template("lenet5")
    _settle(qtbot, win)
    out = tmp_path / "code" / "net.py"  # a folder that does not exist yet
    answer_paths(monkeypatch, win, out)
    win.export_actions["py"].trigger()
    assert out.exists() and str(out) in win.messages.text.text()
    # the message strip sits over the canvas, clear of the status bar's totals
    strip = win.messages.geometry()
    assert win.centralWidget().rect().contains(strip)


def test_at_1366x768_the_status_bar_start_button_and_totals_are_visible(qtbot, win):
    win.open_template("googlenet")
    _settle(qtbot, win)
    win.train_dock.raise_()
    qtbot.waitUntil(lambda: win.trainer.start_button.isVisible(), timeout=5000)
    frame = win.rect()
    for widget in (win.statusBar(), win.totals, win.trainer.start_button, win.trainer.stop_button,
                   win.trainer.progress):
        assert widget.isVisible() and not widget.visibleRegion().isEmpty(), widget
        top_left = widget.mapTo(win, QPoint(0, 0))
        assert frame.contains(QRectF(top_left, widget.size()).toRect()), widget
    assert "Inference" in win.totals.text() and "Training" in win.totals.text()
    form = win.trainer.form_scroll
    assert form.horizontalScrollBar().maximum() == 0  # the form is never wider than its room


def test_left_to_right_is_one_undo_step_and_turns_the_ports(qtbot, win):
    win.open_template("lenet5")
    _settle(qtbot, win)
    item = win.scene.blocks["c1"]
    assert item.out_port_local().x() == item.shape().boundingRect().width() / 2  # output at the bottom middle
    win.act_left_right.trigger()
    _settle(qtbot, win)
    assert win.doc.graph.direction == "LR" and win.act_left_right.isChecked()
    xs = [win.doc.graph.block(b).pos[0] for b in ("input", "c1", "s2")]
    assert xs == sorted(xs) and len(set(xs)) == 3  # reads left to right
    assert item.out_port_local().x() == item.shape().boundingRect().width()  # output on the right edge
    qtbot.keyClick(win.view, Qt.Key_Z, Qt.ControlModifier)
    _settle(qtbot, win)
    assert win.doc.graph.direction == "TB" and not win.act_left_right.isChecked()


def test_closed_panels_come_back_from_the_view_menu_and_the_layout_is_restored(qtbot, win, tmp_path):
    panels = next(a.menu() for a in win.view_menu.actions() if a.menu() and "Panels" in a.text())
    toggles = {a.text() for a in panels.actions()}
    assert {"Blocks", "Inspector", "Layers", "Advisor", "Training", "Runs", "Feature maps"} <= toggles
    win.advisor_dock.close()
    assert not win.advisor_dock.isVisible()
    win.advisor_dock.toggleViewAction().trigger()
    assert win.advisor_dock.isVisible()
    win.resize(900, 640)
    win.inspector.parentWidget().close()
    win.resizeDocks([win.layers_dock], [300], Qt.Vertical)
    QApplication.processEvents()
    layers_height = win.layers_dock.height()
    win.save_state()
    again = MainWindow()
    try:
        again.show()
        qtbot.waitExposed(again)
        assert again.size().height() == 640 and not again.inspector.parentWidget().isVisible()
        QApplication.processEvents()
        assert abs(again.layers_dock.height() - layers_height) <= 4  # the panels' sizes too
    finally:
        again.doc.undo_stack.setClean()
        again.close()


def test_the_gallery_shows_a_thumbnail_size_and_cost_for_every_template(qtbot):
    import templates as t
    from builder.core.analysis import analyze
    from builder.ui import dialogs
    dlg = dialogs.TemplateGallery()
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitUntil(lambda: not dlg._pending, timeout=30000)  # filled beside the event loop
    assert dlg.list.count() == len(t.TEMPLATES)
    for i in range(dlg.list.count()):
        item = dlg.list.item(i)
        name = item.data(Qt.UserRole)
        image = item.icon().pixmap(dialogs.THUMB).toImage()
        background = dialogs.theme.CANVAS_BACKGROUND.rgb()
        coloured = sum(image.pixel(x, y) != background for x in range(0, image.width(), 3)
                       for y in range(0, image.height(), 3))
        assert coloured > 40, name  # a diagram was drawn, not a blank card
        assert "params" in item.text() and "MACs" in item.text(), name
    dlg.select("googlenet")
    a = analyze(t.build("googlenet"))
    assert f"{a.inference.params:,}" == "6,624,904" and "6,624,904" in dlg.details.text()
    assert "1,498,376,192" in dlg.details.text() and "13,004,888" in dlg.details.text()


def test_the_minimap_shows_while_the_network_is_out_of_view_and_a_click_goes_there(qtbot, win):
    win.load_graph(templates.build("inception_v3"))
    _settle(qtbot, win)
    qtbot.waitUntil(lambda: win.minimap.isVisible(), timeout=5000)  # the network is taller than the view
    mm = win.minimap
    bottom = win.scene.blocks["fc"].sceneBoundingRect().center()
    assert not _visible(win, "fc")
    qtbot.mouseClick(mm.viewport(), Qt.LeftButton, pos=mm.mapFromScene(bottom))
    assert _visible(win, "fc")
    win.open_template("lenet5")
    _settle(qtbot, win)
    win.view.zoom(0.2)
    qtbot.waitUntil(lambda: not win.minimap.isVisible(), timeout=5000)  # all of it in view: no minimap


def test_train_and_validation_curves_differ_and_clear_when_another_network_opens(qtbot, win):
    from builder.train.settings import EpochEvent, StepEvent
    win.open_template("lenet5")
    _settle(qtbot, win)
    win.train_dock.raise_()
    panel = win.trainer
    panel._handle(StepEvent(epoch=1, step=1, total_steps=2, loss=2.3, main_loss=2.3, aux_losses=[], accuracy=0.1,
                            lr=0.1, images_per_s=100.0, eta_s=1.0))
    panel._handle(EpochEvent(epoch=1, step=1, train_loss=2.0, train_accuracy=0.3, val_loss=2.1, val_accuracy=0.25,
                             epoch_s=1.0))
    train_pen, val_pen = panel.train_acc_curve.opts["pen"], panel.val_acc_curve.opts["pen"]
    assert train_pen.color() != val_pen.color() and train_pen.style() != val_pen.style()
    assert panel.train_acc_curve.opts["symbolBrush"] != panel.val_acc_curve.opts["symbolBrush"]
    legend = [label.text for _, label in panel.acc_plot.plotItem.legend.items]
    assert legend == ["training", "validation"]
    assert len(panel.val_acc_curve.getData()[0]) == 1
    win.open_template("googlenet")  # another network: its curves start empty
    _settle(qtbot, win)
    assert panel.val_acc_curve.getData()[0] is None or len(panel.val_acc_curve.getData()[0]) == 0
    assert panel.loss_curve.getData()[0] is None or len(panel.loss_curve.getData()[0]) == 0
    assert panel.status.text() == "Idle"


def _framed(win):
    shown = win.view.mapToScene(win.view.viewport().rect()).boundingRect()
    items = [i.sceneBoundingRect() for i in win.scene.blocks.values()]
    top = min(r.top() for r in items)
    left, right = min(r.left() for r in items), max(r.right() for r in items)
    return shown, items, top, left, right


def test_networks_open_framed_whole_or_from_the_top_with_their_full_width(qtbot, make_window):
    """Issue 22: LeNet-5 opens whole at 1366x768 (its output no longer cut off); a ResNet-18 imported from
    torchvision opens at its top with its full width in view (not scrolled to the middle)."""
    from torchvision.models import resnet18

    from builder.importers import import_module
    win = make_window(size=(1366, 768))
    win.open_template("lenet5")
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)

    def whole():
        shown, items, *_ = _framed(win)
        return all(shown.contains(r) for r in items)
    qtbot.waitUntil(whole, timeout=5000)  # once the deferred re-frame (a 0 ms timer) has run
    shown, items, *_ = _framed(win)
    assert all(shown.contains(r) for r in items), "every LeNet-5 block in view"
    win.load_graph(import_module(resnet18(), name="resnet18").graph, layout=False)
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)

    def from_the_top():
        shown, _, top, left, right = _framed(win)
        return shown.top() <= top + 3 and shown.left() <= left + 3 and shown.right() >= right - 3
    qtbot.waitUntil(from_the_top, timeout=5000)
    shown, items, top, left, right = _framed(win)
    # (within 3 scene px: half a screen pixel of the selection outline at this zoom)
    assert shown.top() <= top + 3 and shown.left() <= left + 3 and shown.right() >= right - 3
    assert win.view.transform().m11() >= 0.3  # names still readable


def test_the_train_panel_says_the_time_left_for_the_epoch_and_the_run(qtbot, win):
    from builder.train.settings import StartEvent, StepEvent
    win.open_template("lenet5")
    panel = win.trainer
    panel._handle(StartEvent(device="cpu", amp="", channels_last=False, world_size=1, dataset="synthetic",
                             train_size=320, val_size=64, batch_size=32, epochs=2, steps_per_epoch=10,
                             total_steps=20, recipe="sgd", settings={}, loss_weights=[1.0], params=61706,
                             trainable_params=61706, weights="", frozen=[]))
    panel._handle(StepEvent(epoch=1, step=5, total_steps=20, loss=2.3, main_loss=2.3, aux_losses=[], accuracy=0.1,
                            lr=0.1, images_per_s=250.0, eta_s=150.0))
    assert panel.speed.text() == "epoch 1 · step 5/20 · 250 images/s · 50s left in the epoch, 2m30s in the run"


def test_the_minimap_keeps_to_the_canvas_corner_when_the_window_is_resized(qtbot, make_window):
    """Issue 22: after a resize the minimap stayed where the old corner was (in the middle of a grown canvas)."""
    win = make_window("googlenet", size=(1366, 768))
    mm, vp = win.minimap, win.view.viewport()

    def at_corner():
        g = vp.geometry()
        return mm.isVisible() and (mm.x() + mm.width(), mm.y() + mm.height()) == (g.right() - 8, g.bottom() - 8)
    qtbot.waitUntil(at_corner, timeout=5000)
    for size in ((1800, 1000), (1500, 900)):
        win.resize(*size)
        qtbot.waitUntil(lambda: vp.width() > 800, timeout=5000)
        assert at_corner()  # placed as the canvas got its new size, not by a later refresh of the map
        assert mm.geometry().right() > vp.width() * 0.75 and mm.geometry().bottom() > vp.height() * 0.6
