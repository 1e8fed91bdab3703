"""Reading computed values: references resolved, templates rendered (with size limits)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.engine.errors import NodeError
from app.engine.execution.limits import OutputLimits, check_rendered
from app.engine.graph.refs import Ref, Template, resolve_path, to_text

Values = Mapping[str, Any]


def lookup(values: Values, ref: Ref) -> Any:
    """The value a reference points at (``NodeError`` if its path does not resolve)."""
    value = values[ref.name]
    if not ref.path:
        return value
    try:
        return resolve_path(value, ref.path)
    except LookupError as exc:
        raise NodeError(f"{ref}: {exc}") from None


def render(
    template: Template, values: Values, limits: OutputLimits | None = None, subject: str = ""
) -> str:
    """Fill a template from the values computed so far.

    With ``limits``, an oversized result is refused before it is built (``subject`` names
    it in the error), so a template bomb never allocates its string.
    """
    parts = [
        piece if isinstance(piece, str) else to_text(lookup(values, piece))
        for piece in template.pieces
    ]
    if limits is not None:
        check_rendered(subject, parts, limits)
    return "".join(parts)
