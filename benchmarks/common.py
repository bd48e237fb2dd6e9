"""Helpers for the benchmarks: medians of repeated timings, and a results file per benchmark."""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def median_time(fn, repeat: int = 20, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def report(name: str, figures: dict) -> dict:
    RESULTS.mkdir(exist_ok=True)
    doc = {"benchmark": name, "machine": platform.machine(), "python": platform.python_version(), **figures}
    (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"== {name}")
    for k, v in figures.items():
        print(f"  {k}: {v:.6g}" if isinstance(v, float) else f"  {k}: {v}")
    return doc
