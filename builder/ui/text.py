"""Text helpers for rich-text labels and tooltips."""


def esc(text: str) -> str:
    """User text inside Qt rich text: never interpreted as markup."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
