"""Reading the tagged request texts of the prompt contract (``app.engine.optimization.prompts``).

>>> section("<A>\\n x \\n</A>", "A"), attribute('<P name="p">', "P", "name")
('x', 'p')
"""

from __future__ import annotations

import re


def section(text: str, tag: str) -> str | None:
    """The stripped content of the first ``<tag ...>...</tag>``, or ``None``."""
    match = re.search(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", text, re.S)
    return match.group(1).strip() if match else None


def sections(text: str, tag: str) -> list[str]:
    """The stripped contents of every ``<tag ...>...</tag>``."""
    return [m.strip() for m in re.findall(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", text, re.S)]


def attribute(text: str, tag: str, name: str) -> str | None:
    """The value of attribute ``name`` on the first ``<tag ...>``, or ``None``."""
    match = re.search(rf'<{tag}\s[^>]*\b{name}="([^"]*)"', text)
    return match.group(1) if match else None


def targets(text: str) -> list[tuple[str, str]]:
    """``(name, kind)`` of every ``TARGET`` in a critic request."""
    return re.findall(r'<TARGET name="([^"]+)" kind="([^"]+)">', text)
