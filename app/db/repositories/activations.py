"""Which version of a graph is active, and the history of its moves (for rollback)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import GraphActivation, GraphRecord
from app.lifecycle import ActivationReason


async def lock_graph(session: AsyncSession, graph_id: str) -> GraphRecord:
    """The graph's row, fresh and locked until commit: moves of one graph take turns.

    A no-op UPDATE takes the lock on both databases (on SQLite, the one write lock), so the
    active version read next cannot change under the caller."""
    touch = update(GraphRecord).where(GraphRecord.id == graph_id)
    await session.execute(touch.values(active_version=GraphRecord.active_version))
    stmt = select(GraphRecord).where(GraphRecord.id == graph_id)
    return (await session.scalars(stmt.execution_options(populate_existing=True))).one()


async def activate(
    session: AsyncSession, graph: GraphRecord, version: int, reason: ActivationReason
) -> GraphActivation | None:
    """Make ``version`` the active one of a graph the caller locked; the move recorded, or
    ``None`` when it was active already (nothing moves, nothing is recorded)."""
    if graph.active_version == version:
        return None
    move = GraphActivation(
        graph_id=graph.id, version=version, previous=graph.active_version, reason=reason
    )
    session.add(move)
    graph.active_version = version
    await session.flush()
    return move


async def last_move(session: AsyncSession, graph_id: str) -> GraphActivation | None:
    """The graph's most recent move of its active version."""
    stmt = select(GraphActivation).where(GraphActivation.graph_id == graph_id)
    return await session.scalar(stmt.order_by(GraphActivation.id.desc()).limit(1))
