"""Search under a budget: choices checked against the kinds' parameters, the cost range equal to the analysis of
every combination, candidates over budget pruned before training, trials that train become runs, best.json the
best design within budget, resume after a stop, and two worker processes on one study."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from builder.cli import main as cli
from builder.core import project
from builder.core.analysis import analyze
from builder.runs import find_runs
from builder.search.space import SpaceError, choice, choices, cost_range, with_choices
from templates import build

pytestmark = pytest.mark.timeout(600)
FAST = ["--epochs", "1", "--max-steps", "2", "--dataset", "synthetic", "--batch-size", "16"]
WIDTHS = ["--choice", "c1.out_channels=4,6,8", "--choice", "c1.kernel=3,5"]


def test_choices_are_checked_against_the_kinds_parameters():
    g = build("lenet5")
    c = choice(g, "c1.kernel", [3, "1x3", 5])
    assert c.values == ((3, 3), (1, 3), (5, 5)) and c.block == "c1" and c.param == "kernel"
    assert choice(g, "train.lr", [0.1, "0.01"]).values == (0.1, 0.01)
    for name, vals, message in (
            ("c9.kernel", [3, 5], "no block 'c9'"),
            ("c1.colour", [3, 5], "has no parameter 'colour'"),
            ("c1.out_channels", [4, 0], "candidate 0"),
            ("c1.out_channels", [4], "at least two candidates"),
            ("train.momentum", [0.9, 0.8], "training settings that can be searched"),
            ("train.lr", [0.1, -1], "-1.0 is out of range"),
            ("kernel", [3, 5], "BLOCK.PARAM")):
        with pytest.raises(SpaceError, match=message):
            choice(g, name, vals)


def test_the_project_keeps_its_choices_and_the_command_line_adds_to_them(tmp_path):
    g = build("lenet5")
    g.meta["search"] = {"choices": {"c1.out_channels": [4, 6], "c3.out_channels": [8, 16]}}
    project.save(g, tmp_path / "p.json")
    again = project.load(tmp_path / "p.json")
    space = choices(again, ["c1.out_channels=6,10"])
    assert [(c.name, c.values) for c in space] == [("c1.out_channels", (6, 10)), ("c3.out_channels", (8, 16))]


def test_the_cost_range_is_the_analysis_of_every_combination():
    g = build("lenet5")
    space = [choice(g, "c1.out_channels", [4, 6, 8]), choice(g, "c3.kernel", [3, 5])]
    costs = cost_range(g, space)
    macs, params = {}, {}
    for w in (4, 6, 8):
        for k in (3, 5):
            combo = (("c1.out_channels", w), ("c3.kernel", (k, k)))
            cand, _ = with_choices(g, dict(combo))
            a = analyze(cand)
            macs[combo], params[combo] = a.inference.macs, a.inference.params
    assert costs.exact and costs.combos == 6 and costs.valid == 6
    assert costs.macs == (min(macs.values()), max(macs.values()))
    assert costs.params == (min(params.values()), max(params.values()))
    assert costs.cheapest == dict(min(macs, key=macs.get))


def test_a_search_prunes_over_budget_trains_the_rest_as_runs_and_writes_the_best(tmp_path, capsys):
    out = tmp_path / "study"
    budget = 400_000
    assert cli(["search", "lenet5", "--trials", "6", "--out", str(out), "--budget-macs", "400K", *WIDTHS, *FAST]) == 0
    doc = json.loads((out / "trials.json").read_text())
    trials = doc["trials"]
    assert [t["number"] for t in trials] == list(range(6))
    for t in trials:
        cand, _ = with_choices(build("lenet5"), {k: tuple(v) if isinstance(v, list) else v
                                                  for k, v in t["choices"].items()})
        assert t["macs"] == analyze(cand).inference.macs
        if t["macs"] > budget:
            assert t["state"] == "pruned" and "over the budget of 400,000" in t["why"] and t["run"] is None
        else:
            assert t["state"] == "complete" and 0 <= t["val_accuracy"] <= 1
    trained = {t["run"] for t in trials if t["state"] == "complete"}
    runs = {str(r.folder) for r in find_runs(out)}
    assert trained <= runs and runs  # every trained trial is a run the Runs dock lists
    best = project.load(out / "best.json")
    top = max((t for t in trials if t["state"] == "complete"), key=lambda t: (t["val_accuracy"], -t["macs"]))
    assert best.block("c1").params["out_channels"] == top["choices"]["c1.out_channels"]
    assert analyze(best).inference.macs <= budget
    svg = (out / "pareto.svg").read_text()
    assert "<svg" in svg and (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pruned before training" in capsys.readouterr().out


def test_a_budget_no_candidate_meets_names_the_cheapest(tmp_path, capsys):
    assert cli(["search", "lenet5", "--trials", "3", "--out", str(tmp_path / "s"), "--budget-macs", "100K",
                *WIDTHS, *FAST]) == 2
    err = capsys.readouterr().err
    assert "no candidate is within the budget: the cheapest (c1.out_channels=4, c1.kernel=3x3) has" in err
    assert "284,920 MACs" in err
    assert not (tmp_path / "s" / "study.db").exists()


def test_an_unknown_choice_is_one_message(tmp_path, capsys):
    assert cli(["search", "lenet5", "--trials", "3", "--out", str(tmp_path / "s"), "--choice", "c1.colour=1,2",
                *FAST]) == 2
    assert "c1.colour: c1 (Conv2d) has no parameter 'colour'" in capsys.readouterr().err


def test_a_stopped_study_resumes_with_its_trials_kept(tmp_path, capsys):
    out = tmp_path / "study"
    assert cli(["search", "lenet5", "--trials", "2", "--out", str(out), *WIDTHS, *FAST]) == 0
    first = json.loads((out / "trials.json").read_text())["trials"]
    assert cli(["search", "lenet5", "--trials", "4", "--out", str(out), *WIDTHS, *FAST]) == 2
    assert "--resume continues it" in capsys.readouterr().err
    assert cli(["search", "lenet5", "--trials", "4", "--out", str(out), "--resume", *WIDTHS, *FAST]) == 0
    assert "resuming: 2 trial(s) done, 2 to go" in capsys.readouterr().out
    after = json.loads((out / "trials.json").read_text())["trials"]
    assert len(after) == 4 and after[:2] == first


def test_a_candidate_that_breaks_a_principle_is_pruned_when_asked(tmp_path):
    out = tmp_path / "study"
    assert cli(["search", "lenet5", "--trials", "4", "--out", str(out), "--keep-principles",
                "--choice", "c3.out_channels=2,16", *FAST]) == 0
    trials = json.loads((out / "trials.json").read_text())["trials"]
    narrow = [t for t in trials if t["choices"]["c3.out_channels"] == 2]
    assert narrow and all(t["state"] == "pruned" and "breaks a design principle" in t["why"]
                          and "bottleneck at c3" in t["why"] for t in narrow)


def test_two_worker_processes_share_one_study_and_find_every_trial_once(tmp_path):
    journal = tmp_path / "study.journal"
    args = [sys.executable, "-m", "builder", "search", "lenet5", "--trials", "6", "--storage", f"journal:{journal}",
            "--choice", "c1.out_channels=2,3,4,5,6,7,8", "--choice", "c3.out_channels=8,12,16", *FAST]
    procs = [subprocess.Popen(args + ["--out", str(tmp_path / f"w{i}"), "--seed", str(i), "--resume"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=500) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    study = optuna.load_study(study_name="block-builder:LeNet-5",
                              storage=JournalStorage(JournalFileBackend(str(journal))))
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers))) and 6 <= len(numbers) <= 7  # each trial once, no gaps
    logged = [line.split(":")[0] for o in outs for line in o[0].splitlines() if line.startswith("trial ")]
    assert len(logged) == len(set(logged)) == len(numbers)  # each trial run by one worker only


def test_bad_studies_are_one_message_before_anything_trains(tmp_path, capsys):
    out = tmp_path / "study"
    assert cli(["search", "lenet5", "--trials", "1", "--out", str(out), *WIDTHS, *FAST]) == 0
    capsys.readouterr()
    cases = [
        (["search", "resnet18", "--trials", "2", "--out", str(out), "--choice", "conv1.out_channels=32,64"],
         "holds a study of 'LeNet-5', not of 'ResNet-18': choose another --out"),
        (["search", "lenet5", "--trials", "2", "--out", str(out), "--resume", "--choice", "c1.out_channels=4,6"],
         "searched other choices (c1.out_channels=['4', '6', '8'], c1.kernel=['3x3', '5x5'])"),
        (["search", "lenet5", "--trials", "2", "--out", str(tmp_path / "x"), "--storage", "nosuchdb://nowhere",
          *WIDTHS], "--storage nosuchdb://nowhere: Optuna cannot open it"),
        (["search", "lenet5", "--trials", "2", "--out", str(tmp_path / "y"), "--choice", "c1.out_channels="],
         "no candidates after '='"),
        (["search", "lenet5", "--trials", "2", "--out", str(tmp_path / "z")], "nothing to search"),
    ]
    for args, message in cases:
        assert cli(args + FAST) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (message, err)
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert len(trials) == 1  # nothing more was trained


def test_structure_choices_leave_out_a_block_or_a_head_and_repeat_one():
    g = build("googlenet")
    g2, _ = with_choices(g, {"aux1.present": False, "dropout.present": False, "inception4b.repeat": 3})
    a = analyze(g2)
    assert a.ok and "aux1" not in g2 and "aux1_out" not in g2 and "dropout" not in g2
    assert [b for b in a.blocks if b.startswith("inception4b")] == ["inception4b", "inception4b_2", "inception4b_3"]
    assert g2.inputs("inception4b_2") == [(g2.inputs("inception4b_2")[0][0], "inception4b")]
    base = analyze(g)
    extra = 2 * base.blocks["inception4b"].params
    assert a.inference.params == base.inference.params + extra
    assert a.training.params == base.training.params + extra - base.blocks["aux1"].params
    with pytest.raises(SpaceError, match="only a block whose output has its input's shape"):
        choice(g, "conv1.present", [True, False])
    with pytest.raises(SpaceError, match="can repeat in a chain"):
        choice(g, "maxpool1.repeat", [1, 2])
    space = [choice(g, "inception4b.repeat", [1, 2]), choice(g, "aux2.present", [True, False])]
    costs = cost_range(g, space)
    assert costs.combos == 4 and costs.params == (base.inference.params, base.inference.params
                                                  + base.blocks["inception4b"].params)


def test_two_objectives_give_a_pareto_front_with_nsga2(tmp_path):
    out = tmp_path / "study"
    assert cli(["search", "lenet5", "--trials", "4", "--out", str(out), "--objectives", "accuracy,macs",
                *WIDTHS, *FAST]) == 0
    import optuna
    study = optuna.load_study(study_name="block-builder:LeNet-5", storage=f"sqlite:///{out / 'study.db'}")
    assert study.user_attrs["sampler"] == "NSGAIISampler"
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert done and all(t.values[1] == t.user_attrs["macs"] for t in done)
    assert (out / "pareto.svg").exists() and (out / "best.json").exists()
