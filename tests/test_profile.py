"""Measured latency per block (issue 15): every diagram block has a row, composites sum their inside, the rows add
up to about the whole forward (the figure is `python -m benchmarks profile`; here only a loose bound a busy
machine keeps), and the canvas's heat overlay follows the figures."""
import json

import pytest

import templates
from builder.cli import main
from builder.train.profile import profile

pytestmark = pytest.mark.timeout(240)


def test_every_block_has_a_row_and_the_rows_add_up():
    g = templates.build("googlenet", aux=False)
    result = profile(g, "cpu", batch_size=1, repeat=3, warmup=1)
    rows = {r["id"]: r for r in result["rows"]}
    assert set(rows) == set(g.ids())
    from builder.analysis import analyze
    assert rows["inception3a"]["ms"] > 0 and rows["inception3a"]["macs"] == analyze(g).blocks["inception3a"].macs
    assert rows["input"]["ms"] == 0 and rows["output"]["ms"] == 0
    assert sum(r["share"] for r in rows.values()) == pytest.approx(1.0)
    assert 0.3 < result["sum_ms"] / result["total_ms"] < 2.0  # a guard; the 10% figure is the benchmark's
    assert rows["conv3"]["gflops"] > 0


def test_cli_profile_json(capsys):
    assert main(["profile", "lenet5", "--repeat", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in result["rows"]} >= {"c1", "c3", "c5", "f6", "output_fc"}
    assert main(["profile", "lenet5", "--batch-size", "0"]) == 2


def test_the_heat_overlay_follows_the_figures(qtbot, tmp_path, monkeypatch):
    from builder.ui.main_window import MainWindow
    monkeypatch.setenv("BLOCK_BUILDER_CONFIG_DIR", str(tmp_path))
    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.undo_stack.setClean())
    win.show()
    win.open_template("lenet5")
    qtbot.waitUntil(lambda: not win.doc.analysis_pending, timeout=10000)
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
    win.scene.show_heat(None)
    assert {item.body_colour().name() for item in win.scene.blocks.values()} == {"#ffffff"}
