"""Paper figures, against the graphviz DOT export of the same network measured in the same run (both read the
analysis and write text; DOT leaves the layout to graphviz, the figure does its own).

Networks: the four figures in docs/ (GoogLeNet, Inception-v3, ResNet-50, LeNet-5), Inception-v3 laid out layer by
layer (300+ blocks, every composite expanded), and stacks of 1,000 and 10,000 blocks with a residual add every four
(to show the growth is linear). Each figure: layout and SVG; the analysis is shared with the DOT export.
Run: .venv/bin/python -m benchmarks figure
"""
from __future__ import annotations

import templates
from builder.core.analysis import analyze
from exports.diagram import to_dot
from exports.figure import build_figure, render

from .bench_analysis import _stack, expanded_inception_v3
from .common import median_time, report


def _pair(graph, repeat):
    a = analyze(graph)
    t_fig = median_time(lambda: render(build_figure(graph, analysis=a), ".svg"), repeat=repeat, warmup=1)
    t_dot = median_time(lambda: to_dot(graph, a), repeat=repeat, warmup=1)
    return t_fig, t_dot


def run():
    figures = {}
    for name in ("lenet5", "googlenet", "inception_v3", "resnet50"):
        t_fig, t_dot = _pair(templates.build(name), 10)
        figures[f"{name}_figure_ms"] = t_fig * 1e3
        figures[f"{name}_figure_over_dot"] = t_fig / t_dot
    g = expanded_inception_v3()
    t_fig, t_dot = _pair(g, 5)
    figures.update({"expanded_inception_v3_blocks": len(g), "expanded_inception_v3_figure_ms": t_fig * 1e3,
                    "expanded_inception_v3_figure_over_dot": t_fig / t_dot})
    for n in (1_000, 10_000):
        t_fig, t_dot = _pair(_stack(n), 3 if n > 1000 else 5)
        figures[f"stack_{n}_figure_ms"] = t_fig * 1e3
        figures[f"stack_{n}_figure_over_dot"] = t_fig / t_dot
    figures["growth_1k_to_10k"] = figures["stack_10000_figure_ms"] / figures["stack_1000_figure_ms"]
    return report("figure", figures)
