"""Measured latency per block (issue 15): every diagram block has a row, composites sum their inside, the rows add
up to about the whole forward (the figure is `python -m benchmarks profile`; here only a loose bound a busy
machine keeps), and the canvas's heat overlay follows the figures."""
import json

import pytest
from PySide6.QtCore import Qt

import templates
from builder.cli import main
from builder.train.profile import profile

pytestmark = pytest.mark.timeout(240)


def test_every_block_has_a_row_and_the_rows_add_up():
    g = templates.build("googlenet", aux=False)
    result = profile(g, "cpu", batch_size=1, repeat=3, warmup=1)
    rows = {r["id"]: r for r in result["rows"]}
    assert set(rows) == set(g.ids())
    from builder.core.analysis import analyze
    assert rows["inception3a"]["ms"] > 0 and rows["inception3a"]["macs"] == analyze(g).blocks["inception3a"].macs
    assert rows["input"]["ms"] == 0 and rows["output"]["ms"] == 0
    assert sum(r["share"] for r in rows.values()) == pytest.approx(1.0)
    assert 0.3 < result["sum_ms"] / result["total_ms"] < 2.0  # a guard; the 10% figure is the benchmark's
    assert rows["conv3"]["gflops"] > 0


def test_cli_profile_json(capsys):
    assert main(["profile", "lenet5", "--repeat", "2", "--json", "--backward"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in result["rows"]} >= {"c1", "c3", "c5", "f6", "output_fc"}
    rows = {r["id"]: r for r in result["rows"]}
    assert rows["c1"]["backward_ms"] > 0 and rows["input"]["backward_ms"] == 0
    assert 0 < result["backward_sum_ms"] <= result["backward_timed_total_ms"] * (1 + 1e-9)
    assert main(["profile", "lenet5", "--batch-size", "0"]) == 2


def test_the_heat_overlay_follows_the_figures(qtbot, make_window):
    win = make_window("lenet5")
    before = {bid: item.body_colour().name() for bid, item in win.scene.blocks.items()}
    assert set(before.values()) == {"#ffffff"}
    with qtbot.waitSignal(win.profiled, timeout=120000) as got:
        win.act_profile.trigger()
    result = got.args[0]
    ms = {r["id"]: r["ms"] for r in result["rows"]}
    slowest = max(ms, key=ms.get)
    colours = {bid: item.body_colour() for bid, item in win.scene.blocks.items()}
    assert colours[slowest].name() != "#ffffff"
    # the slower a block, the redder (less green) its body
    ordered = sorted((b for b in ms if b in colours), key=ms.get)
    greens = [colours[b].green() for b in ordered]
    assert greens == sorted(greens, reverse=True)
    # the Layers table sets the measured times beside the MACs
    qtbot.waitUntil(lambda: win.layers.model.columnCount() > 8, timeout=5000)
    header = [win.layers.model.headerData(c, Qt.Horizontal) for c in range(win.layers.model.columnCount())]
    assert header.index("forward ms") == header.index("FLOPs") + 1  # beside the analytic cost
    assert {"forward ms", "share", "GFLOP/s", "backward ms"} <= set(header)
    rows = {win.layers.model.text(r, 0).strip(): r for r in range(win.layers.model.rowCount())}
    shown = win.layers.model.text(rows[slowest], header.index("forward ms"))
    assert shown == f"{ms[slowest]:.2f}"
    win.clear_profile()
    assert {item.body_colour().name() for item in win.scene.blocks.values()} == {"#ffffff"}
    assert "forward ms" not in [win.layers.model.headerData(c, Qt.Horizontal)
                                for c in range(win.layers.model.columnCount())]


def test_backward_times_with_in_place_activations_and_residual_adds():
    """ResNet-50 (in-place ReLUs after hooked convolutions, residual adds): every block with parameters has a
    backward time, and the model's in-place flags are as they were after profiling."""
    result = profile(templates.build("resnet18"), "cpu", batch_size=1, repeat=2, warmup=1, backward=True)
    rows = {r["id"]: r for r in result["rows"]}
    assert rows["conv1"]["backward_ms"] > 0 and rows["layer1.0"]["backward_ms"] > 0 and rows["fc"]["backward_ms"] > 0


def test_the_blocks_add_up_to_at_most_their_own_timed_runs():
    """By construction: each timed run's blocks are disjoint intervals inside that run, and the rows are means
    over the same runs, so (with no merges timed apart) they never add up to more than those runs took."""
    result = profile(templates.build("lenet5"), "cpu", batch_size=4, repeat=5, warmup=1)
    assert 0 < result["sum_ms"] <= result["timed_total_ms"] * (1 + 1e-9)
