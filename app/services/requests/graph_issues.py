"""Semantic problems of a graph that fails its schema, found where the schema errors allow, so
one answer lists both (a wrong field in one node does not hide an unknown reference in another).

>>> semantic_issues({"name": "g", "nodes": [{"id": "a", "op": "nope"}]}, Checks())  # doctest: +SKIP
[]
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.engine import Graph, GraphIssue, GraphLimits
from app.engine.graph.validate import MAX_NODES, check_graph


@dataclass(frozen=True, slots=True)
class Checks:
    """What the semantic checks check against (as ``load_graph`` takes them)."""

    aliases: Collection[str] | None = None
    tools: Collection[str] | None = None
    max_nodes: int = MAX_NODES
    limits: GraphLimits = field(default_factory=GraphLimits)


def semantic_issues(document: Any, checks: Checks) -> list[GraphIssue]:
    """The semantic issues of a schema-invalid ``document`` when every schema error is inside a
    node that has an id: each such node stands in as an empty template (it is defined, refers to
    nothing) and the rest is checked; issues of the stood-in nodes themselves are left out.
    Where that is not possible (an error outside the nodes, a node without an id) none."""
    broken = _broken_nodes(document)
    if not broken:
        return []
    nodes = [
        {"id": node["id"], "op": "template", "text": ""} if position in broken else node
        for position, node in enumerate(document["nodes"])
    ]
    try:
        graph = Graph.model_validate({**document, "nodes": nodes})
    except ValidationError:
        return []
    stood_in = {document["nodes"][position]["id"] for position in broken}
    issues = check_graph(
        graph,
        aliases=checks.aliases,
        tools=checks.tools,
        max_nodes=checks.max_nodes,
        limits=checks.limits,
    )
    return [issue for issue in issues if issue.node not in stood_in]


def _broken_nodes(document: Any) -> set[int]:
    """Positions of the nodes the schema errors are in; empty unless every error is in a node
    whose ``id`` is a string."""
    if not isinstance(document, dict) or not isinstance(document.get("nodes"), list):
        return set()
    try:
        Graph.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return set()
    positions = {_node_position(error["loc"]) for error in errors}
    if None in positions:
        return set()
    broken = {position for position in positions if position is not None}
    nodes = document["nodes"]
    return broken if all(_has_id(nodes[position]) for position in broken) else set()


def _node_position(loc: tuple[Any, ...]) -> int | None:
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
        return loc[1]
    return None


def _has_id(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("id"), str) and bool(node["id"])
