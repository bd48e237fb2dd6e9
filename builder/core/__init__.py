"""The core (no Qt, no torch at import): the graph model and its edits, analysis, the lowered graph (IR), project files, layout, errors and events."""
