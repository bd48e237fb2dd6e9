"""The training engine: recipes, aux loss weighting, label smoothing, resume, DDP under torchrun, faults."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import templates
from builder.core import project
from builder.backend.compiler import compile_graph
from builder.train.settings import Config, TrainingError
from builder.train.data import read_idx
from builder.train.engine import smoothed_targets, total_loss, train

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, timeout=600):
    e = dict(os.environ, **(env or {}))
    e["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "builder", "train", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=ROOT)


def events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_label_smoothing_matches_the_formula():
    y = torch.tensor([0, 3, 2])
    q = smoothed_targets(y, 5, 0.1)
    assert torch.allclose(q[0], torch.tensor([0.92, 0.02, 0.02, 0.02, 0.02]))
    assert torch.allclose(q.sum(1), torch.ones(3))
    logits = torch.randn(3, 5)
    by_formula = -(q * F.log_softmax(logits, 1)).sum(1).mean()
    _, main, _ = total_loss(logits, y, [1.0], label_smoothing=0.1)
    torch.testing.assert_close(main, by_formula)


def test_aux_losses_are_weighted_0_3_each():
    outs = (torch.randn(4, 10), torch.randn(4, 10), torch.randn(4, 10))
    y = torch.randint(0, 10, (4,))
    total, main, aux = total_loss(outs, y, [1.0, 0.3, 0.3])
    ce = [F.cross_entropy(o, y) for o in outs]
    torch.testing.assert_close(total, ce[0] + 0.3 * ce[1] + 0.3 * ce[2])
    torch.testing.assert_close(main, ce[0])


def test_googlenet_with_aux_heads_trains_with_the_weighted_loss(tmp_path):
    g = templates.build("googlenet", num_classes=10, input_size=(3, 96, 96))
    model = compile_graph(g)
    assert model.loss_weights == [1.0, 0.3, 0.3]
    seen = []
    train(model, Config(dataset="synthetic", batch_size=8, max_steps=2, out=str(tmp_path), log_every=1,
                        synthetic_size=32, recipe="googlenet_sgd"), seen.append)
    steps = [e for e in seen if e["event"] == "step"]
    assert len(steps) == 2
    for e in steps:
        assert len(e["aux_losses"]) == 2
        assert e["loss"] == pytest.approx(e["main_loss"] + 0.3 * sum(e["aux_losses"]), rel=1e-5)
    assert seen[-1]["event"] == "done" and seen[-1]["stopped"]


def _losses(out_dir, epochs, resume=False):
    g = templates.build("lenet5")
    torch.manual_seed(0)
    model = compile_graph(g)
    seen = []
    train(model, Config(dataset="synthetic", epochs=epochs, batch_size=16, out=str(out_dir), log_every=1,
                        synthetic_size=64, recipe="googlenet_sgd", resume=resume), seen.append)
    return [(e["step"], e["loss"]) for e in seen if e["event"] == "step"], seen


def test_resume_continues_at_the_same_step_with_the_same_losses(tmp_path):
    full, _ = _losses(tmp_path / "a", epochs=3)
    first, _ = _losses(tmp_path / "b", epochs=1)
    second, ev = _losses(tmp_path / "b", epochs=3, resume=True)
    assert [e for e in ev if e["event"] == "resumed"][0]["step"] == 4
    assert first + second == full
    assert (tmp_path / "b" / "last.safetensors").exists() and (tmp_path / "b" / "best.json").exists()


def test_checkpoint_is_safetensors_and_loads_into_the_exported_model(tmp_path):
    f = tmp_path / "l.json"
    project.save(templates.build("lenet5"), f)
    r = run_cli(str(f), "--dataset", "synthetic", "--max-steps", "3", "--out", str(tmp_path / "run"), "--json")
    assert r.returncode == 0, r.stderr
    last = events(r.stdout)[-1]
    assert last["event"] == "done" and "val_accuracy" in last
    from safetensors.torch import load_file

    from exports import export_graph
    from helpers import load_module
    weights = tmp_path / "run" / "last.safetensors"
    net = compile_graph(project.load(f)).eval()
    net.load_state_dict(load_file(str(weights)), strict=True)
    export_graph(project.load(f), "py", tmp_path / "lenet.py")
    exported = load_module(tmp_path / "lenet.py", "trained_lenet").build_model(weights=str(weights)).eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), net(x), rtol=0, atol=0)  # the trained weights, in the file's code


def test_lenet5_reaches_85_percent_on_the_real_fashion_mnist_test_set(tmp_path):
    # The smallest run that proves it with a margin: 2 epochs of 128 give 86.0% (1 epoch: 83.4% at 128, 85.3% at
    # 64, too close to call). The 3-epoch figure (87.0%) is `python -m benchmarks training`.
    r = run_cli("lenet5", "--dataset", "fashion-mnist", "--epochs", "2", "--batch-size", "128", "--out",
                str(tmp_path), "--json", "--log-every", "100", "--workers", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    ev = events(r.stdout)
    start, done = ev[0], ev[-1]
    assert start["train_size"] == 60000 and start["val_size"] == 10000  # the official test set
    assert done["val_accuracy"] >= 0.85, done


def _torchrun(args, tmp_path, nproc=2):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)


def test_torchrun_two_processes_train_like_one_on_the_same_global_batch(tmp_path):
    common = ["--dataset", "synthetic", "--max-steps", "2", "--batch-size", "16", "--log-every", "1", "--json",
              "--recipe", "sgd", "--workers", "0", "--device", "cpu"]
    single = run_cli("lenet5", *common, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    ddp = _torchrun(["-m", "builder", "train", "lenet5", *common, "--out", str(tmp_path / "two")], tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = [e for e in events(single.stdout) if e["event"] == "step"]
    two = [e for e in events(ddp.stdout) if e["event"] == "step"]
    start = [e for e in events(ddp.stdout) if e["event"] == "start"]
    assert len(start) == 1 and start[0]["world_size"] == 2  # rank 0 reports
    assert [e["step"] for e in two] == [1, 2]
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-6)


def test_exported_train_py_runs_under_torchrun_like_a_single_process(tmp_path):
    from exports import export_graph
    export_graph(templates.build("lenet5"), "train", tmp_path / "train.py")
    common = ["--dataset", "synthetic", "--max-steps", "2", "--batch-size", "16", "--log-every", "1", "--json",
              "--recipe", "sgd", "--device", "cpu"]
    single = subprocess.run([sys.executable, "train.py", *common, "--out", "one"], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=""))
    assert single.returncode == 0, single.stderr
    ddp = _torchrun(["train.py", *common, "--out", "two"], tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = [e for e in events(single.stdout) if e["event"] == "step"]
    two = [e for e in events(ddp.stdout) if e["event"] == "step"]
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-6)


def test_nan_loss_stops_with_a_message(tmp_path):
    from builder.core.graph import Graph
    g = Graph("linear")
    g.add_block("input", {"channels": 1, "height": 8, "width": 8}, "input")
    g.add_block("flatten", {}, "flatten")
    g.add_block("linear", {"out_features": 10}, "fc")
    g.add_block("output", {}, "out")
    for a, b in (("input", "flatten"), ("flatten", "fc"), ("fc", "out")):
        g.connect(a, b)
    f = tmp_path / "linear.json"
    project.save(g, f)
    r = run_cli(str(f), "--dataset", "synthetic", "--lr", "1e38", "--epochs", "3", "--json", "--out",
                str(tmp_path / "run"), "--recipe", "sgd")
    assert r.returncode == 3
    err = events(r.stdout)[-1]
    assert err["event"] == "error" and "loss became" in err["message"] and "learning rate" in err["message"]


def test_missing_and_corrupt_datasets_give_clear_errors(tmp_path):
    r = run_cli("lenet5", "--dataset", str(tmp_path / "nowhere"), "--json", "--out", str(tmp_path))
    assert r.returncode == 3 and "neither a known name" in events(r.stdout)[-1]["message"]
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    import gzip
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + (100).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 50)
    with pytest.raises(TrainingError, match="truncated"):
        read_idx(bad)
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(TrainingError, match="cannot read"):
        read_idx(bad)


def test_amp_and_channels_last_paths_run_on_cpu(tmp_path):
    """The CUDA path's pieces that exist on the CPU: channels_last input and model, bf16 autocast."""
    g = templates.build("googlenet", num_classes=10, input_size=(3, 64, 64), aux=False)
    model = compile_graph(g).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 10)
    seen = []
    train(compile_graph(g), Config(dataset="synthetic", batch_size=4, max_steps=1, channels_last=True,
                                   out=str(tmp_path), synthetic_size=8, log_every=1), seen.append)
    assert seen[0]["channels_last"] is True and seen[-1]["event"] == "done"
