"""Parsers of the commands whose engines live in other modules (imported lazily when they run)."""
from __future__ import annotations

from exports.api import FORMATS

from .cli_base import CliError, extra_command, load_graph, load_network

from .train import cli as _train_cli  # noqa: F401,E402
from .search import cli as _search_cli  # noqa: F401,E402


@extra_command
def _check_parser(sub):
    p = sub.add_parser("check", help="the design advisor: Inception-v3 principles, refactors and their savings")
    p.add_argument("file", help="a project file (or a template name)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--apply", choices=("factorize", "all-factorize"), help="apply every 5x5 / nxn factorization")
    p.add_argument("-o", "--output", help="write the refactored project here")
    p.set_defaults(func=_cmd_check)


def _cmd_check(args) -> int:
    import json

    from .core import project
    from .insight import advisor
    from .insight.report import human
    graph = load_graph(args.file)
    findings = advisor.check(graph)
    refs = advisor.refactors(findings)
    previews = [advisor.preview(graph, r) for r in refs]
    result = {"findings": [f.to_dict() for f in findings],
              "refactors": [{"title": p.refactor.title, "code": p.refactor.code, "block": p.refactor.block,
                             "applicable": p.ok, "macs_before": p.before_macs, "macs_after": p.after_macs,
                             "params_before": p.before_params, "params_after": p.after_params,
                             "training_params_before": p.before_training_params,
                             "training_params_after": p.after_training_params,
                             "macs_saving": p.macs_saving, "message": p.message} for p in previews]}
    if args.apply:
        done, before, after = advisor.apply_all(graph)
        result["applied"] = [r.title for r in done]
        result["total"] = {"macs_before": before.inference.macs, "macs_after": after.inference.macs,
                           "params_before": before.inference.params, "params_after": after.inference.params,
                           "training_params_before": before.training.params,
                           "training_params_after": after.training.params,
                           "compiles": after.ok}
        if args.output:
            project.save(graph, args.output)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    if not findings:
        print("no findings: the design follows the principles the advisor checks")
    for f in findings:
        where = f"{f.block}: " if f.block and not f.message.startswith(f.block) else ""
        saves = f" (saves up to {human(f.saving)} MACs)" if f.saving else ""
        print(f"[principle {f.principle}: {f.statement}]\n  {f.title}{saves}\n    {where}{f.message}")
    if previews:
        print("\nrefactors:")
        for p in previews:
            print(f"  - {p.describe()}")
    if args.apply:
        t = result["total"]
        print(f"\napplied {len(result['applied'])} refactors: inference MACs {human(t['macs_before'])} -> "
              f"{human(t['macs_after'])} (saves {t['macs_before'] - t['macs_after']:,} MACs, "
              f"{(1 - t['macs_after'] / t['macs_before']) * 100:.1f}%), "
              f"inference params {human(t['params_before'])} -> {human(t['params_after'])}, training params "
              f"{human(t['training_params_before'])} -> {human(t['training_params_after'])}; "
              f"{'the graph compiles' if t['compiles'] else 'the graph has errors'}"
              + (f"; written to {args.output}" if args.output else ""))
    return 0


@extra_command
def _export_parser(sub):
    p = sub.add_parser("export", help="PyTorch code, ONNX, TorchScript, torch.export, DOT/SVG/PNG, train.py, "
                                      "paper figures")
    p.add_argument("file", help="a project file (or a template name)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--weights", help="trained weights (.safetensors, e.g. runs/<run>/best.safetensors) to ship "
                                     "with the export")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or newer)")
    p.add_argument("--fold-batch-norm", action="store_true",
                   help="ONNX: fold batch norms into the convolutions (for deployment; kept by default)")
    from exports.figure import CHOICES
    f = p.add_argument_group("paper figures (--format figure; -o names .svg, .pdf or .tex; the project's own "
                             "figure style is the default)")
    f.add_argument("--stages", action="store_true", help="fold repeated stages into one drawn period with xN")
    for key, values in CHOICES.items():
        f.add_argument(f"--{key}", choices=values)
    f.add_argument("--width", type=float, help="the widest the figure may be, in points (default 516: a "
                                               "two-column paper's text width)")
    p.set_defaults(func=_cmd_export)


def _figure_options(args) -> dict:
    """The figure style: the project's, with what the command line changes."""
    from exports.figure import CHOICES, project_style
    changes = {k: getattr(args, k) for k in CHOICES if getattr(args, k) is not None}
    if args.stages:
        changes["stages"] = True
    if args.width is not None:
        changes["width"] = args.width
    if args.format != "figure":
        if changes:
            raise CliError(f"--{next(iter(changes))} applies to --format figure only")
        return {}
    return {"style": project_style(args.graph).replace(**changes)}


def _cmd_export(args) -> int:
    from exports import EXPORTS, ExportError, export_graph

    graph = load_graph(args.file)
    args.graph = graph
    try:
        options = _figure_options(args)
    except ExportError as e:
        raise CliError(f"{args.file}: {e}" if str(e).startswith("meta.") else str(e)) from None
    if args.format == "onnx":
        if args.opset < 17:
            raise CliError("--opset must be 17 or newer")
        options["opset"] = args.opset
        options["fold_batch_norm"] = args.fold_batch_norm
    elif args.fold_batch_norm:
        raise CliError("--fold-batch-norm applies to the ONNX export only")
    if args.weights:
        if not EXPORTS[args.format].weights:
            raise CliError(f"--weights does not apply to {args.format}")
        from builder.backend.compiler import compile_graph
        from builder.train.settings import TrainingError
        from builder.train.weights import load_tensors, weights_problems
        try:
            options["weights"] = load_tensors(args.weights)
        except TrainingError as e:
            raise CliError(str(e)) from None
        problems = weights_problems(compile_graph(graph).state_dict(), options["weights"])
        if problems:
            raise CliError(f"{args.weights}: the weights do not fit this network: {'; '.join(problems[:3])}")
    try:
        written = export_graph(graph, args.format, args.output, **options)
    except ExportError as e:
        raise CliError(str(e)) from None
    except RuntimeError as e:  # weights that do not fit the graph
        raise CliError(f"the weights do not fit this network: {str(e).splitlines()[0]}") from None
    for path in written:
        print(f"wrote {path}")
    return 0


def _input_size(args):
    """--input CxHxW as (C, H, W), or None when not given."""
    from .importers import parse_size
    try:
        return parse_size(args.input) if args.input else None
    except ValueError as e:
        raise CliError(f"--input: {e}") from None


@extra_command
def _import_parser(sub):
    p = sub.add_parser("import", help="an existing model (torchvision, your own nn.Module) as a project with its "
                                      "weights")
    p.add_argument("source", help="torchvision:NAME, package.module:callable (returns an nn.Module), or a .onnx file")
    p.add_argument("-o", "--output", required=True, help="the project file to write (weights go beside it)")
    p.add_argument("--no-weights", action="store_true", help="write the graph only")
    p.add_argument("--weights", help="load these weights (.safetensors) into the model before importing it")
    p.add_argument("--input", help="input size CxHxW (default: the model's own, 3x224x224 for most)")
    p.add_argument("--json", action="store_true", help="print the imported network's totals as JSON")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="seconds a module:callable import may take (default 120; BLOCK_BUILDER_IMPORT_TIMEOUT)")
    p.add_argument("--memory", type=float, metavar="GIB",
                   help="GiB of memory a module:callable import may use (default 16; BLOCK_BUILDER_IMPORT_MEMORY)")
    p.set_defaults(func=_cmd_import)


def _cmd_import(args) -> int:
    import json
    from pathlib import Path

    from .core.analysis import analyze
    from .core.errors import ModelImportError
    from .importers import import_source, save_imported
    out = Path(args.output)
    if out.suffix != ".json":
        raise CliError(f"-o {out}: the project file must end in .json")
    blocker = next((p for p in [out.parent, *out.parent.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise CliError(f"-o {out}: {blocker} is a file, not a folder")
    size = _input_size(args)
    for flag, value in (("--timeout", args.timeout), ("--memory", args.memory)):
        if value is not None and not 0 < value < 1e6:
            raise CliError(f"{flag} {value:g}: must be a positive number")
    try:
        imported = import_source(args.source, size, weights=args.weights, timeout_s=args.timeout,
                                 memory_gib=args.memory)
    except ModelImportError as e:
        raise CliError(str(e)) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # made once the import worked: a failure leaves nothing
    except OSError as e:
        raise CliError(f"-o {out}: cannot make the folder {out.parent}: {e.strerror or e}") from None
    try:
        written = save_imported(imported, out, with_weights=not args.no_weights)
    except OSError as e:  # the weights beside the project (the project itself is a ProjectError)
        raise CliError(f"{e.filename or out}: could not write it: {e.strerror or e}") from None
    a = analyze(imported.graph)
    composites = sum(1 for b in imported.graph.blocks() if b.spec is not None and b.spec.is_composite)
    if args.json:
        print(json.dumps({"files": [str(p) for p in written], "blocks": len(imported.graph),
                          "composites": composites, "inference": a.inference.to_dict(),
                          "training": a.training.to_dict(), "notes": list(imported.notes)}, indent=1))
        return 0
    for p in written:
        print(f"wrote {p}")
    print(f"{len(imported.graph)} blocks ({composites} composites or groups); inference {a.inference.params:,} "
          f"params, {a.inference.macs:,} MACs; training {a.training.params:,} params")
    captured = imported.captured
    if captured:
        noun = "ONNX operator" if all(": ONNX " in n for n in captured) else "module"
        print(f"{len(captured)} {noun}{'s' if len(captured) != 1 else ''} no kind stands for, captured with their "
              "exact operators:")
    for note in (captured + [n for n in imported.notes if n not in captured])[:40]:
        print(f"  {note}")
    if len(imported.notes) > 40:
        print(f"  ... and {len(imported.notes) - 40} more")
    return 0


@extra_command
def _diff_parser(sub):
    p = sub.add_parser("diff", help="how two networks differ: blocks added, removed, changed; shapes; deltas",
                       description="Compare two networks, matched by structure. Exit status: 0 the same, "
                                   "1 they differ, 2 a network could not be read.")
    for name in ("a", "b"):
        p.add_argument(name, help="a project file, a template name, a run folder, or what import reads "
                                  "(torchvision:NAME, module:callable, a .onnx file)")
    p.add_argument("--layers", action="store_true",
                   help="compare every layer of the lowered networks (composites opened), not the diagrams' blocks")
    p.add_argument("--input", help="input size CxHxW of a model to import (default: its own, 3x224x224 for most)")
    p.add_argument("--json", action="store_true", help="one JSON object; its totals are B's minus A's")
    p.set_defaults(func=_cmd_diff)


def _cmd_diff(args) -> int:
    import json

    from .insight import diff
    size = _input_size(args)
    a, b = load_network(args.a, size), load_network(args.b, size)
    d = diff.compare(a, b, "layers" if args.layers else "blocks")
    if args.json:
        print(json.dumps({"file_a": args.a, "file_b": args.b, **d.to_dict()}, indent=1))
    else:
        print(diff.render(d), end="")
    return 0 if d.same else 1
