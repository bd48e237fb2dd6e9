"""What every command-line command shares: its error type, loading a project or template, and the registry
through which commands that live beside their engine (export, check, train) add their parsers."""
from __future__ import annotations

from .sources import load_graph  # noqa: F401  (a project file or a template: every command reads one)


class CliError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


def load_network(source: str, input_shape=None):
    """:func:`builder.sources.load_network`, its failures as a :class:`CliError`."""
    from .sources import SourceError
    from .sources import load_network as load
    try:
        return load(source, input_shape)
    except SourceError as e:
        raise CliError(str(e)) from None


EXTRA_COMMANDS: list = []


def extra_command(fn):
    """Commands that live beside their engine (export, check, train) register their parser here."""
    EXTRA_COMMANDS.append(fn)
    return fn
