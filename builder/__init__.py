"""Block Builder's core: graph model, analysis, compiler, project files, CLI. No Qt here (see builder.ui)."""
from .core.analysis import Analysis, Analyzer, analyze
from .core.errors import CompileError, CycleError, GraphEditError, PortError, ProjectError
from .core.graph import Block, Graph

__all__ = ["Analysis", "Analyzer", "analyze", "Block", "Graph", "CompileError", "CycleError", "GraphEditError",
           "PortError", "ProjectError"]
