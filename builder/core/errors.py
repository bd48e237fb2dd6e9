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


class ImportProblem:
    """One thing an importer could not map: what it is (module, function, parameter, ...), where (the module
    path), and why."""

    def __init__(self, kind: str, path: str, why: str):
        self.kind, self.path, self.why = kind, path, why

    def __str__(self):
        return f"{self.kind} {self.path or '(top level)'}: {self.why}"

    def __repr__(self):
        return f"ImportProblem({self.kind!r}, {self.path!r}, {self.why!r})"


class ModelImportError(Exception):
    """A model that cannot be imported; lists every problem at once."""

    def __init__(self, source: str, problems: list):
        self.source, self.problems = source, list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:25])
        more = f"\n  ... and {len(self.problems) - 25} more" if len(self.problems) > 25 else ""
        super().__init__(f"{source} cannot be imported ({len(self.problems)} problem"
                         f"{'s' if len(self.problems) != 1 else ''}):\n{shown}{more}")
