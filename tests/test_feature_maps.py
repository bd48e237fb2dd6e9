"""Feature maps (issue 15): select LeNet-5's conv c1 on the canvas and the panel shows its 6 maps of 28x28,
computed in a worker while the event loop keeps running."""
import numpy as np
import pytest
import torch
from PySide6.QtCore import QElapsedTimer, QRectF, Qt, QTimer
from PySide6.QtTest import QTest

from builder.train.samples import load_image

pytestmark = pytest.mark.timeout(120)


def test_lenet_c1_shows_six_maps_of_28x28_without_blocking(qtbot, make_window):
    win = make_window("lenet5")
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
    # the maps are the network's: conv c1 of the whole compiled LeNet (the same seed, so the same weights) on
    # the validation image the panel names
    source = win.feature_maps.image_source()
    from builder.train.settings import default_dataset
    assert source == ("dataset", default_dataset(), 0)
    x, _, caption = load_image(source, (1, 32, 32))
    assert caption in win.feature_maps.status.text()
    from builder.backend.compiler import compile_graph
    torch.manual_seed(0)
    net = compile_graph(win.doc.graph).eval()
    with torch.no_grad():
        want = net.c1(x)[0]
    assert tuple(want.shape) == (6, 28, 28)
    torch.testing.assert_close(torch.from_numpy(maps), want)
    # the input, with the 5x5 field of c1's centre unit (14, 14): input rows and columns 14 to 18
    assert win.feature_maps.input_image.image.shape == (32, 32)
    assert win.feature_maps.field_rect.rect() == QRectF(14, 14, 5, 5)
    assert "5x5 px" in win.feature_maps.field_text.text()


def test_an_image_file_dropped_or_opened_is_the_one_shown(qtbot, tmp_path, make_window):
    from PIL import Image
    picture = tmp_path / "stripes.png"
    Image.fromarray((np.indices((40, 40))[1] % 8 < 4).astype(np.uint8) * 255).save(picture)
    win = make_window("lenet5", show=False)
    panel = win.feature_maps
    panel.select("s2")
    panel.set_file(str(picture))
    with qtbot.waitSignal(panel.computed, timeout=60000) as got:
        panel.show_selected()
    assert got.args[0].shape == (6, 14, 14) and "stripes.png" in panel.status.text()
    shown = panel.input_image.image
    assert shown.shape == (32, 32) and shown.max() == 1.0 and shown.min() == 0.0  # the stripes, resized
    assert panel.field_rect.rect() == QRectF(14, 14, 6, 6)  # s2 (2x2 pool after 5x5 conv) at its centre (7, 7)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    panel.set_file(str(tmp_path / "broken.png"))
    assert panel.show_selected()
    qtbot.waitUntil(lambda: "Cannot compute the maps" in panel.status.text(), timeout=30000)
    assert "not an image this can read" in panel.status.text()


def test_a_block_without_a_map_is_refused_in_the_panel(make_window):
    win = make_window("lenet5", show=False)
    win.feature_maps.select("f6")  # a flat vector
    assert not win.feature_maps.show_selected()
    assert "CxHxW" in win.feature_maps.status.text()
