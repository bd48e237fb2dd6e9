"""Parsers of the commands whose engines live in other modules (imported lazily when they run)."""
from __future__ import annotations

from .cli import extra_command
