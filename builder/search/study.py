"""A search under a budget with Optuna: every trial picks one candidate of each choice; a candidate over budget,
with errors, or (when asked) breaking an Inception design principle the design keeps is pruned before anything
trains; the others train in a child process through the normal trainer and become runs (``DIR/trial-N``).

DIR holds ``study.db`` (Optuna's SQLite storage, unless ``--storage`` names another), ``trials.json`` (every
trial: its choices, params, MACs, validation accuracy and state), ``best.json`` (the best design within budget:
a project file with the choices fixed) and ``pareto.svg`` / ``pareto.png`` (accuracy against MACs, the front
marked). Killed at any moment, a study continues with ``resume``: finished trials are kept, the one that was
running is counted failed (its heartbeat stopped) and tried again.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from builder.core import project
from builder.core.analysis import Analyzer
from builder.core.errors import GraphEditError
from builder.core.files import write_bytes

from .space import Choice, cost_range, describe, shown, with_choices

HEARTBEAT_S = 10


class SearchError(ValueError):
    """A search that cannot start: one message naming the problem."""


@dataclass
class Budget:
    macs: int | None = None
    params: int | None = None
    latency_ms: float | None = None

    def over(self, params: int, macs: int, latency=None) -> str | None:
        """Why a candidate is over budget, or None."""
        if self.macs is not None and macs > self.macs:
            return f"{macs:,} MACs, over the budget of {self.macs:,}"
        if self.params is not None and params > self.params:
            return f"{params:,} params, over the budget of {self.params:,}"
        if self.latency_ms is not None and latency is not None and latency > self.latency_ms:
            return f"{latency:.2f} ms, over the budget of {self.latency_ms:g} ms"
        return None


@dataclass
class Plan:
    graph: object
    space: list                      # [Choice]
    out: Path
    trials: int
    epochs: int = 1
    max_steps: int = 0
    dataset: str = "synthetic"
    budget: Budget = field(default_factory=Budget)
    objectives: tuple = ("accuracy",)  # or ("accuracy", "macs")
    keep_principles: bool = False
    storage: str | None = None
    workers: int = 1
    seed: int = 0
    resume: bool = False
    train_args: tuple = ()           # further flags for `block-builder train` (--device, --batch-size, ...)
    log: object = print


def storage_url(plan: Plan):
    """Optuna's storage: the URL given (PostgreSQL, MySQL, sqlite:///...; ``journal:PATH`` for a journal file
    several processes share), else DIR/study.db; RDB storages keep a heartbeat, so a killed trial is noticed."""
    url = plan.storage or f"sqlite:///{(plan.out / 'study.db').resolve()}"
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        return JournalStorage(JournalFileBackend(url[len("journal:"):]))
    import warnings

    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    try:
        with warnings.catch_warnings():  # the heartbeat is marked experimental; it is what resuming needs
            warnings.simplefilter("ignore")
            return RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=2 * HEARTBEAT_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as e:  # noqa: BLE001  a URL Optuna cannot open: one message
        raise SearchError(f"--storage {url}: Optuna cannot open it ({str(e).splitlines()[0][:300]})") from None


def study_name(graph) -> str:
    return f"block-builder:{graph.name}"


def check(plan: Plan) -> None:
    """Everything that can be wrong before any trial: no choices, a budget no candidate meets (naming the
    cheapest), a folder that cannot be written."""
    if not plan.space:
        raise SearchError("nothing to search: mark choices on the diagram or give --choice BLOCK.PARAM=v1,v2")
    if plan.trials < 1:
        raise SearchError(f"--trials must be at least 1, not {plan.trials}")
    if plan.workers < 1 or plan.workers > 64:
        raise SearchError(f"--workers must be 1 to 64, not {plan.workers}")
    costs = cost_range(plan.graph, plan.space)
    if costs.valid == 0:
        raise SearchError(f"no combination of the choices makes a network without errors ({costs.describe()})")
    b = plan.budget
    if (b.macs is not None and costs.macs[0] > b.macs) or (b.params is not None and costs.params[0] > b.params):
        cheap = describe(costs.cheapest)
        raise SearchError(f"no candidate is within the budget: the cheapest ({cheap}) has {costs.params[0]:,} "
                          f"params and {costs.macs[0]:,} MACs")
    try:
        plan.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SearchError(f"{plan.out}: cannot make the folder: {e.strerror or e}") from None


class Search:
    def __init__(self, plan: Plan):
        self.plan = plan
        self.lock = threading.Lock()
        base = Analyzer(plan.graph).run()
        self.base_findings = self._findings(plan.graph, base) if plan.keep_principles else set()

    # ------------------------------------------------------------ one trial
    @staticmethod
    def _findings(graph, analysis) -> set:
        from builder.insight import advisor
        return {(f.block, f.code) for f in advisor.check(graph, analysis) if f.principle in (1, 2, 4)}

    def objective(self, trial):
        import optuna
        plan = self.plan
        picked = {c.name: _suggest(trial, c) for c in plan.space}
        trial.set_user_attr("choices", {k: list(v) if isinstance(v, tuple) else v for k, v in picked.items()})
        try:
            g, settings = with_choices(plan.graph, picked)
        except (GraphEditError, ValueError) as e:
            return self._prune(trial, f"not a valid block: {e}")
        a = Analyzer(g).run()
        if not a.ok:
            return self._prune(trial, f"the network has errors: {a.errors[0]}")
        params, macs = a.inference.params, a.inference.macs
        trial.set_user_attr("params", params)
        trial.set_user_attr("macs", macs)
        latency = self._latency(g) if plan.budget.latency_ms is not None else None
        if latency is not None:
            trial.set_user_attr("latency_ms", latency)
        why = plan.budget.over(params, macs, latency)
        if why:
            return self._prune(trial, why)
        if plan.keep_principles:
            new = self._findings(g, a) - self.base_findings
            if new:
                block, code = sorted(new, key=str)[0]
                return self._prune(trial, f"breaks a design principle the design keeps: {code} at {block}")
        twin = self._trained_before(trial)
        if twin is not None:  # the sampler asked again for a design already trained: its result, not a retrain
            trial.set_user_attr("same_as", twin.number)
            trial.set_user_attr("run", twin.user_attrs.get("run"))
            self.plan.log(f"trial {trial.number}: the same as trial {twin.number} (not trained again)")
            return tuple(twin.values) if len(plan.objectives) > 1 else twin.values[0]
        folder = plan.out / f"trial-{trial.number:04d}"  # a run the Runs dock lists (DIR is two levels deep)
        accuracy = self._train(g, settings, folder, trial)
        trial.set_user_attr("run", str(folder))
        if accuracy is None:
            raise optuna.TrialPruned(trial.user_attrs.get("why", "training failed"))
        self.plan.log(f"trial {trial.number}: {describe(picked)}: val accuracy {accuracy * 100:.2f}%, "
                      f"{macs:,} MACs")
        return (accuracy, float(macs)) if len(plan.objectives) > 1 else accuracy

    @staticmethod
    def _trained_before(trial):
        study = trial.study
        import optuna
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if t.params == trial.params and t.number != trial.number:
                return t
        return None

    def _prune(self, trial, why: str):
        import optuna
        trial.set_user_attr("why", why)
        self.plan.log(f"trial {trial.number}: pruned before training: {why}")
        raise optuna.TrialPruned(why)

    def _latency(self, graph) -> float:
        """A forward at batch 1, measured by the profiler on the device the trials train on (the CPU by default)."""
        from builder.train.profile import profile
        args = list(self.plan.train_args)
        device = args[args.index("--device") + 1] if "--device" in args else "cpu"
        return float(profile(graph, "cpu" if device == "auto" else device, 1, 10)["total_ms"])

    def _train(self, graph, settings: dict, folder: Path, trial) -> float | None:
        """Train the candidate through ``block-builder train`` in a child process; its validation accuracy."""
        plan = self.plan
        folder.mkdir(parents=True, exist_ok=True)
        proj = folder / "candidate.json"
        project.save(graph, proj)
        args = [sys.executable, "-m", "builder", "train", str(proj), "--json", "--out", str(folder),
                "--dataset", plan.dataset, "--epochs", str(settings.get("epochs", plan.epochs)),
                "--seed", str(plan.seed), "--workers", "0"]
        if plan.max_steps:
            args += ["--max-steps", str(plan.max_steps)]
        for key in ("lr", "weight_decay", "batch_size", "label_smoothing"):
            if key in settings:
                args += [f"--{key.replace('_', '-')}", str(settings[key])]
        args += list(plan.train_args)
        done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        final = None
        for line in done.stdout.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and e.get("event") == "done":
                final = e
            elif isinstance(e, dict) and e.get("event") == "error":
                trial.set_user_attr("why", f"training failed: {e.get('message', '')}"[:500])
        if final is None:
            if "why" not in trial.user_attrs:
                last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
                trial.set_user_attr("why", f"training failed: {last[:300]}")
            return None
        return float(final.get("best_val_accuracy", final.get("val_accuracy", 0.0)))

    # ------------------------------------------------------------ the study
    def run(self) -> dict:
        """Run the study to ``trials`` trials in all; its trials and best, as trials.json and best.json hold them."""
        import optuna
        plan = self.plan
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = storage_url(plan)
        if len(plan.objectives) > 1:
            sampler = optuna.samplers.NSGAIISampler(seed=plan.seed)
            directions = ["maximize", "minimize"]
        else:
            sampler = optuna.samplers.TPESampler(seed=plan.seed)
            directions = ["maximize"]
        name = study_name(plan.graph)
        names = optuna.study.get_all_study_names(storage)
        exists = name in names
        others = [n.split(":", 1)[1] for n in names if n.startswith("block-builder:") and n != name]
        if not exists and others and plan.storage is None:  # DIR/study.db is one network's
            raise SearchError(f"{plan.out / 'study.db'} holds a study of {others[0]!r}, not of {plan.graph.name!r}: "
                              "choose another --out")
        if exists and not plan.resume:
            raise SearchError(f"{plan.storage or plan.out / 'study.db'} already holds a study of {plan.graph.name!r}: "
                              "--resume continues it (or choose another --out)")
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, directions=directions,
                                    load_if_exists=True)
        space = {c.name: [shown(v) for v in c.values] for c in plan.space}
        if exists:
            before = study.user_attrs.get("choices")
            if before is not None and before != space:
                raise SearchError(f"the study in {plan.storage or plan.out / 'study.db'} searched other choices "
                                  f"({', '.join(f'{k}={v}' for k, v in before.items())}); resume it with the same "
                                  "choices, or choose another --out")
            if study.user_attrs.get("objectives", list(plan.objectives)) != list(plan.objectives):
                raise SearchError(f"the study was started with --objectives {','.join(study.user_attrs['objectives'])}")
        study.set_user_attr("objectives", list(plan.objectives))
        study.set_user_attr("choices", space)
        study.set_user_attr("sampler", type(sampler).__name__)
        finished = [t for t in study.trials if t.state.is_finished()]
        left = max(0, plan.trials - len(finished))
        if exists:
            plan.log(f"resuming: {len(finished)} trial(s) done, {left} to go")
        callback = optuna.study.MaxTrialsCallback(plan.trials, states=None)
        if left:
            study.optimize(self.objective, n_trials=left, n_jobs=plan.workers, callbacks=[callback, self._written],
                           catch=(Exception,))
        return self.write(study)  # the files as the study ends, and what they say

    def _written(self, study, _trial) -> None:
        with self.lock:
            self.write(study)

    # ------------------------------------------------------------ the files
    def write(self, study) -> dict:
        """trials.json, best.json and the Pareto plot, from the study as it is now."""
        plan = self.plan
        rows = []
        for t in study.trials:
            acc = None
            if t.state.name == "COMPLETE":
                acc = t.values[0] if t.values else None
            rows.append({"number": t.number, "state": t.state.name.lower(), "choices": t.user_attrs.get("choices", {}),
                         "params": t.user_attrs.get("params"), "macs": t.user_attrs.get("macs"),
                         "latency_ms": t.user_attrs.get("latency_ms"), "val_accuracy": acc,
                         "why": t.user_attrs.get("why"), "run": t.user_attrs.get("run"),
                         "same_as": t.user_attrs.get("same_as")})
        write_bytes(plan.out / "trials.json", json.dumps({"study": study.study_name, "trials": rows}, indent=1)
                    .encode())
        done = [r for r in rows if r["state"] == "complete" and r["val_accuracy"] is not None]
        best = max(done, key=lambda r: (r["val_accuracy"], -(r["macs"] or 0), -r["number"]), default=None)
        if best is not None:
            picked = {k: tuple(v) if isinstance(v, list) else v for k, v in best["choices"].items()}
            g, settings = with_choices(plan.graph, picked)
            g.meta = {**g.meta, "search": {"trial": best["number"], "val_accuracy": best["val_accuracy"],
                                           "settings": settings}}
            write_bytes(plan.out / "best.json", project.dumps(g).encode())
        from .pareto import write_pareto
        write_pareto(done, plan.out, plan.graph.name)
        return {"trials": rows, "best": best}


def _suggest(trial, c: Choice):
    """One candidate of ``c`` (Optuna's categorical choices hold plain values: pairs go as text and back)."""
    texts = [shown(v) for v in c.values]
    got = trial.suggest_categorical(c.name, texts)
    return c.values[texts.index(got)]
