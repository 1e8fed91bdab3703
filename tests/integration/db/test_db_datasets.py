"""Datasets and active-version moves in the database: one dataset per tenant and content, also
under concurrent uploads; concurrent promotes each record the move they made."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import Dataset, DatasetItem, GraphActivation
from app.db.repositories import activations, datasets, graphs, tenants
from app.db.session import session_factory
from app.lifecycle import ActivationReason

ITEMS = [{"item_id": None, "input": {"n": n}, "expected": n} for n in range(3)]


async def test_concurrent_uploads_of_one_content_store_it_once(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        owner = (await tenants.get_or_create_tenant(session, "acme")).id
        await session.commit()

    async def upload() -> tuple[str, bool]:
        async with sessions() as session:
            dataset, created = await datasets.add_dataset(session, owner, "d", "h" * 64, ITEMS)
            await session.commit()
            return dataset.id, created

    (first, first_new), (second, second_new) = await asyncio.gather(upload(), upload())
    assert (first == second, sorted([first_new, second_new])) == (True, [False, True])
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Dataset)) == 1
        assert await session.scalar(select(func.count()).select_from(DatasetItem)) == 3


async def test_concurrent_promotes_record_a_chain_of_moves(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        owner = (await tenants.get_or_create_tenant(session, "acme")).id
        for value in ("a", "b", "c"):
            graph, _, _ = await graphs.add_version(session, owner, "g", {"v": value}, value * 64)
        await session.commit()

    async def promote(version: int) -> None:
        async with sessions() as session:
            locked = await activations.lock_graph(session, graph.id)
            await asyncio.sleep(0.05)  # the other promote reads the graph meanwhile
            await activations.activate(session, locked, version, ActivationReason.PROMOTE)
            await session.commit()

    await asyncio.gather(promote(1), promote(2))
    async with sessions() as session:
        stmt = select(GraphActivation).where(GraphActivation.graph_id == graph.id)
        moves = [(m.previous, m.version) for m in await session.scalars(stmt.order_by("id"))]
    # each move starts where the one before it ended: none is lost to a stale read
    assert moves[:3] == [(None, 1), (1, 2), (2, 3)]
    assert moves[3][0] == 3
    assert moves[4][0] == moves[3][1]
