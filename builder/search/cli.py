"""``block-builder search``: structure and hyperparameter search under a budget, with Optuna."""
from __future__ import annotations

import json
from pathlib import Path

from ..cli_base import CliError, extra_command, load_graph

SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9}


def _count(text: str) -> int:
    """A count as people write it: 417000, 417K, 1.5M, 2G."""
    t = text.strip().lower().replace(",", "").replace("_", "")
    try:
        return int(float(t[:-1]) * SUFFIX[t[-1]]) if t and t[-1] in SUFFIX else int(float(t))
    except (ValueError, KeyError):
        raise CliError(f"{text!r} is not a count (write 417000, 417K, 1.5M or 2G)") from None


@extra_command
def add_parser(sub):
    p = sub.add_parser("search", help="search the choices marked on the diagram (or given with --choice) and the "
                                      "training settings under a budget, with Optuna")
    p.add_argument("file", help="a project file (or a template name)")
    p.add_argument("--trials", type=int, required=True, help="trials in all (with --resume: including those done)")
    p.add_argument("--epochs", type=int, default=1, help="epochs each trial trains")
    p.add_argument("--max-steps", type=int, default=0, help="stop each trial's training after this many steps")
    p.add_argument("--out", required=True, help="the study's folder: study.db, trials.json, best.json, pareto.svg")
    p.add_argument("--choice", action="append", default=[], metavar="BLOCK.PARAM=v1,v2",
                   help="candidates for a block's parameter, or train.lr / train.weight_decay / train.batch_size / "
                        "train.label_smoothing / train.epochs (repeat it)")
    p.add_argument("--budget-macs", help="the most inference MACs a candidate may have (417K, 1.5M, ...)")
    p.add_argument("--budget-params", help="the most inference parameters")
    p.add_argument("--budget-latency-ms", type=float, help="the slowest forward (batch 1) on this machine's CPU, "
                                                             "measured by the profiler")
    p.add_argument("--objectives", default="accuracy", choices=("accuracy", "accuracy,macs"),
                   help="accuracy (TPE), or accuracy and MACs together (NSGA-II, a Pareto front)")
    p.add_argument("--keep-principles", action="store_true",
                   help="prune a candidate that breaks an Inception design principle the design keeps")
    p.add_argument("--resume", action="store_true", help="continue the study in --out (or --storage)")
    p.add_argument("--storage", help="any storage Optuna accepts: postgresql://..., mysql://..., sqlite:///..., or "
                                     "journal:PATH (a journal file several processes share)")
    p.add_argument("--workers", type=int, default=1, help="trials trained at once (each its own process)")
    p.add_argument("--dataset", help="as for train (default: fashion-mnist when installed, else synthetic)")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed and every trial's training seed")
    p.add_argument("--device", help="as for train")
    p.add_argument("--batch-size", type=int, help="as for train (unless train.batch_size is searched)")
    p.add_argument("--json", action="store_true", help="print trials.json's content at the end")
    p.set_defaults(func=cmd_search)


def cmd_search(args) -> int:
    from ..train.settings import default_dataset
    from .space import SpaceError, choices, cost_range, describe
    from .study import Budget, Plan, Search, SearchError, check
    graph = load_graph(args.file)
    try:
        space = choices(graph, args.choice)
    except SpaceError as e:
        raise CliError(str(e)) from None
    budget = Budget(_count(args.budget_macs) if args.budget_macs else None,
                    _count(args.budget_params) if args.budget_params else None, args.budget_latency_ms)
    if args.epochs < 1 or args.max_steps < 0:
        raise CliError("--epochs must be at least 1 and --max-steps 0 or more")
    extra = []
    if args.device:
        extra += ["--device", args.device]
    if args.batch_size:
        extra += ["--batch-size", str(args.batch_size)]
    plan = Plan(graph, space, Path(args.out), args.trials, args.epochs, args.max_steps,
                args.dataset or default_dataset(), budget, tuple(args.objectives.split(",")), args.keep_principles,
                args.storage, args.workers, args.seed, args.resume, tuple(extra))
    try:
        check(plan)
        print(f"searching {len(space)} choice(s) of {graph.name}: {cost_range(graph, space).describe()}")
        search = Search(plan)
        result = search.run()
    except SearchError as e:
        raise CliError(str(e)) from None
    best = result["best"]
    if args.json:
        print(json.dumps(result, indent=1))
    states = [r["state"] for r in result["trials"]]
    print(f"{len(states)} trials: {states.count('complete')} trained, {states.count('pruned')} pruned, "
          f"{states.count('fail')} failed")
    if best is None:
        print("no trial trained to the end: nothing is best yet")
        return 1
    print(f"best: trial {best['number']}: val accuracy {best['val_accuracy'] * 100:.2f}% with "
          + describe(best["choices"]) + f" ({best['macs']:,} MACs)")
    for name in ("trials.json", "best.json", "pareto.svg", "pareto.png"):
        print(f"wrote {Path(args.out) / name}")
    return 0
