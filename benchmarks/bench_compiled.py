"""Eval-forward and train-step time of the compiled GoogLeNet and Inception-v3 against torchvision's
hand-written modules, measured alternately in the same run (target ratio >= 0.97 on CPU: ours / theirs in
throughput, i.e. torchvision's time / ours).
Run: .venv/bin/python -m benchmarks compiled
"""
from __future__ import annotations

import statistics
import time

import templates
from builder.backend.compiler import compile_graph

from .common import report


def _pair_times(fn_a, fn_b, rounds):
    """Interleave A and B so that machine noise hits both alike; medians."""
    ta, tb = [], []
    for _ in range(rounds):
        for fn, out in ((fn_a, ta), (fn_b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def run(rounds: int = 7, batch: int = 8):
    import torch
    import torchvision

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    figures = {"threads": torch.get_num_threads(), "batch": batch}
    cases = [("googlenet", lambda: torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True),
              224), ("inception_v3", lambda: torchvision.models.inception_v3(weights=None, aux_logits=True,
                                                                              init_weights=True), 299)]
    for name, make, size in cases:
        ref = make()
        ours = compile_graph(templates.build(name))
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 1000, (batch,))

        def fwd(m):
            m.eval()
            with torch.no_grad():
                m(x)

        def step(m, opt):
            m.train()
            out = m(x)
            if not isinstance(out, torch.Tensor):
                out = out[0] if isinstance(out, tuple) else out.logits
            loss = torch.nn.functional.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        opt_ours = torch.optim.SGD(ours.parameters(), lr=1e-4)
        opt_ref = torch.optim.SGD(ref.parameters(), lr=1e-4)
        for _ in range(2):
            fwd(ours), fwd(ref), step(ours, opt_ours), step(ref, opt_ref)
        f_ours, f_ref = _pair_times(lambda: fwd(ours), lambda: fwd(ref), rounds)
        s_ours, s_ref = _pair_times(lambda: step(ours, opt_ours), lambda: step(ref, opt_ref), rounds)
        figures.update({
            f"{name}_eval_forward_ms_ours": f_ours * 1e3, f"{name}_eval_forward_ms_torchvision": f_ref * 1e3,
            f"{name}_eval_ratio": f_ref / f_ours,
            f"{name}_train_step_ms_ours": s_ours * 1e3, f"{name}_train_step_ms_torchvision": s_ref * 1e3,
            f"{name}_train_ratio": s_ref / s_ours,
        })
    figures["target_ratio"] = 0.97
    return report("compiled", figures)


if __name__ == "__main__":
    run()
