"""The Explain panel and the step-through, driven as a user would: a block clicked on the canvas and the arrow keys
along the wires; the weights of a run, named, and a run whose weights do not fit refused; one image followed
through every block (checked against forward hooks on the compiled module); the Evaluation gallery's wrong images
opening in the Explain panel."""
from __future__ import annotations

import numpy as np
import torch
from captum.attr import LayerGradCam
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

import templates
from builder.backend.compiler import compile_graph
from builder.runs import RunRecorder
from builder.train.samples import sample
from builder.train.weights import save_tensors


def initial(graph):
    torch.manual_seed(0)  # the panel's "initial weights": the compiled network's, seeded
    return compile_graph(graph).eval()


def click_block(qtbot, win, bid):
    item = win.scene.blocks[bid]
    win.view.centerOn(item)
    pos = win.view.mapFromScene(item.sceneBoundingRect().center())
    QTest.mouseClick(win.view.viewport(), Qt.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: win.scene.selected_block_ids() == [bid], timeout=5000)


def explained(qtbot, panel, block=None, index=None):
    qtbot.waitUntil(lambda: panel.explanation is not None and (block is None or panel.explanation.block == block)
                    and not panel.job.running, timeout=60000)
    return panel.explanation


def open_explain(qtbot, win):
    """The Explain dock brought to the front, its widgets laid out (clicks land where they are drawn)."""
    win.explain_dock.show()
    win.explain_dock.raise_()
    qtbot.waitUntil(lambda: win.explain.explain_button.isVisible() and win.explain.follow.isVisible(),
                    timeout=5000)
    return win.explain


def tick(box):
    """Click a check box on its box (its widget may be wider than its text)."""
    QTest.mouseClick(box, Qt.LeftButton, pos=QPoint(8, box.height() // 2))


def make_run(root, name, graph, tensors):
    folder = root / name
    rec = RunRecorder(folder, graph, {"recipe": "sgd"}, {})
    rec.event({"event": "start"})
    save_tensors(tensors, folder / "best.safetensors")
    return folder


def test_gradcam_follows_the_selection_along_the_wires(qtbot, make_window):
    win = make_window(template="lenet5", size=(1500, 950))
    panel = open_explain(qtbot, win)
    click_block(qtbot, win, "c3")
    assert "c3" in panel.block_text.text()
    QTest.mouseClick(panel.explain_button, Qt.LeftButton)
    e = explained(qtbot, panel, "c3")
    model = initial(win.doc.graph)
    x = sample(("dataset", "fashion-mnist", 0), (1, 32, 32)).x
    want = LayerGradCam(model, model.c3).attribute(x, target=e.predicted, relu_attributions=True)[0, 0]
    np.testing.assert_allclose(e.attribution, want.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert "with the initial (untrained) weights" in panel.status.text()
    assert not panel.picture.pixmap().isNull()
    win.view.setFocus()
    QTest.keyClick(win.view, Qt.Key_Down)  # along the wire to the next block: the overlay follows
    qtbot.waitUntil(lambda: win.scene.selected_block_ids() == ["c3_act"], timeout=5000)
    assert explained(qtbot, panel, "c3_act").attribution.shape == (10, 10)


def test_the_weights_of_a_run_are_used_and_named_and_ones_that_do_not_fit_are_refused(qtbot, make_window, tmp_path):
    win = make_window(template="lenet5", size=(1500, 950))
    graph = win.doc.graph
    model = initial(graph)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    make_run(tmp_path / "runs", "2026-12-01-lenet", graph, model.state_dict())
    win.runs.folder.setText(str(tmp_path / "runs"))
    panel = win.explain
    panel.weights.refresh()
    assert panel.weights.box.currentText().startswith("run 2026-12-01-lenet")  # the newest run is the default
    open_explain(qtbot, win)
    panel.method.setCurrentIndex(panel.method.findData("saliency"))
    QTest.mouseClick(panel.explain_button, Qt.LeftButton)
    e = explained(qtbot, panel)
    assert "with the weights of run 2026-12-01-lenet" in panel.status.text()
    x = sample(("dataset", "fashion-mnist", 0), (1, 32, 32)).x
    assert e.predicted == int(model(x).argmax())
    # a run of a network of the same name whose last layer differs: named, nothing computed
    other = templates.build("lenet5", num_classes=5)
    make_run(tmp_path / "runs", "2026-12-02-lenet", other, initial(other).state_dict())
    panel.weights.refresh()
    box = panel.weights.box
    assert box.currentText().startswith("run 2026-12-02-lenet")  # the newest run again (none was picked)
    box.setFocus()
    QTest.keyClick(box, Qt.Key_Down)  # the user picks the older run: kept on refresh
    qtbot.waitUntil(lambda: box.currentText().startswith("run 2026-12-01-lenet"), timeout=5000)
    panel.weights.refresh()
    assert box.currentText().startswith("run 2026-12-01-lenet")
    QTest.keyClick(box, Qt.Key_Up)
    qtbot.waitUntil(lambda: box.currentText().startswith("run 2026-12-02-lenet"), timeout=5000)
    before = panel.explanation
    QTest.mouseClick(panel.explain_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "do not fit" in panel.status.text(), timeout=60000)
    assert "blocks that differ: output_fc" in panel.status.text()
    assert panel.explanation is before


def test_following_an_image_shows_every_blocks_output_as_forward_hooks_see_it(qtbot, make_window):
    win = make_window(template="lenet5", size=(1500, 950))
    panel = open_explain(qtbot, win)
    panel.index.setValue(5)
    tick(panel.follow)
    assert panel.follow.isChecked()
    qtbot.waitUntil(lambda: panel.outputs is not None, timeout=60000)
    model = initial(win.doc.graph)
    seen = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: seen.__setitem__(n, o[0].detach().numpy()))
             for n, m in model.named_children()]
    with torch.no_grad():
        model(sample(("dataset", "fashion-mnist", 5), (1, 32, 32)).x)
    for h in hooks:
        h.remove()
    assert set(panel.outputs) == set(seen)
    for bid, out in seen.items():
        np.testing.assert_allclose(panel.outputs[bid], out, rtol=1e-6, atol=1e-6)
    assert set(win.thumbnails.items) == set(seen)  # a thumbnail beside every block
    pic, text = win.thumbnails.items["c1"]
    assert pic.parentItem() is win.scene.blocks["c1"] and text.text().startswith("6x28x28")
    click_block(qtbot, win, "c3")
    assert "the strongest first" in win.inspector.channels_title.text()
    assert not win.inspector.channels.pixmap().isNull()
    tick(panel.follow)  # unpinned: the thumbnails go
    qtbot.waitUntil(lambda: not win.thumbnails.items, timeout=5000)
    assert win.inspector.channels_title.text() == ""


def test_a_wrong_image_of_the_evaluation_opens_in_the_explain_panel(qtbot, make_window):
    win = make_window(template="lenet5", size=(1500, 950))
    result = {"dataset": "fashion-mnist", "images": 10000, "correct": 1000, "accuracy": 0.1, "top5_accuracy": 0.5,
              "classes": [str(i) for i in range(10)], "confusion": [[0] * 10 for _ in range(10)],
              "per_class": [{"class": str(i), "precision": 0.1, "recall": 0.1, "support": 1000} for i in range(10)],
              "most_confident_wrong": [{"index": 42, "true": "Bag", "predicted": "Dress", "confidence": 0.9},
                                       {"index": 7, "true": "Shirt", "predicted": "Coat", "confidence": 0.8}]}
    win.evaluation_dock.show()
    win.evaluation_dock.raise_()
    win.evaluation.show_result(result)
    lst = win.evaluation.wrong_list
    qtbot.waitUntil(lst.isVisible, timeout=5000)
    at = lst.visualItemRect(lst.item(1)).center()
    QTest.mouseClick(lst.viewport(), Qt.LeftButton, pos=at)  # a double click: its first press, then the second
    QTest.mouseDClick(lst.viewport(), Qt.LeftButton, pos=at)
    qtbot.waitUntil(lambda: win.explain_dock.isVisible() and win.explain.index.value() == 7, timeout=5000)
    e = explained(qtbot, win.explain)
    assert "validation image 7" in e.caption and e.true == 6  # Shirt


def test_occlusion_shows_its_progress_and_the_window_keeps_answering(qtbot, make_window):
    win = make_window(template="lenet5", size=(1500, 950))
    panel = open_explain(qtbot, win)
    panel.method.setCurrentIndex(panel.method.findData("occlusion"))
    said = set()
    QTest.mouseClick(panel.explain_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: said.add(panel.status.text()) or (panel.explanation is not None
                                                              and not panel.job.running), timeout=60000)
    assert any(t.endswith("%") and "occlusion" in t for t in said), said
    assert panel.explanation.method == "occlusion" and panel.explanation.attribution.shape == (1, 32, 32)


def test_feature_maps_use_the_chosen_run_and_refuse_weights_that_do_not_fit(qtbot, make_window, tmp_path):
    win = make_window(template="lenet5", size=(1500, 950))
    other = templates.build("lenet5", num_classes=5)
    make_run(tmp_path / "runs", "2026-12-02-lenet", other, initial(other).state_dict())
    win.runs.folder.setText(str(tmp_path / "runs"))
    win.explain.weights.refresh()
    assert win.explain.weights.box.currentText().startswith("run 2026-12-02-lenet")
    win.feature_maps_dock.show()
    win.feature_maps_dock.raise_()
    click_block(qtbot, win, "c1")
    QTest.mouseClick(win.feature_maps.show_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Cannot compute the maps" in win.feature_maps.status.text(), timeout=60000)
    assert "blocks that differ: output_fc" in win.feature_maps.status.text()
    # the initial weights instead: computed, and named
    box = win.explain.weights.box
    box.setCurrentIndex(box.findText("initial weights (untrained)"))
    with qtbot.waitSignal(win.feature_maps.computed, timeout=60000):
        QTest.mouseClick(win.feature_maps.show_button, Qt.LeftButton)
    assert "with the initial (untrained) weights" in win.feature_maps.status.text()


def test_an_expanded_composite_shows_its_inner_blocks_outputs(qtbot, make_window):
    from helpers import feature_graph
    win = make_window(size=(1500, 950))
    win.load_graph(feature_graph())
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)
    panel = open_explain(qtbot, win)
    panel.dataset.setCurrentText("synthetic")
    tick(panel.follow)
    qtbot.waitUntil(lambda: panel.outputs is not None and "inc" in panel.outputs, timeout=60000)
    assert panel.outputs["inc"].shape == (24, 32, 32)  # the module's output, as one block
    click_block(qtbot, win, "inc")
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    QTest.keySequence(win, "Ctrl+E")  # expand it: its branches get outputs of their own
    qtbot.waitUntil(lambda: panel.outputs is not None and "inc.branch1" in panel.outputs, timeout=60000)
    assert "inc" not in panel.outputs and "inc.branch1" in win.thumbnails.items
    inner = [b for b in panel.outputs if b.startswith("inc.")]
    cat = next(b for b in inner if win.doc.graph.block(b).type == "concat")
    assert panel.outputs[cat].shape == (24, 32, 32)
