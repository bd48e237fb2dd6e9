"""The exporters' error type (its own module, so every exporter can raise it without importing the registry)."""


class ExportError(Exception):
    """An export that cannot be made; the message says why."""
