"""Hostile settings, weights and checkpoints for training: one message and a refusal, never a silent fallback."""
from __future__ import annotations

import json

import pytest
import torch

import templates
from builder.cli import main
from builder.core import project
from builder.train.weights import save_tensors

QUICK = ["--dataset", "synthetic", "--epochs", "1", "--max-steps", "2"]


@pytest.mark.parametrize("flag, message", [
    (["--gpus", "4"], "--gpus 4: this machine has 0 CUDA GPUs"),
    (["--gpus=4"], "--gpus 4: this machine has 0 CUDA GPUs"),
    (["--gpus", "0"], "--gpus 0: the number of GPUs to train on is at least 1"),
    (["--gpus", "-1"], "--gpus -1: the number of GPUs to train on is at least 1"),
])
def test_gpus_that_are_not_there_are_refused(flag, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without CUDA GPUs, wherever it runs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert main(["train", "lenet5", *QUICK, "--out", str(tmp_path / "run"), *flag]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, message", [
    ("x" * 5000 + ".safetensors", "meta.weights is 5,012 characters long"),
    ("../../../etc/passwd", "meta.weights must be the name of a file beside it, not '../../../etc/passwd'"),
])
def test_a_projects_weights_name_that_is_no_file_name(name, message, capsys, tmp_path):
    g = templates.build("lenet5")
    g.meta["weights"] = name
    project.save(g, tmp_path / "p.json")
    for cmd in (["train", str(tmp_path / "p.json"), *QUICK, "--out", str(tmp_path / "run")],
                ["evaluate", str(tmp_path / "p.json"), "--dataset", "synthetic"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_weights_full_of_nan_are_refused(capsys, tmp_path):
    from builder.backend.compiler import compile_graph
    state = compile_graph(templates.build("lenet5")).state_dict()
    save_tensors({k: torch.full_like(v, float("nan")) for k, v in state.items()}, tmp_path / "nan.safetensors")
    assert main(["train", "lenet5", *QUICK, "--out", str(tmp_path / "run"), "--weights",
                 str(tmp_path / "nan.safetensors")]) == 3
    err = capsys.readouterr().err
    assert "10 tensor(s) hold NaN or infinite values (c1.bias, c1.weight" in err


def test_a_checkpoint_past_the_end_of_an_epoch_is_refused(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "lenet5", *QUICK, "--out", str(out)]) == 0
    doc = json.loads((out / "last.json").read_text())
    doc["batch"] = 10 ** 12
    (out / "last.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["train", "lenet5", "--dataset", "synthetic", "--epochs", "2", "--out", str(out), "--resume"]) == 3
    assert "the checkpoint is at batch 1,000,000,000,000 of an epoch, but an epoch here has" in capsys.readouterr().err


def test_a_small_folder_still_holds_out_a_validation_image(capsys, tmp_path):
    from PIL import Image
    for c in "ab":
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (32, 32), (60 * i, 20, 200 if c == "a" else 0)).save(tmp_path / "data" / c / f"{i}.png")
    assert main(["train", "lenet5", "--dataset", str(tmp_path / "data"), "--epochs", "1", "--batch-size", "2",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    start = next(e for e in events if e.get("event") == "start")
    assert (start["train_size"], start["val_size"]) == (7, 1)  # 10% of 8 images was none
