"""The exported code against the compiled module and against torchvision's own Inception-v3: peak memory of one
eval forward (batch 16, 299x299; target: within 10%: the generated forward names a value only where it is read
again, so it frees what torchvision's frees), and export time against graph size (a 10,000-block chain within
15x of a 1,000-block chain: linear). The compiled module is the exported code (one back end), so their figures
differ only by noise; torchvision's is the reference. Each memory figure is measured in a fresh process (the
peak resident set above the model's own). Run: .venv/bin/python -m benchmarks export
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PEAK = r"""
import json, resource, sys, importlib.util
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(2)
import templates
from builder.backend.compiler import compile_graph
g = templates.build("inception_v3")
if {which!r} == "compiled":
    model = compile_graph(g).eval()
elif {which!r} == "torchvision":
    import torchvision
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).eval()
else:
    spec = importlib.util.spec_from_file_location("exported", {path!r})
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    model = mod.build_model().eval()
x = torch.randn(16, 3, 299, 299)
with torch.no_grad():
    model(x[:1])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model(x)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"peak_kib": after - before}}))
"""


def _peak(which: str, path: Path) -> float:
    code = PEAK.format(root=str(ROOT), which=which, path=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_kib"] / 1024


def _chain(n: int):
    from builder.core.graph import Graph
    g = Graph("chain")
    prev = g.add_block("input", {"channels": 4, "height": 8, "width": 8}, "input")
    kinds = ["conv2d", "batchnorm2d", "relu"]
    for i in range(n):
        kind = kinds[i % 3]
        bid = g.add_block(kind, {"out_channels": 4, "kernel": 3, "padding": 1} if kind == "conv2d" else {}, f"b{i}")
        g.connect(prev, bid)
        prev = bid
    g.add_block("output", {}, "output")
    g.connect(prev, "output")
    return g


def run():
    import templates
    from exports.pytorch import generate

    from .common import report
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "v3.py"
        path.write_text(generate(templates.build("inception_v3")))
        compiled = min(_peak("compiled", path) for _ in range(2))
        exported = min(_peak("exported", path) for _ in range(2))
        reference = min(_peak("torchvision", path) for _ in range(2))
    times = {}
    for n in (1_000, 10_000):
        g = _chain(n)
        t = time.perf_counter()
        generate(g)
        times[n] = time.perf_counter() - t
    return report("export", {
        "inception_v3_eval_b16_peak_mib_compiled": compiled, "inception_v3_eval_b16_peak_mib_exported": exported,
        "inception_v3_eval_b16_peak_mib_torchvision": reference,
        "peak_ratio_exported_vs_compiled": exported / compiled,
        "peak_ratio_compiled_vs_torchvision": compiled / reference, "target_peak_ratio": 1.10,
        "export_1000_blocks_s": times[1_000], "export_10000_blocks_s": times[10_000],
        "export_ratio_10000_vs_1000": times[10_000] / times[1_000], "target_ratio": 15.0,
    })


if __name__ == "__main__":
    run()
