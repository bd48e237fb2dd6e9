"""Fuzzing the project loader, fault injection in training, resource bounds."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import templates
from builder.core import project
from builder.core.analysis import analyze
from builder.core.errors import GraphEditError, ProjectError
from builder.core.graph import Graph

ROOT = Path(__file__).resolve().parents[1]
VALID = project.dumps(templates.build("googlenet"))
FUZZ = {"files": 0, "loaded": 0, "refused": 0}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                     max_size=4), max_leaves=20)


def _load_text(tmp_path, text):
    p = tmp_path / "fuzz.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    FUZZ["files"] += 1
    t = time.perf_counter()
    try:
        project.load(p)
        FUZZ["loaded"] += 1
    except ProjectError as e:
        FUZZ["refused"] += 1
        assert str(p) in str(e)
    # A hang guard, not a speed test (`python -m benchmarks responsiveness` measures load times as ratios): any
    # file here loads in milliseconds on a quiet machine, so a minute means a quadratic or a loop, even when
    # other work keeps both cores busy.
    took = time.perf_counter() - t
    assert took < 60.0, f"loading {p} took {took:.1f} s"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_files_give_only_the_project_error(tmp_path, data):
    raw = bytearray(VALID.encode())
    kind = data.draw(st.sampled_from(["flip", "truncate", "splice", "replace_value"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 20))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        _load_text(tmp_path, bytes(raw))
    elif kind == "truncate":
        _load_text(tmp_path, bytes(raw[:data.draw(st.integers(0, len(raw)))]))
    elif kind == "splice":
        i = data.draw(st.integers(0, len(raw)))
        _load_text(tmp_path, bytes(raw[:i]) + json.dumps(data.draw(json_values)).encode() + bytes(raw[i:]))
    else:
        doc = json.loads(VALID)
        target = data.draw(st.sampled_from(["blocks", "edges", "name", "version", "meta", "format"]))
        if target in ("blocks", "edges") and doc[target] and data.draw(st.booleans()):
            i = data.draw(st.integers(0, len(doc[target]) - 1))
            item = doc[target][i]
            key = data.draw(st.sampled_from(sorted(item)))
            item[key] = data.draw(json_values)
        else:
            doc[target] = data.draw(json_values)
        _load_text(tmp_path, json.dumps(doc))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values)
def test_arbitrary_json_gives_only_the_project_error(tmp_path, value):
    _load_text(tmp_path, json.dumps(value))


def test_huge_and_deeply_nested_files(tmp_path):
    _load_text(tmp_path, "[" * 200_000 + "]" * 200_000)
    _load_text(tmp_path, '{"format": "block-builder-project", "version": 2, "blocks": [' +
               ",".join(['{"id": "a%d", "type": "relu"}' % i for i in range(20000)]) + '], "edges": []}')
    _load_text(tmp_path, '{"format": "block-builder-project", "version": 1e400, "blocks": [], "edges": []}')
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(project.MAX_BYTES + 1)
    with pytest.raises(ProjectError, match="at most"):
        project.load(big)


def test_fuzz_figures_are_reported(tmp_path, capsys):
    """200 seeded mutants of its own (it does not count on the other tests having run first): every one loads
    or is refused with the project's error, and the figures are printed."""
    import random
    rng = random.Random(0)
    before = dict(FUZZ)
    raw = VALID.encode()
    _load_text(tmp_path, raw)  # the file itself loads
    for _ in range(199):
        b = bytearray(raw)
        kind = rng.choice(["flip", "truncate", "splice"])
        if kind == "flip":
            for _ in range(rng.randint(1, 20)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == "truncate":
            b = b[:rng.randrange(len(b))]
        else:
            i = rng.randrange(len(b))
            b = b[:i] + rng.choice([b"null", b"{}", b"[1,", b'"\\ud800"', b"1e999", b"-0"]) + b[i:]
        _load_text(tmp_path, bytes(b))
    files, loaded, refused = (FUZZ[k] - before[k] for k in ("files", "loaded", "refused"))
    with capsys.disabled():
        print(f"\nloader fuzzing: {files} files, {loaded} loaded, {refused} refused with the project's own error, "
              "nothing else raised")
    assert files == 200 and loaded >= 1 and refused >= 100 and loaded + refused == files


@pytest.mark.parametrize("params,needle", [({"kernel": 10**9}, "kernel"), ({"out_channels": 10**6}, "out_channels"),
                                           ({"groups": 10**7}, "groups")])
def test_absurd_parameters_are_refused_before_anything_is_allocated(params, needle):
    g = Graph()
    with pytest.raises(GraphEditError, match=needle):
        g.add_block("conv2d", params)
    with pytest.raises(GraphEditError, match="height"):
        g.add_block("input", {"channels": 3, "height": 10**6, "width": 10**6})


def test_analysis_reports_the_memory_a_design_needs():
    a = analyze(templates.build("vgg16"))
    assert a.inference.param_bytes == 138_357_544 * 4
    assert a.inference.activation_bytes == 4 * a.inference.activations > 50 * 2**20


def test_simulated_out_of_memory_suggests_a_batch_size(tmp_path, monkeypatch):
    from builder.backend.compiler import compile_graph
    from builder.train.settings import Config, TrainingError
    from builder.train.engine import train
    model = compile_graph(templates.build("lenet5"))
    calls = {"n": 0}
    real = type(model).forward

    def oom(self, x):
        calls["n"] += 1
        if calls["n"] > 2:  # after the width probe and one good step
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, x)
    monkeypatch.setattr(type(model), "forward", oom)
    with pytest.raises(TrainingError, match="out of memory with batch size 64; try --batch-size 32"):
        train(model, Config(dataset="synthetic", batch_size=64, out=str(tmp_path), synthetic_size=256), lambda e: None)


@pytest.mark.timeout(240)
def test_killed_training_leaves_the_last_checkpoint_intact(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m", "builder", "train", "lenet5", "--dataset", "synthetic", "--synthetic-size", "256",
            "--batch-size", "32", "--json", "--out", str(out), "--log-every", "1", "--workers", "0"]
    cmd = base + ["--epochs", "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    epochs = 0
    try:
        for line in proc.stdout:
            if '"event": "epoch"' in line:
                epochs += 1
                if epochs == 3:
                    proc.send_signal(signal.SIGKILL)  # mid-way, while it writes checkpoints every epoch
                    break
    finally:
        proc.kill()
        proc.wait(10)
    assert epochs == 3
    state = json.loads((out / "last.json").read_text())
    assert state["epoch"] >= 2
    from safetensors.torch import load_file
    from builder.backend.compiler import compile_graph
    net = compile_graph(templates.build("lenet5"))
    net.load_state_dict(load_file(str(out / "last.safetensors")), strict=True)
    r = subprocess.run(base + ["--epochs", str(state["epoch"] + 1), "--resume"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert '"event": "resumed"' in r.stdout
