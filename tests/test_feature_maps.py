"""Feature maps (issue 15): select LeNet-5's conv c1 on the canvas and the panel shows its 6 maps of 28x28,
computed in a worker while the event loop keeps running."""
import pytest
import torch
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtTest import QTest

from builder.ui.feature_maps import compute_maps
from builder.ui.main_window import MainWindow

pytestmark = pytest.mark.timeout(120)


def test_lenet_c1_shows_six_maps_of_28x28_without_blocking(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path))
    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.undo_stack.setClean())
    win.show()
    qtbot.waitExposed(win)
    win.open_template("lenet5")
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)
    item = win.scene.blocks["c1"]
    win.view.centerOn(item)
    pos = win.view.mapFromScene(item.sceneBoundingRect().center())
    QTest.mouseClick(win.view.viewport(), Qt.LeftButton, Qt.NoModifier, pos)  # select it as a user does
    assert win.scene.selected_block_ids() == ["c1"]
    ticks = []
    clock = QElapsedTimer()
    clock.start()
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(clock.elapsed()))
    timer.start(5)
    with qtbot.waitSignal(win.feature_maps.computed, timeout=60000) as got:
        QTest.mouseClick(win.feature_maps.show_button, Qt.LeftButton)
    timer.stop()
    maps = got.args[0]
    assert maps.shape == (6, 28, 28)
    assert "c1: 6 maps of 28x28" in win.feature_maps.status.text()
    assert len(win.feature_maps.view.ci.items) == 6  # one image per channel
    assert ticks  # the event loop ran while the worker computed
    # the maps are the network's: the same as conv c1 of the compiled LeNet on that image
    torch.testing.assert_close(torch.from_numpy(maps), torch.from_numpy(compute_maps(win.doc.graph, "c1")))


def test_a_block_without_a_map_is_refused_in_the_panel(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path))
    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.undo_stack.setClean())
    win.open_template("lenet5")
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)
    win.feature_maps.select("f6")  # a flat vector
    assert not win.feature_maps.show_selected()
    assert "CxHxW" in win.feature_maps.status.text()
