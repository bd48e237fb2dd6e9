"""Typed errors for impossible edits and bad files."""
from __future__ import annotations


class GraphEditError(ValueError):
    """An edit that cannot be made; the message says why, for people."""


class UnknownBlockTypeError(GraphEditError):
    pass


class UnknownBlockError(GraphEditError, KeyError):
    def __str__(self):  # KeyError would quote the message
        return self.args[0] if self.args else ""


class InvalidIdError(GraphEditError):
    pass


class DuplicateIdError(InvalidIdError):
    pass


class PortError(GraphEditError):
    pass


class CycleError(GraphEditError):
    pass


class ProjectError(Exception):
    """A project file that cannot be read or written; names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


class CompileError(Exception):
    """The graph has errors that stop it from compiling; lists them."""
