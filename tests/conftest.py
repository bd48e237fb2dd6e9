import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Under pytest-xdist every worker is its own process with its own settings folder, and one thread for torch:
# the workers already share the cores, so more threads only make them wait on each other.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
os.environ.setdefault("BLOCK_BUILDER_CONFIG_DIR", str(Path(__file__).parent / f".config-test{_WORKER}"))
if _WORKER:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    try:
        import torch
        torch.manual_seed(0)
    except ImportError:
        pass
    yield


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    """``make_window(template=None, size=None, new=False, show=True)``: a main window with the test's own settings
    folder, optionally sized, with a new file or a template open (analysed), shown and exposed; closed at the end
    of the test without a save prompt, its training child stopped."""
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path / "config"))

    def make(template=None, size=None, new=False, show=True):
        from builder.ui.main_window import MainWindow
        w = MainWindow()
        qtbot.addWidget(w, before_close_func=lambda w: (w.doc.undo_stack.setClean(), w.trainer.shutdown()))
        if size:
            w.resize(*size)
        if new:
            w.new_file()
        if show:
            w.show()
            qtbot.waitExposed(w)
        if template:
            w.open_template(template)
            qtbot.waitUntil(lambda: not w.doc.analysis_pending, timeout=10000)
        return w
    return make


def flops_macs(module, *inputs) -> int:
    """MACs as torch counts them: FlopCounterMode total / 2, under no_grad (inference_mode reports 0)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(*inputs)
    total = fc.get_total_flops()
    assert total % 2 == 0
    return total // 2


def pytest_sessionfinish(session, exitstatus):
    """Let Python drop stray Qt wrappers while the QApplication still exists, not during interpreter exit."""
    import gc
    gc.collect()


@pytest.fixture(scope="session")
def template_pair():
    """(torchvision reference, our compiled template) for the templates torchvision has, built once per session
    (per xdist worker) and shared by the tests that compare them: both stay in eval mode, and a test that needs
    matching weights loads the reference's into ours itself. The last four pairs are kept (VGG-16 alone is
    0.5 GB each)."""
    from functools import lru_cache

    import torchvision

    import templates
    from builder.backend.compiler import compile_graph
    makers = {
        "googlenet": lambda aux: torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=True),
        "inception_v3": lambda aux: torchvision.models.inception_v3(weights=None, aux_logits=aux,
                                                                    init_weights=True),
        "alexnet": lambda aux: torchvision.models.alexnet(),
        "vgg16": lambda aux: torchvision.models.vgg16(),
        "resnet18": lambda aux: torchvision.models.resnet18(),
        "resnet50": lambda aux: torchvision.models.resnet50(),
        "resnext50_32x4d": lambda aux: torchvision.models.resnext50_32x4d(),
    }

    @lru_cache(maxsize=4)
    def get(name, aux=False):
        ref = makers[name](aux).eval()
        g = templates.build(name, aux=aux)
        return ref, g, compile_graph(g).eval()
    get.names = tuple(makers)
    return get
