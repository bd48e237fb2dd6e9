"""What every command-line command shares: its error type, loading a project or template, and the registry
through which commands that live beside their engine (export, check, train) add their parsers."""
from __future__ import annotations

from pathlib import Path


class CliError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


def load_graph(path: str):
    """A project file, or a template by name."""
    from .core import project
    p = Path(path)
    if not p.exists() and not p.suffix:
        import templates
        if path in templates.TEMPLATES:
            return templates.build(path)
    return project.load(p)


def load_network(source: str, input_shape=None):
    """Anything a network can be read from: a project file, a template name, a run (its folder or its
    ``run.json``: the graph it trained), or what ``import`` reads (``torchvision:NAME``, ``module:callable``, a
    ``.onnx`` file). Every failure is a :class:`CliError` naming the source."""
    from .core.errors import ModelImportError, ProjectError
    p = Path(source)
    try:
        if p.is_dir() or p.name == "run.json":
            from .runs import RUN_FILE, Run, read_run
            record = p / RUN_FILE if p.is_dir() else p
            if not record.exists():
                raise CliError(f"{source}: a folder without a run record ({RUN_FILE}); expected a project file, "
                               "a template name, a run folder or a model to import")
            run = read_run(record.parent)
            if run is None:
                raise CliError(f"{record}: not a readable run record")
            return run.graph()
        if source.endswith(".onnx") or (":" in source and not p.exists()):
            from .importers import import_source
            return import_source(source, input_shape).graph
        if not p.exists() and not p.suffix:
            import templates
            if source not in templates.TEMPLATES:
                raise CliError(f"{source!r} is neither a file nor a template (templates: "
                               f"{', '.join(templates.TEMPLATES)})")
        return load_graph(source)
    except ProjectError as e:
        raise CliError(str(e)) from None
    except ModelImportError as e:
        raise CliError(str(e)) from None


EXTRA_COMMANDS: list = []


def extra_command(fn):
    """Commands that live beside their engine (export, check, train) register their parser here."""
    EXTRA_COMMANDS.append(fn)
    return fn
