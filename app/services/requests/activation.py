"""Promote and rollback: moving a graph's active version (what runs when no version is named).

A rollback undoes the last move: the active version goes back to the one that was active before
it (so a second rollback redoes the move it undid), unless a version is named.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import GraphRecord
from app.db.repositories import activations
from app.db.repositories import graphs as repo
from app.lifecycle import ActivationReason
from app.services.errors import Conflict, InvalidInput, Issue, NotFound


@dataclass(frozen=True, slots=True)
class Move:
    """Where a promote or rollback left a graph: ``active`` now, ``previous`` before it."""

    graph: GraphRecord
    active: int
    previous: int | None


async def promote(session: AsyncSession, tenant_id: str, ref: str, version: int) -> Move:
    """Make ``version`` of the graph ``ref`` the active one (already active: nothing moves)."""
    graph = await _locked(session, tenant_id, ref)
    return await _move(session, graph, version, ActivationReason.PROMOTE)


async def rollback(
    session: AsyncSession, tenant_id: str, ref: str, version: int | None = None
) -> Move:
    """Move the active version back to the one active before the last move, or to ``version``."""
    graph = await _locked(session, tenant_id, ref)
    target = version if version is not None else await _before_last_move(session, graph)
    return await _move(session, graph, target, ActivationReason.ROLLBACK)


async def _locked(session: AsyncSession, tenant_id: str, ref: str) -> GraphRecord:
    found = await repo.find_graph(session, tenant_id, ref)
    if found is None:
        raise NotFound(f"graph {ref!r} not found")
    return await activations.lock_graph(session, found.id)


async def _before_last_move(session: AsyncSession, graph: GraphRecord) -> int:
    last = await activations.last_move(session, graph.id)
    if last is None or last.previous is None:
        detail = f"graph {graph.name!r} has no earlier active version to roll back to"
        raise Conflict(detail, [Issue("version", "nothing to roll back to")])
    return last.previous


async def _move(
    session: AsyncSession, graph: GraphRecord, version: int, reason: ActivationReason
) -> Move:
    if await repo.get_version(session, graph.id, version) is None:
        detail = f"graph {graph.name!r} has no version {version}"
        raise InvalidInput(detail, [Issue("version", "no such version")])
    previous = graph.active_version
    await activations.activate(session, graph, version, reason)
    return Move(graph, version, previous)
