"""Turn untrusted data into a valid :class:`Graph`, or say exactly what is wrong.

>>> load_graph({"name": "g", "inputs": {"x": {}}, "nodes": [], "outputs": {"y": "nope"}})
Traceback (most recent call last):
...
app.engine.errors.GraphValidationError: field 'outputs.y': unknown name 'nope'
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

from pydantic import ValidationError

from app.engine.errors import GraphIssue, GraphValidationError
from app.engine.graph.analysis import (
    dependencies,
    find_cycle,
    node_refs,
    reference_fields,
    template_fields,
)
from app.engine.graph.limits import DEFAULT_LIMITS, CheckContext, GraphLimits
from app.engine.graph.model import Graph, Node
from app.engine.graph.refs import RefSyntaxError, parse_ref, parse_template
from app.engine.ops.table import OPS, op_of

MAX_NODES = 10_000


def load_graph(
    data: Any,
    *,
    aliases: Collection[str] | None = None,
    tools: Collection[str] | None = None,
    max_nodes: int = MAX_NODES,
    limits: GraphLimits = DEFAULT_LIMITS,
) -> Graph:
    """Parse JSON text or a dict into a graph and check it; raise ``GraphValidationError``."""
    if isinstance(data, str | bytes):
        data = _decode_json(data)
    if not isinstance(data, dict):
        raise GraphValidationError([GraphIssue("(body)", "a graph must be a JSON object")])
    try:
        graph = Graph.model_validate(data)
    except ValidationError as exc:
        raise GraphValidationError(schema_issues(exc, data)) from None
    issues = check_graph(graph, aliases=aliases, tools=tools, max_nodes=max_nodes, limits=limits)
    if issues:
        raise GraphValidationError(issues)
    return graph


def _decode_json(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GraphValidationError([GraphIssue("(body)", f"not valid JSON: {exc}")]) from None


def schema_issues(exc: ValidationError, data: dict[str, Any]) -> list[GraphIssue]:
    """Translate pydantic's error locations into (node, field) issues."""
    return [_schema_issue(error["loc"], error["msg"], data) for error in exc.errors()]


def _schema_issue(loc: tuple[Any, ...], message: str, data: dict[str, Any]) -> GraphIssue:
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
        raw = data["nodes"][loc[1]] if isinstance(data.get("nodes"), list) else None
        node_id = raw.get("id") if isinstance(raw, dict) else None
        rest = [str(part) for part in loc[2:]]
        if rest and rest[0] in OPS:
            rest = rest[1:]  # pydantic names the union member; users know it as 'op'
        field = ".".join(rest) or "op"
        return GraphIssue(
            field, message, str(node_id) if node_id is not None else f"nodes[{loc[1]}]"
        )
    return GraphIssue(".".join(str(part) for part in loc) or "(body)", message)


def check_graph(
    graph: Graph,
    *,
    aliases: Collection[str] | None = None,
    tools: Collection[str] | None = None,
    max_nodes: int = MAX_NODES,
    limits: GraphLimits = DEFAULT_LIMITS,
) -> list[GraphIssue]:
    """Every semantic problem of a schema-valid graph (empty list when it is fine)."""
    if len(graph.nodes) > max_nodes:
        return [GraphIssue("nodes", f"{len(graph.nodes)} nodes exceed the limit of {max_nodes}")]
    issues = list(_name_issues(graph))
    issues += _template_size_issues(graph, limits)
    issues += _reference_issues(graph)
    issues += _output_issues(graph)
    context = CheckContext(aliases, tools, limits)
    for node in graph.nodes:
        issues += op_of(node).check(node, context)
    if not issues:
        issues += _cycle_issues(graph)
    return issues


def _name_issues(graph: Graph) -> Iterator[GraphIssue]:
    for name in graph.parameters.keys() & graph.inputs.keys():
        yield GraphIssue(f"parameters.{name}", f"{name!r} is both an input and a parameter")
    seen: set[str] = set()
    for node in graph.nodes:
        if node.id in seen:
            yield GraphIssue("id", f"duplicate node id {node.id!r}", node.id)
        elif node.id in graph.inputs or node.id in graph.parameters:
            yield GraphIssue("id", f"{node.id!r} is already an input or parameter name", node.id)
        seen.add(node.id)


def _template_size_issues(graph: Graph, limits: GraphLimits) -> Iterator[GraphIssue]:
    limit = limits.template_bytes
    if limit is None:
        return
    for node in graph.nodes:
        for field, text in template_fields(node):
            if (size := len(text.encode("utf-8", "replace"))) > limit:
                yield GraphIssue(
                    field,
                    f"template is {size:,} bytes, over the template limit of {limit:,} "
                    f"({limits.template_setting})",
                    node.id,
                )


def _reference_issues(graph: Graph) -> Iterator[GraphIssue]:
    known = {*graph.inputs, *graph.parameters, *graph.node_ids}
    for node in graph.nodes:
        try:
            refs = node_refs(node)
        except RefSyntaxError as exc:
            yield GraphIssue(_syntax_field(node, exc), str(exc), node.id)
            continue
        for found in refs:
            if found.ref.name not in known:
                yield GraphIssue(found.field, f"unknown name {found.ref.name!r}", node.id)
            elif found.ref.name in graph.parameters and found.ref.path:
                yield GraphIssue(
                    found.field, f"parameter {found.ref.name!r} is text; it has no fields", node.id
                )


def _syntax_field(node: Node, exc: RefSyntaxError) -> str:
    for field, text in template_fields(node):
        try:
            parse_template(text)
        except RefSyntaxError:
            return field
    for field, text in reference_fields(node):
        try:
            parse_ref(text)
        except RefSyntaxError:
            return field
    return "(unknown)"  # pragma: no cover - exc came from one of the fields above


def _output_issues(graph: Graph) -> Iterator[GraphIssue]:
    known = {*graph.inputs, *graph.parameters, *graph.node_ids}
    for name, text in graph.outputs.items():
        field = f"outputs.{name}"
        if not name or len(name) > 128:
            yield GraphIssue(field, "output names must have 1 to 128 characters")
            continue
        try:
            ref = parse_ref(text)
        except RefSyntaxError as exc:
            yield GraphIssue(field, str(exc))
            continue
        if ref.name not in known:
            yield GraphIssue(field, f"unknown name {ref.name!r}")


def _cycle_issues(graph: Graph) -> Iterator[GraphIssue]:
    cycle = find_cycle(dependencies(graph))
    if cycle:
        path = " -> ".join(cycle)
        yield GraphIssue(_field_reading(graph.node(cycle[0]), cycle[1]), f"cycle: {path}", cycle[0])


def _field_reading(node: Node, name: str) -> str:
    return next((r.field for r in node_refs(node) if r.ref.name == name), "(unknown)")
