"""A user's model factory runs in a child process, bounded in time and memory: whatever it does (loop, block, exit,
crash, raise, not compile, allocate without end) is one message, and the command's own exit status is 2."""
from __future__ import annotations

import textwrap

import pytest

from builder.cli import main
from builder.core.errors import ModelImportError
from builder.importers import import_source

HOSTILE = '''
import os, sys
import torch
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.relu = nn.ReLU()
    def forward(self, x):
        return self.relu(self.conv(x))

def good():
    torch.manual_seed(0)
    return Net()

def loops():
    while True:
        pass

def blocks():
    read, _write = os.pipe()
    os.read(read, 1)  # waits forever for a byte nobody writes: a factory that hangs without using the CPU

def exits():
    sys.exit(0)

def hard_exit():
    os._exit(0)

def raises():
    raise ValueError("no model today")

def hog():
    return torch.ones(1 << 34)

class LoopingForward(Net):
    def forward(self, x):
        while True:
            pass

class ChunkZero(Net):
    def forward(self, x):
        return torch.chunk(x, 0, 1)[0]

class NonePool(Net):
    def forward(self, x):
        return F.adaptive_avg_pool2d(self.conv(x), (None, 1))

class NoKernel(Net):
    def forward(self, x):
        return F.max_pool2d(self.conv(x), kernel_size=None)

class BadStateDict(Net):
    def state_dict(self, *a, **k):
        raise RuntimeError("no state for you")
'''


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    (tmp_path / "hostile_models.py").write_text(textwrap.dedent(HOSTILE), encoding="utf-8")
    (tmp_path / "broken_syntax.py").write_text("def f(:\n    pass\n", encoding="utf-8")
    (tmp_path / "raises_on_import.py").write_text("raise ImportError('needs a GPU driver')\n", encoding="utf-8")
    (tmp_path / "explodes_on_import.py").write_text("1 / 0\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problem(source, **kw):
    with pytest.raises(ModelImportError) as e:
        import_source(source, **kw)
    [p] = e.value.problems
    return str(p)


def test_a_good_factory_imports_with_its_weights(hostile):
    import torch
    imported = import_source("hostile_models:good")
    torch.manual_seed(0)
    want = __import__("hostile_models").Net().state_dict()
    assert list(imported.state) == list(want)
    assert all(torch.equal(imported.state[k], want[k]) for k in want)
    assert [b.type for b in imported.graph.blocks()] == ["input", "conv2d", "relu", "output"]


@pytest.mark.parametrize("source, message", [
    ("hostile_models:loops", "did not finish within 4 s"),
    ("hostile_models:blocks", "did not finish within 4 s"),
    ("hostile_models:LoopingForward", "did not finish within 4 s"),
])
def test_a_factory_or_forward_that_never_returns_is_stopped(hostile, source, message):
    assert message in problem(source, timeout_s=4)


@pytest.mark.parametrize("source, message", [
    ("hostile_models:exits", "the model's code called sys.exit(0) during the import"),
    ("hostile_models:hard_exit", "the model's code ended the import (exit status 0"),
    ("hostile_models:raises", "calling raises() failed: ValueError: no model today"),
    ("hostile_models:ChunkZero", "chunk"),
    ("hostile_models:BadStateDict", "RuntimeError"),
    ("hostile_models:missing", "the module hostile_models has no 'missing'"),
    ("hostile_models:NoKernel", "max_pool2d cannot be mapped with these arguments"),
    ("broken_syntax:f", "the module broken_syntax does not compile: "),
    ("raises_on_import:f", "cannot load it: needs a GPU driver"),
    ("explodes_on_import:f", "importing explodes_on_import failed: ZeroDivisionError: division by zero"),
    (":f", "expected package.module:callable"),
    ("hostile_models:", "expected package.module:callable"),
])
def test_what_the_users_code_does_is_one_message(hostile, source, message):
    assert message in problem(source)


def test_a_call_no_kind_maps_with_these_arguments_is_captured(hostile):
    """``adaptive_avg_pool2d(x, (None, 1))`` (keep the height) is no pooling block's: the call is captured with
    its exact operators, so the import works where it used to be refused."""
    imported = import_source("hostile_models:NonePool")
    assert imported.notes == ["adaptive_avg_pool2d: adaptive_avg_pool2d captured whole "
                              "(torch.nn.functional.adaptive_avg_pool2d)"]


def test_memory_is_bounded(hostile):
    why = problem("hostile_models:hog", memory_gib=3)
    assert "allocate" in why or "out of memory" in why


def test_the_command_exits_2_whatever_the_child_does(hostile, capsys):
    for name in ("exits", "hard_exit", "raises"):
        assert main(["import", f"hostile_models:{name}", "-o", str(hostile / "out.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: hostile_models:") and "Traceback" not in err
    assert not (hostile / "out.json").exists()


def test_an_input_size_out_of_range_is_one_message(capsys, tmp_path):
    assert main(["import", "torchvision:resnet18", "-o", str(tmp_path / "r.json"), "--input", "3x100000x5"]) == 2
    err = capsys.readouterr().err
    assert "parameter x: input: height: 100000 is above the maximum 16384" in err and "Traceback" not in err


def _onnx_file(path):
    """A small ONNX network (conv, relu) written by torch's TorchScript exporter."""
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()).eval()
    torch.onnx.export(net, torch.zeros(1, 3, 16, 16), str(path), dynamo=False)
    return net


def test_an_onnx_file_is_imported_in_the_bounded_child_and_comes_back_whole(tmp_path):
    import torch
    net = _onnx_file(tmp_path / "small.onnx")
    inside = import_source(str(tmp_path / "small.onnx"), contained=False)
    outside = import_source(str(tmp_path / "small.onnx"))  # the child's result, read back from its files
    assert [b.type for b in outside.graph.blocks()] == [b.type for b in inside.graph.blocks()] == \
        ["input", "conv2d", "relu", "output"]
    assert list(outside.state) == list(inside.state)
    assert all(torch.equal(outside.state[k], inside.state[k]) for k in inside.state)
    # a top-level nn.Sequential's layers are named "0", "1" in the file: their ids start with a name
    assert [b.id for b in outside.graph.blocks()] == ["input", "m_0", "m_1", "output"]
    assert torch.equal(outside.state["m_0.weight"], net[0].weight.detach())


def test_an_onnx_import_past_its_time_limit_is_one_message_and_exit_2(tmp_path, capsys, monkeypatch):
    _onnx_file(tmp_path / "small.onnx")
    why = problem(str(tmp_path / "small.onnx"), timeout_s=0.2)  # under the child's own start-up: always past it
    assert "did not finish within 0.2 s (is the file this big, or made to keep the importer busy?)" in why
    monkeypatch.setenv("BLOCK_BUILDER_IMPORT_TIMEOUT", "0.2")
    assert main(["import", str(tmp_path / "small.onnx"), "-o", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did not finish within 0.2 s" in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()


def test_the_childs_steps_are_followed_while_it_works(tmp_path, monkeypatch):
    """Issue 24: what the child does now (the module it captures) is this process's progress while it waits. The
    model's forward, once it runs for real (not under fx), holds the child until the test has seen that step:
    it reads a FIFO the test writes to then."""
    import os
    import threading

    from builder.importers import progress
    release = tmp_path / "release"
    os.mkfifo(release)
    (tmp_path / "held.py").write_text(
        "import torch\nfrom torch import nn\n\nRELEASED = []\n\n\nclass Held(nn.Module):\n"
        "    def forward(self, x):\n"
        "        if not RELEASED and not isinstance(x, torch.fx.Proxy):  # the capture: wait for the test\n"
        f"            RELEASED.append(open({str(release)!r}).read())\n"
        "        return torch.roll(x, 1, 2)\n\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.slow = Held()\n\n    def forward(self, x):\n        return self.slow(x) * 2\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    progress.reset()
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(imported=import_source("held:Net", (3, 8, 8),
                                                                                   timeout_s=120)))
    worker.start()
    seen = progress.wait_for("Capturing slow (Held): no kind stands for it", timeout=120)
    writer = threading.Thread(target=release.write_text, args=("go",), daemon=True)  # opens once the child reads
    writer.start()
    worker.join(150)
    if writer.is_alive():  # the child never read it: let the writer go
        os.close(os.open(release, os.O_RDONLY | os.O_NONBLOCK))
    writer.join(10)
    assert seen, progress.current()
    assert result["imported"].notes[0] == "slow: Held captured whole (held.Held)"
