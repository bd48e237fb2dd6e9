"""The compare view, driven as a user would: File > Compare with... (its shortcut), the canvas's context menu, the
saved file, the History panel and the Advisor's before/after; the table linked to both canvases."""
from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

import templates
from builder.core import project
from builder.ui.advisor_panel import ROLE
from helpers import answer_paths, click_menu_item, context_menu, menu_texts


def settle(qtbot, win):
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)


def press_delete_on(qtbot, win, bid):
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    win.select_block(bid)
    win.view.setFocus()
    QTest.keyClick(win.view, Qt.Key_Delete)
    settle(qtbot, win)
    assert bid not in win.doc.graph


def click_row(qtbot, table, row):
    rect = table.visualItemRect(table.item(row, 1))
    QTest.mouseClick(table.viewport(), Qt.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: table.currentRow() == row, timeout=5000)


def marks(pane):
    return {bid: item.mark for bid, item in pane.scene.blocks.items()}


def test_compare_with_a_file_colours_both_networks_and_links_the_table(qtbot, make_window, tmp_path, monkeypatch):
    win = make_window(template="resnet18", size=(1400, 900))
    other = tmp_path / "r34.json"
    project.save(templates.build("resnet34"), other)
    asked = answer_paths(monkeypatch, win, other)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    QTest.keySequence(win, "Ctrl+Alt+C")  # File > Compare with...
    qtbot.waitUntil(lambda: bool(win.comparing.windows), timeout=10000)
    assert asked == [("Compare with", False)]
    cv = win.comparing.windows[-1]
    qtbot.waitExposed(cv)
    assert cv.result.summary() == "8 added, 0 removed, 0 changed"
    right = marks(cv.right)
    assert [b for b, m in right.items() if m == "added"] == ["layer1.2", "layer2.2", "layer2.3", "layer3.2",
                                                              "layer3.3", "layer3.4", "layer3.5", "layer4.2"]
    assert right["layer1.1"] == "same" and cv.right.scene.blocks["layer1.1"].opacity() < 0.5
    assert set(marks(cv.left).values()) == {"same"}
    assert cv.right.scene.blocks["layer3.4"].body_colour().name() == "#c8e6c9"  # green
    assert "params +10,108,160" in cv.summary.text() and "MACs +1,849,688,064" in cv.summary.text()
    assert "8 added" in cv.statusBar().currentMessage()
    # a row of the table: both views go to its block
    assert cv.table.rowCount() == 8 and cv.table.item(6, 2).text() == "layer3.5"
    click_row(qtbot, cv.table, 6)
    assert cv.right.scene.selected_block_ids() == ["layer3.5"]
    item = cv.right.scene.blocks["layer3.5"]
    assert cv.right.view.viewport().rect().contains(cv.right.view.mapFromScene(item.sceneBoundingRect().center()))
    # the views scroll together
    bar, other = cv.right.view.verticalScrollBar(), cv.left.view.verticalScrollBar()
    bar.setValue(0)
    assert other.value() == 0 and bar.maximum() > 0
    cv.right.view.setFocus()
    QTest.keyClick(cv.right.view, Qt.Key_PageDown)
    qtbot.waitUntil(lambda: bar.value() > 0, timeout=5000)
    assert other.value() == min(bar.value(), other.maximum())
    # the layers of the two lowered networks, from the same view
    cv.level.setCurrentIndex(1)
    assert cv.result.level == "layers" and cv.table.rowCount() == 56
    assert marks(cv.right)["layer1.2"] == "added"


def test_the_canvas_context_menu_compares_with_a_template_and_a_changed_block_is_amber(qtbot, make_window,
                                                                                          monkeypatch, tmp_path):
    win = make_window(template="vgg11", size=(1300, 850))
    item = win.scene.blocks["features.0"]
    win.select_block("features.0")
    win.inspector.parentWidget().show()
    # widen the first convolution through the inspector, as a user would
    field = win.inspector.editors["out_channels"][1].lineEdit()
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, "32")
    QTest.keyClick(field, Qt.Key_Return)
    settle(qtbot, win)
    assert win.doc.graph.block("features.0").params["out_channels"] == 32
    path = tmp_path / "vgg11.json"
    project.save(templates.build("vgg11"), path)
    answer_paths(monkeypatch, win, path)
    vp = win.view.viewport()
    context_menu(vp, win.view.mapFromScene(item.sceneBoundingRect().topLeft() + QPointF(-900, -900)))
    menu = win.menus.last
    assert "Compare with…\tCtrl+Alt+C" in menu_texts(menu)
    click_menu_item(qtbot, menu, "Compare with…")
    qtbot.waitUntil(lambda: bool(win.comparing.windows), timeout=10000)
    cv = win.comparing.windows[-1]
    assert cv.result.summary() == "0 added, 0 removed, 4 changed"
    m = marks(cv.right)
    assert m["features.0"] == "changed" and m["features.4"] == "same"
    assert cv.right.scene.blocks["features.0"].body_colour().name() == "#ffe0b2"  # amber
    assert cv.table.item(0, 4).text().startswith("out_channels 32 -> 64; output 32x224x224 -> 64x224x224")


def test_compare_with_the_saved_file_shows_what_changed_since(qtbot, make_window, tmp_path):
    win = make_window(template="lenet5", size=(1200, 800))
    path = tmp_path / "lenet.json"
    assert win._save_to(path)
    press_delete_on(qtbot, win, "f6")
    context_menu(win.view.viewport(), win.view.mapFromScene(QPointF(-2000, -2000)))
    click_menu_item(qtbot, win.menus.last, "Compare with saved file")
    qtbot.waitUntil(lambda: bool(win.comparing.windows), timeout=10000)
    cv = win.comparing.windows[-1]
    assert cv.windowTitle() == "Compare: lenet.json (saved) → now"
    assert [u.id for u in cv.result.removed] == ["f6"] and marks(cv.left)["f6"] == "removed"
    assert cv.left.scene.blocks["f6"].body_colour().name() == "#ffcdd2"  # red
    assert win.doc.graph.block("output")  # the open network is untouched by the comparison


def test_the_history_compares_a_step_with_now_without_going_back(qtbot, make_window):
    win = make_window(template="lenet5", size=(1200, 800))
    for bid in ("f6", "c5"):
        press_delete_on(qtbot, win, bid)
    win.select_block("s4")
    win.history_dock.show()
    win.history_dock.raise_()
    panel = win.history
    qtbot.waitUntil(lambda: panel.list.count() == 3, timeout=5000)
    assert [panel.list.item(i).text() for i in range(3)] == ["(as opened)", "1. Delete 1 item",
                                                             "2. Delete 1 item  ← now"]
    rect = panel.list.visualItemRect(panel.list.item(0))
    QTest.mouseClick(panel.list.viewport(), Qt.LeftButton, pos=rect.center())
    assert panel.compare_button.isEnabled()
    QTest.mouseClick(panel.compare_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(win.comparing.windows), timeout=10000)
    cv = win.comparing.windows[-1]
    assert [u.id for u in cv.result.removed] == ["c5", "f6"]
    # the window is where it was: nothing undone, the selection kept
    assert win.doc.undo_stack.index() == 2 and "f6" not in win.doc.graph and "c5" not in win.doc.graph
    assert win.scene.selected_block_ids() == ["s4"]


def test_the_advisor_shows_a_refactor_before_and_after(qtbot, make_window):
    win = make_window(template="lenet5", size=(1300, 850))
    win.advisor_dock.show()
    win.advisor_dock.raise_()
    panel = win.advisor
    panel.refresh()
    tree = panel.tree
    target = None
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        for j in range(top.childCount()):
            child = top.child(j)
            _, ref = child.data(0, ROLE)
            if (ref.code, ref.block) == ("factorize_nxn", "c3"):
                target = child
    assert target is not None
    top = target.parent()
    top.setExpanded(True)
    tree.scrollToItem(target)
    QTest.mouseClick(tree.viewport(), Qt.LeftButton, pos=tree.visualItemRect(target).center())
    qtbot.waitUntil(lambda: panel.compare_button.isEnabled(), timeout=5000)
    assert "<b>Blocks</b>: + c3_5x1, ~ c3" in panel.detail.text()  # the preview's diff, in one line
    QTest.mouseClick(panel.compare_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(win.comparing.windows), timeout=10000)
    cv = win.comparing.windows[-1]
    p = panel.current_preview
    assert cv.result.totals()["inference"]["macs"] == p.after_macs - p.before_macs < 0
    assert [c.a for c in cv.result.changed][:1] == ["c3"] and cv.result.added
    assert win.doc.graph.block("c3").params["kernel"] == [5, 5]  # previewed, not applied


def test_a_runs_network_is_compared_from_its_context_menu(qtbot, make_window, tmp_path):
    from builder.runs import RunRecorder
    win = make_window(template="lenet5", size=(1300, 850))
    trained = templates.build("lenet5")
    trained.set_params("c1", {"out_channels": 8})
    RunRecorder(tmp_path / "runs" / "r1", trained, {"recipe": "lenet_sgd"}, {}).write()
    win.runs_dock.show()
    win.runs_dock.raise_()
    win.runs.set_folder(tmp_path / "runs")
    qtbot.waitUntil(lambda: win.runs.list.count() == 1, timeout=5000)
    rect = win.runs.list.visualItemRect(win.runs.list.item(0))
    context_menu(win.runs.list.viewport(), rect.center())
    click_menu_item(qtbot, win.menus.last, "Compare its network with the open one")
    qtbot.waitUntil(lambda: bool(win.comparing.windows), timeout=10000)
    cv = win.comparing.windows[-1]
    assert cv.windowTitle() == "Compare: run r1 → LeNet-5"
    assert cv.result.changed[0].params == {"out_channels": (8, 6)}


def test_a_block_is_exported_as_code_from_its_context_menu(qtbot, make_window, tmp_path, monkeypatch):
    """Issue 22: the block's menu writes it as a network of its own; the code builds its class, with the block's
    parameters and output shape."""
    import importlib.util

    import torch
    win = make_window(template="googlenet", size=(1300, 850))
    item = win.scene.blocks["inception3a"]
    answer_paths(monkeypatch, win, tmp_path / "inception3a.py")
    context_menu(win.view.viewport(), win.view.mapFromScene(item.sceneBoundingRect().center()))
    click_menu_item(qtbot, win.menus.last, "Export this block as PyTorch code")
    qtbot.waitUntil(lambda: (tmp_path / "inception3a.py").exists(), timeout=10000)
    spec = importlib.util.spec_from_file_location("block_code", tmp_path / "inception3a.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build_model().eval()
    rep = win.doc.analysis.blocks["inception3a"]
    assert sum(p.numel() for p in net.parameters()) == rep.params == 155_872
    with torch.no_grad():
        assert tuple(net(torch.rand(1, *rep.in_shapes[0])).shape) == (1, *rep.out_shape) == (1, 256, 28, 28)
    assert "class Inception(nn.Module):" in (tmp_path / "inception3a.py").read_text()
    # a block with two inputs cannot stand alone: the item is there, disabled
    win.doc.push("a merge", lambda g: (g.add_block("concat", {}, "merge", pos=(-900.0, 0.0)),
                                       g.connect("maxpool1", "merge"), g.connect("conv2", "merge")))
    settle(qtbot, win)
    box = win.scene.blocks["merge"].sceneBoundingRect().center()
    win.view.centerOn(box)
    context_menu(win.view.viewport(), win.view.mapFromScene(box))
    assert win.menus.last.title() == "merge"
    [a] = [a for a in win.menus.last.actions() if a.text().startswith("Export this block")]
    assert not a.isEnabled()


def test_a_file_that_does_not_load_is_one_message_and_no_compare_window(qtbot, make_window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QApplication, QMessageBox

    from helpers import when_modal
    win = make_window(template="lenet5")
    bad = tmp_path / "broken.json"
    bad.write_text('{"format": ', encoding="utf-8")
    answer_paths(monkeypatch, win, bad)
    seen = []
    shown = when_modal(QMessageBox, lambda box: (seen.append((box.windowTitle(), box.text())), box.accept()))
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    QTest.keySequence(win, "Ctrl+Alt+C")  # File > Compare with...
    shown.check()
    assert seen[0][0] == "Cannot compare" and f"{bad}: not valid JSON" in seen[0][1]
    assert win.comparing.windows == [] and QApplication.overrideCursor() is None
