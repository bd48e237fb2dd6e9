"""Where a network can be read from, for the commands and views that take any (``diff``, the compare view): a
project file, a template name, a run (its folder or its ``run.json``: the graph it trained), or what ``import``
reads (``torchvision:NAME``, ``module:callable``, a ``.onnx`` file)."""
from __future__ import annotations

from pathlib import Path


class SourceError(Exception):
    """A source that gives no network: one line naming it and the problem."""


def load_graph(path: str):
    """A project file, or a template by name (a ProjectError when the file cannot be read)."""
    from .core import project
    p = Path(path)
    if not p.exists() and not p.suffix:
        import templates
        if path in templates.TEMPLATES:
            return templates.build(path)
    return project.load(p)


def load_network(source: str, input_shape=None):
    """The graph ``source`` holds; ``input_shape`` (C, H, W) for a model to import. Raises :class:`SourceError`."""
    from .core.errors import ModelImportError, ProjectError
    p = Path(source)
    try:
        if p.is_dir() or p.name == "run.json":
            from .runs import RUN_FILE, read_run
            record = p / RUN_FILE if p.is_dir() else p
            if not record.exists():
                raise SourceError(f"{source}: a folder without a run record ({RUN_FILE}); expected a project file, "
                                  "a template name, a run folder or a model to import")
            run = read_run(record.parent)
            if run is None:
                raise SourceError(f"{record}: not a readable run record")
            return run.graph()
        if source.endswith(".onnx") or (":" in source and not p.exists()):
            from .importers import import_source
            return import_source(source, input_shape).graph
        if not p.exists() and not p.suffix:
            import templates
            if source not in templates.TEMPLATES:
                raise SourceError(f"{source!r} is neither a file nor a template (templates: "
                                  f"{', '.join(templates.TEMPLATES)})")
        return load_graph(source)
    except (ProjectError, ModelImportError) as e:
        raise SourceError(str(e)) from None
