"""``block-builder train``: compile the project and run the engine, printing JSON lines with --json."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ..cli_base import CliError, extra_command, load_graph
from .settings import DEVICES, ErrorEvent, Exit, add_arguments, config_from_args


@extra_command
def add_parser(sub):
    p = sub.add_parser("train", help="train the network (CPU, CUDA with AMP, MPS; torchrun/DDP for several GPUs)")
    p.add_argument("file", help="a project file (or a template name)")
    p.add_argument("--json", action="store_true", help="one JSON event per line; the last holds the final metrics")
    p.add_argument("--gpus", type=int, default=1, help="several: run under torchrun with DistributedDataParallel")
    p.add_argument("--from-scratch", action="store_true", help="ignore the project's weights")
    add_arguments(p)  # every training setting, from Config's own fields
    p.set_defaults(func=cmd_train)


@extra_command
def add_evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="accuracy, per-class precision/recall and the confusion matrix on the "
                                        "validation set")
    p.add_argument("file", help="a project file (or a template name)")
    p.add_argument("--weights", help="trained weights (.safetensors; default: the project's own)")
    p.add_argument("--dataset", help="as for train (default: fashion-mnist when installed, else synthetic)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--out", help="folder for evaluation.json (default: the weights' folder)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from pathlib import Path

    from ..backend.compiler import compile_graph
    from .settings import Config, SettingsError, TrainingError, default_dataset
    from .evaluation import confusion_png, evaluate_model, worst_png
    from .weights import load_weights
    from .checkpoints import write_json
    graph = load_graph(args.file)
    weights = _trained(args, graph, "evaluate")
    out = Path(args.out) if args.out else Path(weights).parent
    cfg = Config(dataset=args.dataset or default_dataset(), batch_size=args.batch_size, device=args.device,
                 out=str(out), workers=0)
    try:
        cfg.check()
        model = compile_graph(graph)
        load_weights(model, weights)
        result = evaluate_model(model, cfg)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "evaluation.json", {"weights": str(weights), **result})
        confusion_png(result, out / "confusion.png")
        worst_png(result, evaluate_model.last_val, out / "most_confident_wrong.png")
    except SettingsError as e:
        raise CliError(str(e)) from None
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return Exit.TRAINING
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['dataset']}: accuracy {result['accuracy'] * 100:.2f}% ({result['correct']:,} of "
          f"{result['images']:,})" + (f", top-5 {result['top5_accuracy'] * 100:.2f}%" if result["top5_accuracy"]
                                     is not None else ""))
    for c in result["per_class"]:
        print(f"  {c['class']:>14}  precision {c['precision']:.3f}  recall {c['recall']:.3f}  ({c['support']})")
    for name in ("evaluation.json", "confusion.png", "most_confident_wrong.png"):
        print(f"wrote {out / name}")
    return 0


@extra_command
def add_explain_parser(sub):
    from .explain import METHODS
    p = sub.add_parser("explain", help="why the network predicted what it did for one image: Grad-CAM, saliency, "
                                       "integrated gradients, occlusion (captum)")
    p.add_argument("file", help="a project file (or a template name)")
    p.add_argument("--weights", help="trained weights (.safetensors; default: the project's own)")
    p.add_argument("--dataset", help="as for train (default: fashion-mnist when installed, else synthetic)")
    p.add_argument("--index", type=int, default=0, help="which image of the validation set (Fashion-MNIST's: its "
                                                        "test set), counted from 0")
    p.add_argument("--method", choices=METHODS, default="gradcam")
    p.add_argument("--block", help="the block to explain at (Grad-CAM: one with a C x H x W output; default: the "
                                   "last such block)")
    p.add_argument("--target", help="the class to explain, by number or name (default: the predicted one)")
    p.add_argument("-o", "--output", required=True, help="the image with the attribution over it (.png)")
    p.add_argument("--npy", help="the raw attribution as float32 (.npy): Grad-CAM at the block's resolution, "
                                 "the others at the input's (C x H x W)")
    p.add_argument("--json", action="store_true", help="print the prediction and the files as JSON")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args) -> int:
    import io
    from pathlib import Path

    import numpy as np

    from ..core.files import write_bytes
    from .explain import explain, overlay_png
    from .settings import TrainingError, default_dataset
    from .weights import load_tensors
    graph = load_graph(args.file)
    weights = _trained(args, graph, "explain")
    if Path(args.output).suffix.lower() != ".png":
        raise CliError(f"-o {args.output}: the explanation is written as a .png image")
    dataset = args.dataset or default_dataset()
    target = args.target
    try:
        tensors = load_tensors(weights)
        if target is not None and not target.lstrip("-").isdigit():
            from .data import CLASS_NAMES
            names = [n.lower() for n in CLASS_NAMES.get(dataset.lower(), [])]
            if target.lower() not in names:
                raise TrainingError(f"--target {target}: not a class of {dataset}"
                                    + (f" ({', '.join(CLASS_NAMES[dataset.lower()])})" if names else ""))
            target = names.index(target.lower())
        e = explain(graph, tensors, ("dataset", dataset, args.index), args.method, args.block, target)
        write_bytes(Path(args.output), overlay_png(e))
        if args.npy:
            buf = io.BytesIO()
            np.save(buf, e.attribution.astype(np.float32))
            write_bytes(Path(args.npy), buf.getvalue())
    except TrainingError as e:
        raise CliError(str(e)) from None
    except OSError as e:
        raise CliError(f"{e.filename or args.output}: could not write it: {e.strerror or e}") from None
    result = {"method": e.method, "block": e.block, "index": args.index, "dataset": dataset,
              "predicted": e.name(e.predicted), "confidence": e.probabilities[e.predicted],
              "true": e.name(e.true) if e.true is not None else None, "target": e.name(e.target),
              "weights": str(weights), "image": args.output, "npy": args.npy}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{e.caption}: predicted {result['predicted']} ({result['confidence'] * 100:.1f}%)"
          + (f", true {result['true']}" if result["true"] is not None else "")
          + f"; {e.method}" + (f" on {e.block}" if e.block else "") + f" for {result['target']}")
    for path in (args.output, args.npy):
        if path:
            print(f"wrote {path}")
    return 0


@extra_command
def add_profile_parser(sub):
    p = sub.add_parser("profile", help="measured time of every block on a device, beside its MACs")
    p.add_argument("file", help="a project file (or a template name)")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--backward", action="store_true", help="time every block's backward pass too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_profile)


def cmd_profile(args) -> int:
    from .settings import TrainingError
    from .profile import profile
    if not 1 <= args.batch_size <= 4096 or not 1 <= args.repeat <= 10_000:
        raise CliError("--batch-size must be 1 to 4096 and --repeat 1 to 10,000")
    graph = load_graph(args.file)
    try:
        result = profile(graph, args.device, args.batch_size, args.repeat, backward=args.backward)
    except TrainingError as e:
        raise CliError(str(e)) from None
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['device']}, batch {result['batch_size']}: {result['total_ms']:.2f} ms per forward "
          f"(blocks add up to {result['sum_ms']:.2f} ms)")
    if args.backward:
        print(f"backward: {result['backward_total_ms']:.2f} ms (blocks add up to {result['backward_sum_ms']:.2f} ms)")
    for r in sorted(result["rows"], key=lambda r: -r["ms"]):
        gf = f"{r['gflops']:.1f} GFLOP/s" if r["gflops"] else ""
        bw = f"  backward {r['backward_ms']:8.3f} ms" if args.backward else ""
        print(f"  {r['id']:<24} {r['kind']:<20} {r['ms']:8.3f} ms {r['share'] * 100:5.1f}%  {gf}{bw}")
    return 0


@extra_command
def add_runs_parser(sub):
    p = sub.add_parser("runs", help="the training runs recorded in a folder (each run's run.json)")
    p.add_argument("folder", help="a run folder, or a folder of run folders (e.g. runs/)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args) -> int:
    from ..runs import find_runs
    runs = find_runs(args.folder)
    if args.json:
        print(json.dumps([{"folder": str(r.folder), "name": r.doc.get("name"), "status": r.doc.get("status"),
                           "settings": r.doc.get("settings"), "epochs": r.doc.get("epochs"),
                           "val_accuracy": r.val_accuracy} for r in runs], indent=1))
        return 0
    if not runs:
        print(f"no runs recorded in {args.folder}")
    for r in runs:
        print(r.summary())
    return 0


def _weights(args, graph):
    """--weights, or the project's own weights file (beside the project file) unless --from-scratch."""
    from .settings import TrainingError
    from .weights import own_weights
    if args.weights or args.from_scratch:
        return args.weights
    try:
        path = own_weights(graph, args.file)
    except TrainingError as e:
        raise CliError(str(e)) from None
    return str(path) if path is not None else None


def _trained(args, graph, command: str) -> str:
    """--weights, else the project's own weights; refused (exit 2) when there are none."""
    args.from_scratch = False
    weights = _weights(args, graph)
    if not weights:
        raise CliError(f"{command} needs trained weights: --weights FILE.safetensors (or a project that has them)")
    return weights


def _without_option(argv: list, flag: str) -> list:
    """``argv`` without ``flag VALUE`` or ``flag=VALUE``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def cmd_train(args) -> int:
    from ..backend.compiler import compile_graph
    from .settings import RECIPES, SettingsError, TrainingError
    from .engine import end_worker_process, train
    from .settings import DoneEvent, EpochEvent, StartEvent, StepEvent, WarningEvent

    if args.gpus < 1:
        raise CliError(f"--gpus {args.gpus}: the number of GPUs to train on is at least 1")
    if args.gpus > 1 and "WORLD_SIZE" not in os.environ:
        import torch
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have < args.gpus:
            raise CliError(f"--gpus {args.gpus}: this machine has {have} CUDA GPU{'s' if have != 1 else ''}"
                           + (f" (use --gpus {have})" if have > 1 else " (leave --gpus out to train on one device)"))
        argv = _without_option(sys.argv[1:], "--gpus")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.gpus}", "-m",
               "builder"] + argv
        child = subprocess.Popen(cmd)
        import signal
        for sig in (signal.SIGTERM, signal.SIGINT):  # Stop in the app reaches torchrun, which stops its workers
            signal.signal(sig, lambda s, _f: child.send_signal(s))
        return child.wait()
    graph = load_graph(args.file)
    recipe = args.recipe or graph.meta.get("recipe") or "sgd"
    if recipe not in RECIPES:
        raise CliError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
    cfg = config_from_args(args, recipe=recipe, weights=_weights(args, graph))
    cfg.freeze = tuple(dict.fromkeys(graph.frozen() + list(cfg.freeze)))  # the project's frozen blocks, and these
    if not cfg.out:  # every run a folder of its own; --resume continues the network's newest
        from ..runs import latest_run_folder
        from .settings import run_folder
        folder = latest_run_folder(graph.name) if cfg.resume else run_folder(graph.name)
        if folder is None:
            raise CliError(f"--resume: no earlier run of {graph.name!r} under runs/ (give its folder with --out)")
        cfg.out = str(folder)
    try:
        cfg.check()  # every setting and --out, before the model is built or a file written
    except SettingsError as e:
        if args.json:
            print(json.dumps(ErrorEvent(message=str(e))), flush=True)
        raise CliError(str(e)) from None
    import torch
    torch.manual_seed(args.seed)
    model = compile_graph(graph)
    from dataclasses import asdict

    from ..core.analysis import analyze
    from ..runs import RunRecorder
    a = analyze(graph)
    record = RunRecorder(cfg.out, graph, {k: v for k, v in asdict(cfg).items() if k != "overrides"},
                         {"training": a.training.to_dict(), "inference": a.inference.to_dict()}, resume=args.resume) \
        if int(os.environ.get("RANK", "0")) == 0 else None

    def emit(event):
        if record is not None:
            record.event(event)
        if args.json:
            print(json.dumps(event), flush=True)
        elif isinstance(event, StepEvent):
            print(f"epoch {event.epoch} step {event.step}/{event.total_steps} loss {event.loss:.4f} "
                  f"acc {event.accuracy:.3f} lr {event.lr:.3g} {event.images_per_s:.0f} img/s "
                  f"eta {event.eta_s:.0f}s", flush=True)
        elif isinstance(event, EpochEvent):
            print(f"epoch {event.epoch}: train loss {event.train_loss:.4f}, val loss {event.val_loss:.4f}, "
                  f"val accuracy {event.val_accuracy:.4f} ({event.epoch_s:.1f}s)", flush=True)
        elif isinstance(event, StartEvent):
            print(f"training on {event.device} ({event.dataset}, {event.train_size} images, "
                  f"recipe {event.recipe}, {event.params:,} params)", flush=True)
        elif isinstance(event, WarningEvent):
            print(f"warning: {event.message}", file=sys.stderr, flush=True)
        elif isinstance(event, DoneEvent):
            print(f"done: val accuracy {event.val_accuracy:.4f} in {event.seconds:.1f}s; weights in "
                  f"{event.checkpoint}", flush=True)
    code = Exit.OK
    try:
        train(model, cfg, emit)
    except TrainingError as e:
        if record is not None:
            record.failed(str(e))
        if args.json:
            print(json.dumps(ErrorEvent(message=str(e))), flush=True)
        else:
            print(f"error: {e}", file=sys.stderr)
        code = Exit.TRAINING
    end_worker_process(int(code))  # under torchrun: ends here (see its docstring); otherwise returns
    return int(code)
