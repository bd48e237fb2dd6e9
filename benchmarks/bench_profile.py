"""The latency profile's rows against the whole forward measured in the same run (issue 15: the blocks should
add up to within 10% of it), on the CPU at batch 1 and 8, for GoogLeNet, Inception-v3 and ResNet-50. Timed runs
alternate with untimed ones (the whole forward), so a machine that changes speed affects both alike; the same
for the backward pass (full backward hooks).

Run: .venv/bin/python -m benchmarks profile
"""
from __future__ import annotations


def run():
    import templates
    from builder.train.profile import profile

    from .common import report
    figures = {}
    for name in ("googlenet", "inception_v3", "resnet50"):
        for batch in (1, 8):
            r = profile(templates.build(name, aux=False), "cpu", batch, repeat=10, warmup=3, backward=True)
            figures[f"{name}_b{batch}_forward_ms"] = r["total_ms"]
            figures[f"{name}_b{batch}_blocks_sum_ms"] = r["sum_ms"]
            figures[f"{name}_b{batch}_sum_vs_whole"] = r["sum_ms"] / r["total_ms"]
            figures[f"{name}_b{batch}_backward_ms"] = r["backward_total_ms"]
            figures[f"{name}_b{batch}_backward_sum_vs_whole"] = r["backward_sum_ms"] / r["backward_total_ms"]
            slow = max(r["rows"], key=lambda x: x["ms"])
            figures[f"{name}_b{batch}_slowest_block"] = f"{slow['id']} ({slow['share'] * 100:.1f}%)"
    return report("profile", figures)


if __name__ == "__main__":
    run()
