"""A graph version drawn as SVG from its IR: one ``<g class="node">`` per node, placed by
``layout.py``, with the node's op (and alias) and, on a job's page, how many items ended in
each state at that node. A node all of whose results were skipped is drawn as skipped.

Pure: the graph IR and the layout, no I/O. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from app.dashboard.layout import NODE_H, NODE_W, Layout, Placed, layout
from app.engine.graph import Graph, dependencies, topological_order
from app.engine.records import NodeStatus

SHOWN = (NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.CANCELLED)


def graph_svg(definition: Mapping[str, Any], counts: Mapping[str, Mapping[str, int]]) -> str:
    """The SVG of a stored graph definition; ``counts`` maps node id -> status -> items."""
    if not definition:
        return ""
    graph = Graph.model_validate(definition)
    deps = dependencies(graph)
    placed = layout(topological_order(deps), deps)
    nodes = {node.id: node for node in graph.nodes}
    body = [_edge(placed, a, b) for a, b in placed.edges]
    body += [_node(p, nodes[p.node], counts.get(p.node, {})) for p in placed.nodes]
    title = escape(f"Graph {graph.name}: {len(nodes)} nodes")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="group" '
        f'aria-labelledby="graph-title" width="{placed.width:.0f}" height="{placed.height:.0f}" '
        f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}">'
        f'<title id="graph-title">{title}</title>'
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>'
        f"{''.join(body)}</svg>"
    )


def state_of(counts: Mapping[str, int]) -> str:
    """The state a node is drawn in: failed if any item failed there, skipped if every result
    was skipped, else succeeded, cancelled or (no results yet) pending."""
    seen = {status for status, count in counts.items() if count > 0}
    if NodeStatus.FAILED in seen:
        return NodeStatus.FAILED.value
    if seen == {NodeStatus.SKIPPED.value}:
        return NodeStatus.SKIPPED.value
    for status in (NodeStatus.SUCCEEDED, NodeStatus.CANCELLED, NodeStatus.SKIPPED):
        if status in seen:
            return status.value
    return NodeStatus.PENDING.value


def _node(p: Placed, node: Any, counts: Mapping[str, int]) -> str:
    state = state_of(counts)
    detail = node.op + (f" · {node.alias}" if getattr(node, "alias", None) else "")
    data = " ".join(f'data-{s.value}="{counts.get(s.value, 0)}"' for s in SHOWN)
    tally = ", ".join(f"{counts[s.value]} {s.value}" for s in SHOWN if counts.get(s.value))
    label = escape(f"{node.id} ({detail}): {tally or 'no results'}")
    return (
        f'<g class="node state-{state}" data-node="{escape(node.id)}" data-state="{state}" '
        f'tabindex="0" role="button" aria-label="{label}" '
        f"{data}><title>{label}</title>"
        f'<rect x="{p.x:.0f}" y="{p.y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
        f"{_text(p, 18, escape(_short(node.id, 22)), 'name')}"
        f"{_text(p, 33, escape(_short(detail, 26)), 'op')}"
        f"{_text(p, 48, escape(_short(tally, 28)) if tally else '', 'counts')}</g>"
    )


def _text(p: Placed, dy: int, content: str, kind: str) -> str:
    return f'<text class="{kind}" x="{p.x + 8:.0f}" y="{p.y + dy:.0f}">{content}</text>'


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _edge(placed: Layout, source: str, target: str) -> str:
    a, b = placed.at(source), placed.at(target)
    x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
    x2, y2 = b.x, b.y + NODE_H / 2
    mid = (x1 + x2) / 2
    return (
        f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} '
        f'{x2:.0f},{y2:.0f}" marker-end="url(#arrow)"/>'
    )
