"""The headless command line: ``block-builder info | templates | new | export | check | train | gui``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli_base import EXTRA_COMMANDS, CliError, load_graph
from .core.errors import CompileError, GraphEditError, ProjectError


def _apply_input(graph, spec: str | None):
    if not spec:
        return
    from templates.net import parse_input
    try:
        c, h, w = parse_input(spec, 224)
    except ValueError as e:
        raise CliError(str(e)) from None
    inputs = [b for b in graph.blocks() if b.type == "input"]
    if not inputs:
        raise CliError("the graph has no Input block to resize")
    try:
        graph.set_params(inputs[0].id, {"channels": c, "height": h, "width": w})
    except GraphEditError as e:
        raise CliError(f"--input {spec}: {e}") from None


def cmd_info(args) -> int:
    from .core.analysis import analyze
    from .insight.report import PAPER_COLUMNS, block_rows, human, human_bytes, paper_rows, render
    graph = load_graph(args.file)
    _apply_input(graph, args.input)
    a = analyze(graph)
    if args.json:
        from .insight.receptive import receptive_fields
        doc = {"name": graph.name, "file": args.file, **a.to_dict()}
        fields = receptive_fields(graph, a)
        for b in doc.get("blocks", []):
            f = fields.get(b.get("id"))
            b["receptive_field"] = f.to_dict() if f is not None else None
        if args.per_layer:
            doc["layers"] = [{**r, "output_shape": list(r["output_shape"]) if r["output_shape"] else None}
                             for r in block_rows(graph, a, per_layer=True)]
        if args.table == "paper":
            doc["paper_table"] = paper_rows(graph, a)
        print(json.dumps(doc, indent=1))
        return 0 if a.ok else 1
    fmt = args.format
    if args.table == "paper":
        print(render(paper_rows(graph, a), PAPER_COLUMNS, fmt, paper_units=fmt != "csv"), end="")
    else:
        rows = block_rows(graph, a, per_layer=args.per_layer)
        for r in rows:
            r["name"] = "  " * r["depth"] + r["id"]
        print(render(rows, ["name", "kind", "output_shape", "params", "macs", "errors"], fmt), end="")
    if fmt == "text":
        print()
        for label, t in (("training ", a.training), ("inference", a.inference)):
            print(f"{label}: {t.params:,} params ({human(t.params)}), {t.macs:,} MACs ({human(t.macs)}), "
                  f"{human(t.flops)} FLOPs, activations {human_bytes(t.activation_bytes)} per image")
    for issue in a.issues:
        print(str(issue), file=sys.stderr)
    return 0 if a.ok else 1


def cmd_templates(args) -> int:
    import templates
    if args.json:
        print(json.dumps([{"name": n, "description": templates.describe(n)} for n in templates.TEMPLATES],
                         indent=1))
    else:
        width = max(map(len, templates.TEMPLATES))
        for n in templates.TEMPLATES:
            print(f"{n.ljust(width)}  {templates.describe(n)}")
    return 0


def cmd_new(args) -> int:
    import templates
    from .core import project
    from .core.analysis import analyze
    from .insight.report import human
    if args.template not in templates.TEMPLATES:
        raise CliError(f"unknown template {args.template!r}; choose one of: {', '.join(templates.TEMPLATES)}")
    if args.num_classes is not None and not 1 <= args.num_classes <= 1 << 20:
        raise CliError(f"--num-classes {args.num_classes} must be between 1 and {1 << 20}")
    size = None
    if args.input:
        from templates.net import parse_input
        try:
            size = parse_input(args.input, 224)
        except ValueError as e:
            raise CliError(str(e)) from None
    try:
        graph = templates.build(args.template, num_classes=args.num_classes, aux=False if args.no_aux else None,
                                input_size=size, batch_norm=False if args.no_bn else None)
    except GraphEditError as e:
        raise CliError(str(e)) from None
    a = analyze(graph)
    project.save(graph, args.output)
    print(f"wrote {args.output}: {graph.name}, {len(graph)} blocks, {human(a.inference.params)} params, "
          f"{human(a.inference.macs)} MACs (inference)")
    for issue in a.errors:
        print(str(issue), file=sys.stderr)
    return 0 if a.ok else 1


def cmd_gui(args) -> int:
    from .ui.app import main as gui_main
    return gui_main(file=args.file, template=args.template)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="block-builder",
                                 description="Design CNNs as block diagrams; analyse, compile, export, train.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="per-block shapes, parameters and MACs, with totals")
    p.add_argument("file", help="a project file (or a template name)")
    p.add_argument("--input", help="override the input size, e.g. 3x224x224")
    p.add_argument("--per-layer", action="store_true", help="also list the layers inside composite blocks")
    p.add_argument("--json", action="store_true", help="one JSON object (inference, training, blocks, issues)")
    p.add_argument("--table", choices=("blocks", "paper"), default="blocks",
                   help="'paper': the layout of the GoogLeNet paper's Table 1")
    p.add_argument("--format", choices=("text", "csv", "markdown"), default="text")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("templates", help="list the templates")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_templates)

    p = sub.add_parser("new", help="write a template as a project file")
    p.add_argument("template")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--num-classes", type=int)
    p.add_argument("--no-aux", action="store_true", help="leave out the auxiliary heads")
    p.add_argument("--no-bn", action="store_true", help="leave out batch norm where the template has it")
    p.add_argument("--input", help="input size CxHxW (e.g. 3x299x299)")
    p.set_defaults(func=cmd_new)

    for extra in EXTRA_COMMANDS:
        extra(sub)

    p = sub.add_parser("gui", help="open the app")
    p.add_argument("file", nargs="?")
    p.add_argument("--template", help="open a template (default: an empty canvas)")
    p.set_defaults(func=cmd_gui)
    return ap


def main(argv=None) -> int:
    from . import cli_commands  # noqa: F401  (registers export, check, train)
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except ProjectError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (CliError, CompileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
