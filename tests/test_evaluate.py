"""`block-builder evaluate` (issue 15): on LeNet-5 trained one epoch on Fashion-MNIST, the accuracy is the
trainer's final validation accuracy; the confusion matrix sums to the 10,000 test images and its diagonal to the
correct ones; per-class recall recomputed here from the model's own predictions agrees; the pictures are written."""
import json

import pytest
import torch
from PIL import Image

import templates
from builder.cli import main
from builder.backend.compiler import compile_graph
from builder.train.settings import FASHION_DIRS
from builder.train.data import _find_idx, _load_idx_split, prepare
from builder.train.weights import load_weights


@pytest.mark.timeout(600)
def test_evaluate_lenet5_on_fashion_mnist(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "lenet5", "--dataset", "fashion-mnist", "--epochs", "1", "--batch-size", "128", "--out",
                 str(run), "--json", "--log-every", "1000", "--workers", "0"]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["evaluate", "lenet5", "--weights", str(run / "last.safetensors"), "--dataset", "fashion-mnist",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == done["val_accuracy"]
    m = torch.tensor(result["confusion"])
    assert m.sum().item() == 10_000 == result["images"] and m.diag().sum().item() == result["correct"]
    assert result["classes"][0] == "T-shirt/top" and 1.0 > result["top5_accuracy"] > result["accuracy"]
    # recall per class, recomputed from the model's own predictions on the test files
    net = compile_graph(templates.build("lenet5")).eval()
    load_weights(net, run / "last.safetensors")
    x, y = _load_idx_split(_find_idx(FASHION_DIRS, "fashion-mnist"), "test")

    class Stats:
        mean, std = 0.2860, 0.3530
    with torch.no_grad():
        pred = torch.cat([net(prepare(x[i:i + 1000], Stats, (1, 32, 32), "cpu", False)).argmax(1)
                          for i in range(0, 10_000, 1000)])
    for c, row in enumerate(result["per_class"]):
        mine = ((pred == c) & (y == c)).sum().item() / (y == c).sum().item()
        assert row["recall"] == pytest.approx(mine, abs=1e-12), row["class"]
    wrong = result["most_confident_wrong"]
    assert wrong and all(pred[w["index"]].item() != y[w["index"]].item() for w in wrong)
    assert [w["confidence"] for w in wrong] == sorted((w["confidence"] for w in wrong), reverse=True)
    saved = json.loads((run / "evaluation.json").read_text())
    assert saved["accuracy"] == result["accuracy"]
    for name in ("confusion.png", "most_confident_wrong.png"):
        with Image.open(run / name) as im:
            assert im.size[0] > 300 and im.size[1] > 100


def test_evaluate_without_weights_or_with_bad_ones_is_one_message(tmp_path, capsys):
    assert main(["evaluate", "lenet5", "--dataset", "synthetic"]) == 2
    assert "evaluate needs trained weights" in capsys.readouterr().err
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"\x00")
    assert main(["evaluate", "lenet5", "--weights", str(bad), "--dataset", "synthetic"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "w.safetensors: not a valid safetensors file" in err[0]


@pytest.mark.timeout(300)
def test_the_evaluation_panel_shows_what_evaluate_wrote(qtbot, tmp_path, make_window, capsys):
    """The app's Evaluation panel runs `evaluate` beside the event loop (a real click on Evaluate) and shows its
    numbers: the accuracy, a row per class, the confusion matrix (rows as shares of each true class), the worst
    images; the files are beside the weights."""
    import numpy as np
    from PySide6.QtCore import Qt

    run = tmp_path / "run"
    assert main(["train", "lenet5", "--dataset", "synthetic", "--synthetic-size", "400", "--epochs", "1",
                 "--batch-size", "50", "--out", str(run), "--workers", "0", "--json"]) == 0
    capsys.readouterr()
    win = make_window("lenet5")
    win.evaluation_dock.raise_()
    panel = win.evaluation
    panel.use_run(run)
    assert panel.weights.text() == str(run / "best.safetensors")
    panel.dataset.setCurrentText("synthetic")
    with qtbot.waitSignal(panel.evaluated, timeout=240000) as got:
        qtbot.mouseClick(panel.evaluate_button, Qt.LeftButton)
        assert not panel.evaluate_button.isEnabled()  # running beside the event loop
    result = got.args[0]
    saved = json.loads((run / "evaluation.json").read_text())
    assert saved["accuracy"] == result["accuracy"]
    assert f"{result['accuracy'] * 100:.2f}%" in panel.status.text()
    assert panel.table.rowCount() == len(result["classes"]) == 10
    image = panel.confusion_image.image
    assert image.shape == (10, 10)
    m = np.array(result["confusion"], dtype=float)
    assert np.allclose(image.T, m / np.maximum(m.sum(1, keepdims=True), 1))
    assert m.sum() == result["images"]
    assert panel.wrong.pixmap() is not None and not panel.wrong.pixmap().isNull()
    panel.weights.setText(str(tmp_path / "missing.safetensors"))
    assert not panel.evaluate() and "No weights file" in panel.status.text()
