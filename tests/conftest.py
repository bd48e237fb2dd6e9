import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("BLOCK_BUILDER_CONFIG_DIR", str(Path(__file__).parent / ".config-test"))
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
