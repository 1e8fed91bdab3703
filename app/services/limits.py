"""The engine's size limits, from the service's settings (errors name the ``INF_*`` variable)."""

from __future__ import annotations

from app.engine import GraphLimits, OutputLimits
from app.settings import Settings


def output_limits(settings: Settings) -> OutputLimits:
    """Limits on node and item outputs, for every run and job item."""
    return OutputLimits(
        node_bytes=settings.max_node_output_bytes,
        item_bytes=settings.max_item_output_bytes,
        node_setting="INF_MAX_NODE_OUTPUT_BYTES",
        item_setting="INF_MAX_ITEM_OUTPUT_BYTES",
    )


def graph_limits(settings: Settings) -> GraphLimits:
    """Limits checked when a graph is uploaded."""
    return GraphLimits(
        template_bytes=settings.max_template_bytes,
        pattern_chars=settings.max_pattern_chars,
        template_setting="INF_MAX_TEMPLATE_BYTES",
        pattern_setting="INF_MAX_PATTERN_CHARS",
    )
