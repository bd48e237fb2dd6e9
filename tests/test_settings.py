"""Training settings are declared once (builder/train/settings.py): the CLI's flags, the exported train.py's flags,
the Train panel's form and the argv it runs all come from Config's fields, and none of them needs torch."""
import argparse
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from PySide6.QtTest import QTest

from builder.train.settings import Config, add_arguments, config_argv, config_from_args, settings_fields

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(180)


def _flags(parser) -> set:
    return {s for a in parser._actions for s in a.option_strings}


def test_a_config_goes_to_flags_and_back_unchanged():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = Config(dataset="mnist", epochs=3, batch_size=32, recipe="adamw", device="cpu", max_steps=7, out="o",
                 resume=True, lr=0.25, weight_decay=0.0, label_smoothing=0.1, aux_weight=0.3, seed=9, val_split=0.2,
                 workers=0, amp=False, channels_last=True, compile=True, download=True, synthetic_size=64,
                 num_classes=4, log_every=2, weights="w.safetensors", freeze=("conv1", "fc"))
    argv = config_argv(cfg)
    assert config_from_args(parser.parse_args(argv)) == cfg
    assert argv.count("--freeze") == 2 and "--no-amp" in argv and "--channels-last" in argv
    # every field but the in-code overrides is a setting, with help text
    assert {f.name for f in settings_fields()} == {f.name for f in fields(Config)} - {"overrides"}
    assert all(f.metadata["help"] for f in settings_fields())


def test_the_cli_and_the_exported_train_py_take_the_same_flags(tmp_path):
    from builder import cli_commands  # noqa: F401  (registers train)
    from builder.cli import build_parser
    from exports import export_graph
    import templates
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    mine = argparse.ArgumentParser()
    add_arguments(mine)
    assert _flags(mine) <= _flags(train)
    written = export_graph(templates.build("lenet5"), "train", tmp_path / "out" / "train.py")  # out/ is made
    assert [p.name for p in written] == ["train.py", "model.py", "block_builder_train"]
    assert sorted(f.name for f in written[2].iterdir()) == ["__init__.py", "checkpoints.py", "data.py", "engine.py",
                                                             "files.py", "settings.py", "weights.py"]
    help_text = subprocess.run([sys.executable, str(tmp_path / "out" / "train.py"), "--help"], capture_output=True,
                               text=True, timeout=120, cwd=tmp_path).stdout
    exported = {f for f in _flags(mine) if f != "--freeze"}
    assert all(flag in help_text for flag in exported), sorted(f for f in exported if f not in help_text)


def test_the_window_opens_without_torch_or_pyqtgraph_and_its_form_is_config(tmp_path):
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]);"
            "from builder.ui.main_window import MainWindow; w = MainWindow(); w.open_template('googlenet'); w.show();"
            "app.processEvents(); app.processEvents(); import json; plots = 'pyqtgraph' in sys.modules;"
            "w.train_dock.raise_(); [app.processEvents() for _ in range(5)];"
            "print(json.dumps({'torch': 'torch' in sys.modules, 'fields': sorted(w.trainer.editors),"
            " 'pyqtgraph_at_start': plots, 'train_plots': w.trainer.plots.built,"
            " 'other_plots': [w.evaluation.plots.built, w.runs.plots.built, w.feature_maps.plots.built]}))")
    env = {"QT_QPA_PLATFORM": "offscreen", "BLOCK_BUILDER_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    # nor pyqtgraph: each panel's plots are made when its tab first comes to the front
    assert result["pyqtgraph_at_start"] is False and result["train_plots"] is True
    assert result["other_plots"] == [False, False, False]
    assert result["fields"] == sorted(f.name for f in settings_fields() if f.metadata["form"])


def test_the_panel_runs_the_argv_of_its_config_and_checks_as_you_type(make_window, monkeypatch):
    # one clock second for the run folder's name: config() and start() each name it (a busy machine can tick)
    monkeypatch.setattr("time.strftime", lambda fmt, t=None: "20261207-000000")
    w = make_window("lenet5")
    panel = w.trainer
    panel.more_button.click()
    lr = panel.editors["lr"]
    lr.setFocus()
    QTest.keyClicks(lr, "-1")
    assert "learning rate must be a number above 0" in panel.problems.text() and panel.problems.isVisible()
    assert not panel.start_button.isEnabled()
    lr.clear()
    QTest.keyClicks(lr, "0.5")
    assert panel.problems.isHidden() and panel.start_button.isEnabled()
    cfg = panel.config()
    assert cfg.lr == 0.5 and cfg.recipe == "lenet_sgd" and cfg.epochs == 2
    started = []
    monkeypatch.setattr("builder.ui.train_panel.QProcess.start", lambda self, exe, args: started.append(args))
    assert panel.start()
    args = started[0]
    i = args.index("--json")
    assert args[i + 1:-2] == config_argv(cfg) and "--lr" in args and args[args.index("--lr") + 1] == "0.5"
    panel.proc = None


def test_a_run_reports_typed_events_that_read_back_from_their_json_lines(tmp_path):
    import templates
    from builder.backend.compiler import compile_graph
    from builder.train.engine import train
    from builder.train.settings import (EVENTS, DoneEvent, EpochEvent, Exit, StartEvent, StepEvent, parse_event)
    events = []
    cfg = Config(dataset="synthetic", synthetic_size=64, batch_size=16, epochs=2, out=str(tmp_path / "run"),
                 workers=0, log_every=1)
    train(compile_graph(templates.build("lenet5")), cfg, events.append)
    kinds = [type(e) for e in events]
    assert kinds[0] is StartEvent and kinds[-1] is DoneEvent and StepEvent in kinds
    assert kinds.count(EpochEvent) == 2
    for e in events:
        again = parse_event(json.loads(json.dumps(e)))  # the wire format is the dict itself
        assert type(again) is type(e) and again == e
        assert all(getattr(again, f) == e[f] for f in type(e).required)
    done = events[-1]
    assert done.val_accuracy == done["val_accuracy"] and done.epoch == 2
    with pytest.raises(TypeError, match="missing message"):
        EVENTS["warning"]()
    with pytest.raises(TypeError, match="unknown colour"):
        EVENTS["error"](message="x", colour="red")
    assert parse_event({"event": "step", "step": 1}) is None and parse_event(["not", "an", "event"]) is None
    assert (Exit.OK, Exit.SETTINGS, Exit.TRAINING) == (0, 2, 3)
