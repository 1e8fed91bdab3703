"""Graphs: idempotent uploads, version numbering (also under concurrency), tenant scoping."""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import GraphActivation, GraphRecord, GraphVersion
from app.db.repositories import graphs, tenants
from app.db.session import session_factory


def doc(value: str) -> tuple[dict[str, str], str]:
    return {"value": value}, hashlib.sha256(value.encode()).hexdigest()


async def tenant_id(session: AsyncSession, name: str = "acme") -> str:
    return (await tenants.get_or_create_tenant(session, name)).id


async def test_same_content_is_one_version(session: AsyncSession) -> None:
    owner = await tenant_id(session)
    graph, first, created = await graphs.add_version(session, owner, "g", *doc("a"))
    again_graph, again, again_created = await graphs.add_version(session, owner, "g", *doc("a"))
    assert created
    assert not again_created
    assert (again_graph.id, again.id, again.version) == (graph.id, first.id, 1)


async def test_new_content_gets_the_next_number(session: AsyncSession) -> None:
    owner = await tenant_id(session)
    graph, _, _ = await graphs.add_version(session, owner, "g", *doc("a"))
    _, second, created = await graphs.add_version(session, owner, "g", *doc("b"))
    await graphs.add_version(session, owner, "g", *doc("a"))  # an old version again: no new one
    assert created
    assert second.version == 2
    assert [v.version for v in await graphs.list_versions(session, graph.id)] == [1, 2]
    latest = await graphs.get_version(session, graph.id, None)
    assert latest is not None
    assert latest.id == second.id
    first = await graphs.get_version(session, graph.id, 1)
    assert first is not None
    assert first.definition == {"value": "a"}
    assert await graphs.get_version(session, graph.id, 3) is None
    assert await graphs.get_version_by_id(session, second.id) is second


async def test_concurrent_uploads_of_different_content_get_versions_1_and_2(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        owner = await tenant_id(session)
        await session.commit()

    async def upload(value: str) -> tuple[int, bool]:
        async with sessions() as session:
            _, version, created = await graphs.add_version(session, owner, "g", *doc(value))
            await session.commit()
            return version.version, created

    results = await asyncio.gather(upload("a"), upload("b"))
    assert sorted(results) == [(1, True), (2, True)]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GraphRecord)) == 1
        assert await session.scalar(select(func.count()).select_from(GraphVersion)) == 2


async def test_concurrent_uploads_of_the_same_content_store_it_once(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        owner = await tenant_id(session)
        await session.commit()

    async def upload() -> tuple[str, bool]:
        async with sessions() as session:
            _, version, created = await graphs.add_version(session, owner, "g", *doc("a"))
            await session.commit()
            return version.id, created

    (first_id, first_new), (second_id, second_new) = await asyncio.gather(upload(), upload())
    assert first_id == second_id
    assert sorted([first_new, second_new]) == [False, True]


async def test_graphs_are_found_by_id_or_name_within_their_tenant(session: AsyncSession) -> None:
    acme, globex = await tenant_id(session, "acme"), await tenant_id(session, "globex")
    graph, _, _ = await graphs.add_version(session, acme, "g", *doc("a"))
    theirs, _, _ = await graphs.add_version(session, globex, "g", *doc("a"))

    assert theirs.id != graph.id
    assert await graphs.find_graph(session, acme, graph.id) is graph
    assert await graphs.find_graph(session, acme, "g") is graph
    assert await graphs.find_graph(session, globex, graph.id) is None
    assert await graphs.find_graph(session, acme, "missing") is None


async def test_an_id_wins_over_a_name(session: AsyncSession) -> None:
    owner = await tenant_id(session)
    target, _, _ = await graphs.add_version(session, owner, "target", *doc("a"))
    await graphs.add_version(session, owner, target.id, *doc("b"))  # named like the other's id
    assert await graphs.find_graph(session, owner, target.id) is target


async def test_list_graphs_pages_by_name_with_latest_versions(session: AsyncSession) -> None:
    owner, other = await tenant_id(session), await tenant_id(session, "globex")
    for name in ("charlie", "alpha", "bravo"):
        await graphs.add_version(session, owner, name, *doc(name))
    await graphs.add_version(session, owner, "alpha", *doc("alpha 2"))
    await graphs.add_version(session, other, "aaa", *doc("x"))

    page = await graphs.list_graphs(session, owner, 2, None)
    assert [(g.name, v.version) for g, v in page] == [("alpha", 2), ("bravo", 1)]
    rest = await graphs.list_graphs(session, owner, 2, "bravo")
    assert [(g.name, v.version) for g, v in rest] == [("charlie", 1)]
    assert await graphs.list_graphs(session, owner, 2, "charlie") == []


async def test_a_version_added_without_activating_leaves_the_active_one(
    session: AsyncSession,
) -> None:
    owner = await tenant_id(session)
    graph, _, _ = await graphs.add_version(session, owner, "g", *doc("a"))
    _, proposed, created = await graphs.add_version(session, owner, "g", *doc("b"), activate=False)
    assert (created, proposed.version, graph.active_version) == (True, 2, 1)
    moves = await session.scalars(
        select(GraphActivation).where(GraphActivation.graph_id == graph.id)
    )
    assert [(m.previous, m.version) for m in moves] == [(None, 1)]


async def test_the_first_version_is_active_even_when_added_without_activating(
    session: AsyncSession,
) -> None:
    owner = await tenant_id(session)
    graph, _, _ = await graphs.add_version(session, owner, "g", *doc("a"), activate=False)
    assert graph.active_version == 1
