"""Size limits on uploaded graphs, and what else the checks of an upload need to know."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GraphLimits:
    """Size limits checked on upload (``None``: not checked); the names appear in errors."""

    template_bytes: int | None = 64 * 1024
    pattern_chars: int | None = 4096
    template_setting: str = "max_template_bytes"
    pattern_setting: str = "max_pattern_chars"


DEFAULT_LIMITS = GraphLimits()
# Graphs from trusted code (traced modules, stored versions accepted earlier): no size limits.
NO_SIZE_LIMITS = GraphLimits(template_bytes=None, pattern_chars=None)


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What op checks compare a node with (``None``: that check is not made).

    ``aliases`` may be a mapping of each alias to the request fields its provider refuses
    (:func:`~app.engine.resources.providers.refused_fields`): ``llm`` nodes that set one fail.
    """

    aliases: Collection[str] | None = None
    tools: Collection[str] | None = None
    limits: GraphLimits = DEFAULT_LIMITS
