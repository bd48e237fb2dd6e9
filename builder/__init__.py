"""Block Builder's core: graph model, analysis, compiler, project files, CLI. No Qt here (see builder.ui)."""
from .analysis import Analysis, Analyzer, analyze
from .errors import CompileError, CycleError, GraphEditError, PortError, ProjectError
from .graph import Block, Graph

__all__ = ["Analysis", "Analyzer", "analyze", "Block", "Graph", "CompileError", "CycleError", "GraphEditError",
           "PortError", "ProjectError"]
