"""Measured latency per block: the compiled network runs on the chosen device with a timer around every block's
module (forward hooks; CUDA events on a GPU, a synchronised clock elsewhere), merges (concat, add, multiply: no
module) timed on their own inputs; times are summed per diagram block (a composite is the sum of its inside) and
set beside the analytic MACs: milliseconds, achieved GFLOP/s, share of the total."""
from __future__ import annotations

import statistics
import time

import torch

from ..analysis import analyze
from ..compiler import compile_graph, flatten


class _Clock:
    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.mps = device.type == "mps"

    def now(self):
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        if self.mps:  # the work queued so far is done before the clock is read
            torch.mps.synchronize()
        return time.perf_counter()

    def ms(self, a, b) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return a.elapsed_time(b)
        return (b - a) * 1e3

    def median_ms(self, fn, warmup: int, repeat: int) -> float:
        """The median time of ``fn()`` over ``repeat`` runs after ``warmup`` untimed ones."""
        for _ in range(warmup):
            fn()
        samples = []
        for _ in range(repeat):
            t0 = self.now()
            fn()
            samples.append(self.ms(t0, self.now()))
        return statistics.median(samples)


def profile(graph, device: str = "cpu", batch_size: int = 1, repeat: int = 10, warmup: int = 3) -> dict:
    """{"rows": [per diagram block: id, kind, ms, share, macs, gflops], "total_ms", "sum_ms", "device", ...}."""
    from .engine import pick_device
    dev = pick_device(device)
    a = analyze(graph)
    flat, _, _ = flatten(graph, a)
    model = compile_graph(graph, a).to(dev).eval()
    shape = model.input_shapes[0]
    x = torch.randn(batch_size, *shape, device=dev)
    clock = _Clock(dev)
    times: dict = {}
    starts: dict = {}
    hooks = []
    modules = dict(model.named_modules())
    owner = {fb.id: (fb.group or fb.id) for fb in flat}
    for fb in flat:
        m = modules.get(fb.id)
        if m is None:
            continue
        hooks.append(m.register_forward_pre_hook(lambda _m, _i, bid=fb.id: starts.__setitem__(bid, clock.now())))
        hooks.append(m.register_forward_hook(
            lambda _m, _i, _o, bid=fb.id: times.setdefault(bid, []).append((starts[bid], clock.now()))))
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times.clear()
        for _ in range(repeat):
            model(x)
    for h in hooks:
        h.remove()
    per_block = {bid: statistics.median(clock.ms(s, e) for s, e in pairs) for bid, pairs in times.items()}
    # merges have no module: each is timed on tensors of its own input shapes
    for fb in flat:
        if fb.id in per_block or fb.type in ("input", "output"):
            continue
        spec_forward = {"concat": lambda ts: torch.cat(ts, 1), "add": lambda ts: sum(ts[1:], ts[0]),
                        "mul": lambda ts: torch.stack(torch.broadcast_tensors(*ts)).prod(0)}.get(fb.type)
        if spec_forward is None:
            continue
        ins = [torch.randn(batch_size, *s, device=dev) for s in fb.in_shapes]
        per_block[fb.id] = clock.median_ms(lambda: spec_forward(ins), warmup, repeat)
    with torch.no_grad():  # the whole network without timers, for the check that the rows add up
        total = clock.median_ms(lambda: model(x), warmup, repeat)
    rows = {}
    for bid in graph.ids():
        rep = a.blocks.get(bid)
        if rep is None or not rep.inference and not rep.training:
            continue
        rows[bid] = {"id": bid, "kind": graph.block(bid).type, "ms": 0.0, "macs": rep.macs * batch_size}
    for fb_id, ms in per_block.items():
        top = owner.get(fb_id, fb_id)
        if top in rows:
            rows[top]["ms"] += ms
    summed = sum(r["ms"] for r in rows.values())
    for r in rows.values():
        r["share"] = r["ms"] / summed if summed else 0.0
        r["gflops"] = (2 * r["macs"] / (r["ms"] * 1e-3) / 1e9) if r["ms"] > 0 else None
    return {"device": str(dev), "batch_size": batch_size, "repeat": repeat, "total_ms": total, "sum_ms": summed,
            "rows": list(rows.values())}
