"""Graph uploads and reads: validation, idempotent versions, parameter diffs, DOT."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import GraphRecord, GraphVersion
from app.db.repositories import graphs as repo
from app.engine import GraphLimits, GraphValidationError, graph_hash, load_graph, to_data, to_dot
from app.services.errors import InvalidInput, Issue, Malformed, NotFound

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


@dataclass(frozen=True, slots=True)
class StoredGraph:
    graph: GraphRecord
    version: GraphVersion
    created: bool = False


def parse_body(body: bytes, content_type: str) -> Any:
    """A graph document from a request body: JSON, or YAML when the content type says so."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed("the body is not valid UTF-8", [Issue("(body)", str(exc))]) from None
    if content_type.split(";")[0].strip().lower() in YAML_TYPES:
        return _yaml(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed("the body is not valid JSON", [Issue("(body)", str(exc))]) from None


def _yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise Malformed("the body is not valid YAML", [Issue("(body)", str(exc))]) from None


async def upload(
    session: AsyncSession,
    tenant_id: str,
    document: Any,
    *,
    aliases: Collection[str],
    tools: Collection[str],
    max_nodes: int,
    limits: GraphLimits | None = None,
) -> StoredGraph:
    """Validate and store a graph; the same content again returns the existing version."""
    try:
        graph = load_graph(
            document,
            aliases=aliases,
            tools=tools,
            max_nodes=max_nodes,
            limits=limits or GraphLimits(),
        )
    except GraphValidationError as exc:
        issues = [Issue(i.field, i.message, node=i.node) for i in exc.issues]
        raise InvalidInput("the graph is invalid", issues) from None
    record, version, created = await repo.add_version(
        session, tenant_id, graph.name, to_data(graph), graph_hash(graph)
    )
    return StoredGraph(record, version, created)


async def get(session: AsyncSession, tenant_id: str, ref: str, version: int | None) -> StoredGraph:
    """A graph by id or name, at a version (the latest when ``None``)."""
    record = await repo.find_graph(session, tenant_id, ref)
    found = await repo.get_version(session, record.id, version) if record else None
    if record is None or found is None:
        which = f" version {version}" if version is not None else ""
        raise NotFound(f"graph {ref!r}{which} not found")
    return StoredGraph(record, found)


async def versions(session: AsyncSession, tenant_id: str, ref: str) -> list[dict[str, Any]]:
    """Every version, oldest first, each with the parameters that changed since the previous."""
    stored = await get(session, tenant_id, ref, None)
    history = await repo.list_versions(session, stored.graph.id)
    return [_version_entry(v, prev) for prev, v in zip([None, *history[:-1]], history, strict=True)]


def _version_entry(version: GraphVersion, previous: GraphVersion | None) -> dict[str, Any]:
    return {
        "version": version.version,
        "hash": version.hash,
        "created_at": version.created_at,
        "parameter_changes": parameter_diff(previous, version),
    }


def parameter_diff(before: GraphVersion | None, after: GraphVersion) -> list[dict[str, Any]]:
    """Parameters added, removed or rewritten between two versions."""
    old = _parameter_values(before.definition) if before else {}
    new = _parameter_values(after.definition)
    return [
        {"name": name, "before": old.get(name), "after": new.get(name)}
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]


def _parameter_values(definition: dict[str, Any]) -> dict[str, str]:
    return {name: spec["value"] for name, spec in definition.get("parameters", {}).items()}


def dot(version: GraphVersion) -> str:
    return to_dot(load_graph(version.definition))


async def listing(
    session: AsyncSession, tenant_id: str, limit: int, after: str | None
) -> Sequence[tuple[GraphRecord, GraphVersion]]:
    return await repo.list_graphs(session, tenant_id, limit, after)
