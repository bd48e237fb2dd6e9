"""Bad training input (issue 16): settings out of range, an unusable --out, corrupt or hostile checkpoints and
weights, odd image folders. Each is one line naming the problem, a non-zero exit and no traceback; a checkpoint
that cannot resume is left exactly as it was, and nothing is half applied to the model or the optimizer."""
import hashlib
import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest
import torch

from builder.core import project
from builder.cli import main
from builder.backend.compiler import compile_graph
from builder.core.graph import Graph
from builder.train.settings import Config, RECIPES, SettingsError, TrainingError
from builder.train.checkpoints import load_checkpoint
from builder.train.weights import load_weights
from builder.train.engine import make_optimizer


def _graph(h=8):
    g = Graph("tiny")
    g.add_block("input", {"channels": 1, "height": h, "width": h}, "input")
    g.add_block("conv2d", {"out_channels": 4, "kernel": 3, "padding": 1}, "conv")
    g.add_block("batchnorm2d", {}, "bn")
    g.add_block("relu", {}, "act")
    g.add_block("flatten", {}, "flatten")
    g.add_block("linear", {"out_features": 3}, "fc")
    g.add_block("output", {}, "out")
    for a, b in (("input", "conv"), ("conv", "bn"), ("bn", "act"), ("act", "flatten"), ("flatten", "fc"),
                 ("fc", "out")):
        g.connect(a, b)
    return g


def _train(capsys, *args):
    """`block-builder train` in this process: (exit status, stdout, stderr)."""
    code = main(["train", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(err, needle):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert needle in lines[0], lines[0]


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A project and a finished run of it (1 epoch) whose checkpoint the tests below corrupt."""
    folder = tmp_path_factory.mktemp("run")
    f = folder / "tiny.json"
    project.save(_graph(), f)
    code = main(["train", str(f), "--dataset", "synthetic", "--synthetic-size", "64", "--batch-size", "16",
                 "--epochs", "1", "--out", str(folder / "run"), "--recipe", "sgd", "--workers", "0", "--json"])
    assert code == 0
    return f, folder / "run"


BAD_SETTINGS = [
    (["--log-every", "0"], "log every must be at least 1"),
    (["--lr", "-1"], "learning rate must be a number above 0"),
    (["--lr", "nan"], "learning rate must be a number above 0"),
    (["--label-smoothing", "5"], "label smoothing must be at least 0 and below 1"),
    (["--workers", "-1"], "workers must be 0 to 256"),
    (["--max-steps", "-1"], "max steps must be 0"),
    (["--epochs", "0"], "epochs must be 1"),
    (["--batch-size", "0"], "batch size must be 1"),
    (["--weight-decay", "-0.1"], "weight decay must be 0 to 10"),
    (["--aux-weight", "inf"], "aux weight must be 0 to 100"),
    (["--synthetic-size", "0"], "synthetic size must be 1"),
    (["--seed", "-3"], "seed must be 0"),
]


@pytest.mark.parametrize("extra,needle", BAD_SETTINGS)
def test_settings_out_of_range_exit_2_before_anything_runs(tmp_path, capsys, run, extra, needle):
    f, ckpt = run
    before = _digest(ckpt)
    code, out, err = _train(capsys, str(f), "--dataset", "synthetic", "--out", str(ckpt), "--resume", *extra)
    assert code == 2
    _one_line_error(err, needle)
    assert _digest(ckpt) == before and "step" not in out


def test_an_out_that_is_a_file_or_below_one(tmp_path, capsys, run):
    f, _ = run
    file = tmp_path / "afile"
    file.write_text("keep me")
    for out, needle in ((file, "is a file, not a folder"), (file / "sub" / "run", "cannot be made")):
        code, _, err = _train(capsys, str(f), "--dataset", "synthetic", "--out", str(out))
        assert code == 2
        _one_line_error(err, needle)
    assert file.read_text() == "keep me"
    with pytest.raises(SettingsError, match="log every.*; learning rate"):  # every problem at once
        Config(log_every=0, lr=-1.0, out=str(tmp_path)).check()


def _write_header(path, header: dict, body=b""):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def _tamper_tensors(path, change):
    from safetensors.torch import load_file, save_file
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def _tamper_json(path, change):
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(change(doc)) if callable(change) else change)


CORRUPT = {
    "empty weights": (lambda d: (d / "last.safetensors").write_bytes(b""), "last.safetensors: not a valid safetensors"),
    "truncated weights": (lambda d: (d / "last.safetensors").write_bytes((d / "last.safetensors").read_bytes()[:50]),
                          "last.safetensors: not a valid safetensors"),
    "oversized header": (lambda d: (d / "last.safetensors").write_bytes(struct.pack("<Q", 2 ** 40) + b"{}"),
                         "last.safetensors: not a valid safetensors"),
    "header not JSON": (lambda d: (d / "last.optim.safetensors").write_bytes(struct.pack("<Q", 4) + b"nope"),
                        "last.optim.safetensors: not a valid safetensors"),
    "header lies about sizes": (lambda d: _write_header(d / "last.safetensors", {
        "conv.weight": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}),
        "last.safetensors: not a valid safetensors"),
    "weights are a folder": (lambda d: ((d / "last.safetensors").unlink(), (d / "last.safetensors").mkdir()),
                             "a folder, not a weights file"),
    "no RNG state": (lambda d: _tamper_tensors(d / "last.optim.safetensors", lambda t: t.pop("__rng_cpu__")),
                     "random generator's state is missing or malformed"),
    "RNG of the wrong dtype": (lambda d: _tamper_tensors(d / "last.optim.safetensors", lambda t: t.update(
        __rng_cpu__=t["__rng_cpu__"].float())), "random generator's state is missing or malformed"),
    "momentum of the wrong shape": (lambda d: _tamper_tensors(d / "last.optim.safetensors", lambda t: t.update(
        {"0.momentum_buffer": torch.zeros(2, 2)})), "optimizer state 0.momentum_buffer has shape (2, 2), its "
                                                    "parameter's is (4, 1, 3, 3)"),
    "optimizer state of no parameter": (lambda d: _tamper_tensors(d / "last.optim.safetensors", lambda t: t.update(
        {"999.momentum_buffer": torch.zeros(1)})), "'999.momentum_buffer' belongs to no parameter"),
    "weight of the wrong shape": (lambda d: _tamper_tensors(d / "last.safetensors", lambda t: t.update(
        {"fc.weight": torch.zeros(3, 5)})), "fc.weight has shape (3, 5), the network's is (3, 256)"),
    "weight missing": (lambda d: _tamper_tensors(d / "last.safetensors", lambda t: t.pop("bn.running_var")),
                       "1 tensor(s) missing (bn.running_var)"),
    "integer weights": (lambda d: _tamper_tensors(d / "last.safetensors", lambda t: t.update(
        {"conv.bias": torch.zeros(4, dtype=torch.int32)})), "conv.bias is int32, the network's is float32"),
    "record is a list": (lambda d: _tamper_json(d / "last.json", "[1, 2]"), "the record is a JSON list"),
    "record truncated": (lambda d: _tamper_json(d / "last.json", '{"epoch": 1, "ba'), "not a checkpoint record"),
    "no optimizer_plain": (lambda d: _tamper_json(d / "last.json", lambda doc: {
        k: v for k, v in doc.items() if k != "optimizer_plain"}), "'optimizer_plain' is missing"),
    "no optimizer_groups": (lambda d: _tamper_json(d / "last.json", lambda doc: {
        k: v for k, v in doc.items() if k != "optimizer_groups"}), "'optimizer_groups'"),
    "negative epoch": (lambda d: _tamper_json(d / "last.json", lambda doc: {**doc, "epoch": -2}),
                       "'epoch' must be a whole number 0 or more, not -2"),
    "NaN best accuracy": (lambda d: _tamper_json(d / "last.json", (d / "last.json").read_text().replace(
        '"best_val_accuracy": ', '"best_val_accuracy": NaN, "x": ')), "NaN is not a value a checkpoint holds"),
    "another recipe's groups": (lambda d: _tamper_json(d / "last.json", lambda doc: {
        **doc, "optimizer_groups": [{**g, "params": g["params"][:-1]} for g in doc["optimizer_groups"]]}),
        "optimizer's settings do not match"),
    "record missing": (lambda d: (d / "last.json").unlink(), "no checkpoint to resume from"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_checkpoint_is_one_message_and_stays_as_it_was(tmp_path, capsys, run, case):
    f, ckpt = run
    spoil, needle = CORRUPT[case]
    bad = tmp_path / "run"
    shutil.copytree(ckpt, bad)
    spoil(bad)
    before = {p.name: p.read_bytes() for p in bad.iterdir() if p.is_file()}
    code, out, err = _train(capsys, str(f), "--dataset", "synthetic", "--synthetic-size", "64", "--batch-size", "16",
                            "--epochs", "2", "--out", str(bad), "--resume", "--recipe", "sgd", "--workers", "0")
    assert code == 3
    _one_line_error(err, needle)
    assert {p.name: p.read_bytes() for p in bad.iterdir() if p.is_file()} == before  # nothing rewritten


@pytest.mark.parametrize("case", ["momentum of the wrong shape", "weight missing", "RNG of the wrong dtype",
                                  "another recipe's groups", "optimizer state of no parameter"])
def test_a_failed_load_applies_nothing(tmp_path, run, case):
    _, ckpt = run
    bad = tmp_path / "run"
    shutil.copytree(ckpt, bad)
    CORRUPT[case][0](bad)
    model = compile_graph(_graph())
    cfg = Config(recipe="sgd")
    optimizer = make_optimizer(model, cfg.recipe_settings())
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    with pytest.raises(TrainingError):
        load_checkpoint(bad, "last", model, optimizer)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert optimizer.state_dict()["state"] == {} and torch.equal(torch.get_rng_state(), rng)


def test_a_resumed_run_keeps_its_best_accuracy(tmp_path, capsys, run):
    f, ckpt = run
    last = json.loads((ckpt / "last.json").read_text())
    best = json.loads((ckpt / "best.json").read_text())
    assert last["best_val_accuracy"] == last["history"][0]["val_accuracy"] == best["best_val_accuracy"] >= 0
    resumed = tmp_path / "run"
    shutil.copytree(ckpt, resumed)
    best_weights = (resumed / "best.safetensors").read_bytes()
    code, out, _ = _train(capsys, str(f), "--dataset", "synthetic", "--synthetic-size", "64", "--batch-size", "16",
                          "--epochs", "2", "--out", str(resumed), "--resume", "--recipe", "sgd", "--workers", "0",
                          "--json", "--lr", "1e-12")  # epoch 2 learns nothing: it cannot beat epoch 1 by much
    assert code == 0
    done = [json.loads(x) for x in out.splitlines() if x.startswith("{")][-1]
    record = json.loads((resumed / "last.json").read_text())
    assert record["best_val_accuracy"] == max(h["val_accuracy"] for h in record["history"])
    if record["history"][1]["val_accuracy"] <= record["history"][0]["val_accuracy"]:
        assert (resumed / "best.safetensors").read_bytes() == best_weights  # epoch 2 did not overwrite best
    assert done["best_val_accuracy"] == record["best_val_accuracy"]


def test_weights_that_do_not_fit_load_nothing(tmp_path):
    from safetensors.torch import save_file
    model = compile_graph(_graph())
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    other = compile_graph(_graph(h=16)).state_dict()  # fc sees 4x16x16 inputs
    save_file(other, str(tmp_path / "w.safetensors"))
    with pytest.raises(TrainingError, match=r"w.safetensors: the weights do not fit this network: fc.weight has "
                                            r"shape \(3, 1024\), the network's is \(3, 256\)"):
        load_weights(model, tmp_path / "w.safetensors")
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # conv was not copied either


# ------------------------------------------------------------------------------------------- image folders

def _png(path, size=(12, 12), mode="L", value=0):
    from PIL import Image
    Image.new(mode, size, value).save(path)


def _png_claiming(path, w, h):
    """A PNG whose header claims w x h pixels (no pixel data: opening it reads only the header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))


def test_an_image_folder_with_one_class_is_refused(tmp_path, capsys, run):
    f, _ = run
    (tmp_path / "data" / "cats").mkdir(parents=True)
    for i in range(20):
        _png(tmp_path / "data" / "cats" / f"{i}.png", value=i)
    code, _, err = _train(capsys, str(f), "--dataset", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
                          "--workers", "0")
    assert code == 3
    _one_line_error(err, "only one class (cats); a classifier needs at least two class folders")


def test_unusable_images_are_left_out_counted_and_named(tmp_path, capsys, run):
    f, _ = run
    data = tmp_path / "data"
    for k, name in enumerate(("a", "b", "c")):
        (data / name).mkdir(parents=True)
        for i in range(12):
            _png(data / name / f"{i}.png", value=40 * k + i)
    from PIL import Image
    Image.frombytes("L", (64, 64), bytes(range(256)) * 16).save(data / "a" / "full.png")
    good = (data / "a" / "full.png").read_bytes()
    (data / "a" / "full.png").unlink()
    (data / "a" / "truncated.png").write_bytes(good[: len(good) * 3 // 4])  # the header reads; decoding fails
    _png(data / "b" / "deep.png", mode="I;16")                           # 16-bit pixels
    _png_claiming(data / "c" / "huge.png", 20000, 20000)                 # 400 megapixels
    (data / "c" / "notes.png").write_text("not an image")
    code, out, err = _train(capsys, str(f), "--dataset", str(data), "--out", str(tmp_path / "o"), "--workers", "0",
                            "--batch-size", "8", "--epochs", "1", "--json")
    assert code == 0, err
    evts = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    warnings = [e for e in evts if e["event"] == "warning"]
    assert warnings and "left out of training" in warnings[0]["message"]
    named = " ".join(e["message"] for e in warnings)
    assert evts[-1]["event"] == "done" and evts[-1]["skipped_images"] in (3, 4)  # truncated: if it was drawn
    assert "megapixels" in named or "16-bit" in named or "unreadable" in named
    start = next(e for e in evts if e["event"] == "start")
    # the three whose headers fail never enter the split; the truncated one does, and is dropped when decoded
    assert start["train_size"] + start["val_size"] == 37


def test_the_exported_train_script_checks_its_settings_and_weights(tmp_path):
    import subprocess
    import sys
    from exports import export_graph
    export_graph(_graph(), "train", tmp_path / "train.py")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 3)
    for args, code, needle in ((["--log-every", "0"], 2, "log every must be at least 1"),
                               (["--out", str(tmp_path / "train.py")], 2, "is a file, not a folder"),
                               (["--weights", str(tmp_path / "bad.safetensors"), "--dataset", "synthetic"], 3,
                                "bad.safetensors: not a valid safetensors file")):
        r = subprocess.run([sys.executable, "train.py", *args], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == code, r.stderr
        assert "Traceback" not in r.stderr and r.stdout.strip().count("\n") == 0 and needle in r.stdout, r.stdout
