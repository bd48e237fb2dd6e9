"""Measured latency per block: the compiled network runs on the chosen device with a timer around every block's
module (forward hooks; CUDA events on a GPU, a synchronised clock elsewhere), merges (concat, add, multiply: no
module) timed on their own inputs; times are summed per diagram block (a composite is the sum of its inside) and
set beside the analytic MACs: milliseconds, achieved GFLOP/s, share of the total."""
from __future__ import annotations

import statistics
import time

import torch

from blocks import REGISTRY

from ..core.analysis import analyze
from ..backend.compiler import compile_graph
from ..core.ir import lower


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


class _BlockTimer:
    """Times each block between its 'before' and 'after' hooks while a timed run is on. The intervals are read
    when the run ends (CUDA events can only be read once the work is done), summed per block (a module called
    twice counts twice)."""

    def __init__(self, clock):
        self.clock = clock
        self.on = False
        self.starts: dict = {}
        self.pairs: dict = {}

    def before(self, bid):
        if self.on:
            self.starts[bid] = self.clock.now()

    def after(self, bid):
        if self.on and bid in self.starts:
            self.pairs.setdefault(bid, []).append((self.starts.pop(bid), self.clock.now()))

    def start(self):
        self.starts, self.pairs, self.on = {}, {}, True

    def stop(self) -> dict:
        self.on = False
        return {bid: sum(self.clock.ms(a, b) for a, b in pairs) for bid, pairs in self.pairs.items()}


def _attach(flat, modules, timer, backward: bool) -> list:
    """The timer's hooks on every diagram block's module (forward, or the full backward pass)."""
    hooks = []
    for fb in flat:
        m = modules.get(fb.id)
        if m is None:
            continue
        if backward:
            hooks.append(m.register_full_backward_pre_hook(lambda _m, _g, bid=fb.id: timer.before(bid)))
            hooks.append(m.register_full_backward_hook(lambda _m, _gi, _go, bid=fb.id: timer.after(bid)))
        else:
            hooks.append(m.register_forward_pre_hook(lambda _m, _i, bid=fb.id: timer.before(bid)))
            hooks.append(m.register_forward_hook(lambda _m, _i, _o, bid=fb.id: timer.after(bid)))
    return hooks


def _middle_means(runs):
    """(mean run time, {block: mean time}) over the middle runs by their time (the fastest and slowest fifth
    dropped): block means over the same runs add up exactly to the mean of those runs' sums."""
    runs = sorted(runs, key=lambda r: r[0])
    cut = len(runs) // 5
    kept = runs[cut:len(runs) - cut] or runs
    blocks = {bid for r in kept for bid in r[1]}
    return (sum(r[0] for r in kept) / len(kept),
            {bid: sum(r[1].get(bid, 0.0) for r in kept) / len(kept) for bid in blocks})


def _scalar(out):
    """A number that depends on every output (the backward pass starts from it)."""
    if isinstance(out, torch.Tensor):
        return out.float().sum()
    values = out.values() if isinstance(out, dict) else out
    return sum(_scalar(v) for v in values)


def profile(graph, device: str = "cpu", batch_size: int = 1, repeat: int = 10, warmup: int = 3,
            backward: bool = False) -> dict:
    """{"rows": [per diagram block: id, kind, ms, share, macs, gflops (and backward_ms)], "total_ms", "sum_ms",
    "device", ...}. With ``backward``, each block's backward pass is timed too (full backward hooks: from the
    gradient of its output arriving to the gradient of its input leaving), beside the whole backward."""
    from .engine import pick_device
    dev = pick_device(device)
    a = analyze(graph)
    flat = lower(graph, a).nodes
    model = compile_graph(graph, a).to(dev).eval()
    shape = model.input_shapes[0]
    x = torch.randn(batch_size, *shape, device=dev)
    clock = _Clock(dev)
    timer = _BlockTimer(clock)
    modules = dict(model.named_modules())
    owner = {n.id: n.block for n in flat}
    hooks = _attach(flat, modules, timer, backward=False)
    # Timed runs alternate with plain ones, so a machine that slows down or speeds up affects both alike. Each
    # timed run's blocks are disjoint intervals inside its forward: their sum is at most that run's time.
    runs, plain = [], []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        for _ in range(repeat):
            t0 = clock.now()
            model(x)
            plain.append(clock.ms(t0, clock.now()))
            timer.start()
            t0 = clock.now()
            model(x)
            t1 = clock.now()
            runs.append((clock.ms(t0, t1), timer.stop()))
    timed_total, per_block = _middle_means(runs)
    back = _backward(model, x, flat, modules, _BlockTimer(clock), warmup, repeat) if backward else None
    for h in hooks:
        h.remove()
    # merges have no module: each is timed on tensors of its own input shapes
    for fb in flat:
        spec = REGISTRY[fb.kind]
        if fb.id in per_block or spec.forward is None:
            continue
        # the kind's own forward expression (the one the generated code runs), over the list ``ts``
        spec_forward = eval("lambda ts: " + spec.forward([f"ts[{i}]" for i in range(len(fb.in_shapes))]),
                            {"torch": torch})
        ins = [torch.randn(batch_size, *s, device=dev) for s in fb.in_shapes]
        per_block[fb.id] = clock.median_ms(lambda: spec_forward(ins), warmup, repeat)
        if back is not None:  # and its backward: the gradient of the output handed back to each input
            leaves = [t.requires_grad_(True) for t in ins]
            out = spec_forward(leaves)
            grad = torch.randn_like(out)
            back["blocks"][fb.id] = clock.median_ms(
                lambda: torch.autograd.grad(out, leaves, grad, retain_graph=True), warmup, repeat)
    total = statistics.median(plain)  # the whole network without timers, for the check that the rows add up
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
    if back is not None:
        for r in rows.values():
            r["backward_ms"] = 0.0
        for fb_id, ms in back["blocks"].items():
            top = owner.get(fb_id, fb_id)
            if top in rows:
                rows[top]["backward_ms"] += ms
    summed = sum(r["ms"] for r in rows.values())
    for r in rows.values():
        r["share"] = r["ms"] / summed if summed else 0.0
        r["gflops"] = (2 * r["macs"] / (r["ms"] * 1e-3) / 1e9) if r["ms"] > 0 else None
    result = {"device": str(dev), "batch_size": batch_size, "repeat": repeat, "total_ms": total, "sum_ms": summed,
              "timed_total_ms": timed_total, "rows": list(rows.values())}
    if back is not None:
        result.update(backward_total_ms=back["total"], backward_sum_ms=sum(r["backward_ms"] for r in rows.values()),
                      backward_timed_total_ms=back["timed_total"])
    return result


def _backward(model, x, flat, modules, timer, warmup, repeat) -> dict:
    """Per-block backward times: plain and timed backward passes alternate, like the forward's."""
    clock = timer.clock
    x = x.detach().clone().requires_grad_(True)  # so the first block's input gradient is computed (and timed)
    # a hooked module's output may not be overwritten in place (autograd refuses it): in-place activations are
    # switched off while timing (the same values; only memory differs), and back on after
    inplace = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in inplace:
        m.inplace = False
    hooks = _attach(flat, modules, timer, backward=True)
    plain, runs = [], []
    try:
        for i in range(warmup + repeat):
            for timed in (False, True):
                loss = _scalar(model(x))
                if timed:
                    timer.start()
                t0 = clock.now()
                loss.backward()
                elapsed = clock.ms(t0, clock.now())
                blocks = timer.stop() if timed else None
                model.zero_grad(set_to_none=True)
                x.grad = None
                if i >= warmup:
                    (runs.append((elapsed, blocks)) if timed else plain.append(elapsed))
    finally:
        for h in hooks:
            h.remove()
        for m in inplace:
            m.inplace = True
    timed_total, blocks = _middle_means(runs)
    return {"total": statistics.median(plain), "timed_total": timed_total, "blocks": blocks}
