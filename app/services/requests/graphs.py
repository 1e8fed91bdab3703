"""Graph uploads and reads: validation, idempotent versions, parameter diffs, DOT."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import GraphRecord, GraphVersion
from app.db.repositories import graphs as repo
from app.engine import GraphLimits, GraphValidationError, graph_hash, load_graph, to_data, to_dot
from app.services.errors import InvalidInput, Issue, NotFound
from app.services.requests.documents import MAX_DEPTH, YAML_TYPES, parse_json, parse_yaml
from app.services.requests.graph_issues import Checks, semantic_issues


@dataclass(frozen=True, slots=True)
class StoredGraph:
    graph: GraphRecord
    version: GraphVersion
    created: bool = False


@dataclass(frozen=True, slots=True)
class GraphUpload:
    """An uploaded body and what it is checked against."""

    body: bytes
    media_type: str
    aliases: Collection[str]
    tools: Collection[str]
    max_nodes: int
    max_depth: int = MAX_DEPTH
    limits: GraphLimits = field(default_factory=GraphLimits)


@dataclass(frozen=True, slots=True)
class PreparedGraph:
    """A validated graph in canonical form, ready to store."""

    name: str
    definition: dict[str, Any]
    hash: str


def parse_body(body: bytes, media_type: str, max_depth: int = MAX_DEPTH) -> Any:
    """A graph document from a request body: JSON, or YAML when the media type says so."""
    if media_type in YAML_TYPES:
        return parse_yaml(body, max_depth=max_depth)
    return parse_json(body, max_depth=max_depth)


def prepare(upload: GraphUpload) -> PreparedGraph:
    """Parse, validate, canonicalize and hash an upload (CPU only: run it off the event loop)."""
    document = parse_body(upload.body, upload.media_type, upload.max_depth)
    checks = Checks(upload.aliases, upload.tools, upload.max_nodes, upload.limits)
    try:
        graph = load_graph(
            document,
            aliases=checks.aliases,
            tools=checks.tools,
            max_nodes=checks.max_nodes,
            limits=checks.limits,
        )
    except GraphValidationError as exc:
        found = [*exc.issues, *semantic_issues(document, checks)]
        issues = [Issue(i.field, i.message, node=i.node) for i in found]
        raise InvalidInput("the graph is invalid", issues) from None
    return PreparedGraph(graph.name, to_data(graph), graph_hash(graph))


async def upload(session: AsyncSession, tenant_id: str, upload: GraphUpload) -> StoredGraph:
    """Validate and store a graph; the same content again returns the existing version.

    Everything but the database write runs in a worker thread, so a large upload never holds
    the event loop (and with it every other request)."""
    prepared = await asyncio.to_thread(prepare, upload)
    record, version, created = await repo.add_version(
        session, tenant_id, prepared.name, prepared.definition, prepared.hash
    )
    return StoredGraph(record, version, created)


async def get(session: AsyncSession, tenant_id: str, ref: str, version: int | None) -> StoredGraph:
    """A graph by id or name, at a version (the active one when ``None``: what a job runs)."""
    record = await repo.find_graph(session, tenant_id, ref)
    number = version if version is not None or record is None else record.active_version
    found = await repo.get_version(session, record.id, number) if record else None
    if record is None or found is None:
        which = f" version {version}" if version is not None else ""
        raise NotFound(f"graph {ref!r}{which} not found")
    return StoredGraph(record, found)


@dataclass(frozen=True, slots=True)
class ParameterChange:
    """A parameter added (``before`` is ``None``), removed (``after`` is ``None``) or rewritten."""

    name: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One version of a graph and the parameters that changed since the one before."""

    version: int
    hash: str
    created_at: datetime
    parameter_changes: list[ParameterChange]
    active: bool = False
    parent_version: int | None = None  # provenance of a version an optimization run created
    run_id: str | None = None
    run_step: int | None = None
    diff: dict[str, Any] | None = None


async def versions(session: AsyncSession, tenant_id: str, ref: str) -> list[VersionEntry]:
    """Every version, oldest first, each with the parameters that changed since the previous;
    the active one is marked."""
    stored = await get(session, tenant_id, ref, None)
    history = await repo.list_versions(session, stored.graph.id)
    active = stored.version.version
    pairs = zip([None, *history[:-1]], history, strict=True)
    return [_version_entry(v, prev, v.version == active) for prev, v in pairs]


def _version_entry(
    version: GraphVersion, previous: GraphVersion | None, active: bool
) -> VersionEntry:
    changes = parameter_diff(previous, version)
    return VersionEntry(
        version.version, version.hash, version.created_at, changes, active,
        version.parent_version, version.run_id, version.run_step, version.diff,
    )  # fmt: skip


def parameter_diff(before: GraphVersion | None, after: GraphVersion) -> list[ParameterChange]:
    """Parameters added, removed or rewritten between two versions."""
    old = _parameter_values(before.definition) if before else {}
    new = _parameter_values(after.definition)
    return [
        ParameterChange(name, old.get(name), new.get(name))
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
