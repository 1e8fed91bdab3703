"""Batched writes of node results and finished items: idempotent, and counters stay exact."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, NodeResult
from app.db.repositories import jobs, results
from app.db.repositories.results import ItemRow, NodeRow
from tests.support.db import seed_job, seed_version


def node(job_id: str, index: int, node_id: str, output: object = "out") -> NodeRow:
    return NodeRow(
        job_id, index, node_id, "succeeded", output, None, None, 1, "fast", "m",
        10, 5, 0.25, 1.5, 1.0, 0.1,
    )  # fmt: skip


def item(job_id: str, index: int, status: str = "succeeded") -> ItemRow:
    error = None if status == "succeeded" else status
    return ItemRow(job_id, index, status, {"index": index}, error, 20, 10, 0.5)


async def running_job(session: AsyncSession, count: int) -> Job:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, list(range(count)))
    await jobs.mark_running(session, job.id, list(range(count)))
    return job


async def reloaded(session: AsyncSession, job: Job) -> Job:
    fresh = await jobs.get_job_by_id(session, job.id)
    assert fresh is not None
    return fresh


async def test_writing_the_same_batch_twice_stores_it_once(session: AsyncSession) -> None:
    job = await running_job(session, 4)
    nodes = [node(job.id, i, n) for i in range(3) for n in ("a", "b")]
    items = [item(job.id, 0), item(job.id, 1, "failed"), item(job.id, 2, "cancelled")]

    await results.write_batch(session, nodes, items)
    await session.commit()
    await results.write_batch(session, nodes, items)
    await session.commit()

    rows = await session.scalar(select(func.count()).select_from(NodeResult))
    assert rows == 6
    fresh = await reloaded(session, job)
    assert (fresh.running, fresh.succeeded, fresh.failed, fresh.cancelled) == (1, 1, 1, 1)
    assert (fresh.input_tokens, fresh.output_tokens) == (60, 30)
    assert fresh.cost == pytest.approx(1.5)
    statuses = [i.status for i in await jobs.results_page(session, job.id, -1, 10)]
    assert statuses == ["succeeded", "failed", "cancelled", "running"]


async def test_a_repeated_node_row_replaces_the_stored_one(session: AsyncSession) -> None:
    job = await running_job(session, 1)
    await results.write_batch(session, [node(job.id, 0, "a", "first")], [])
    await results.write_batch(session, [node(job.id, 0, "a", {"second": [1, 2]})], [])

    [stored] = await results.item_nodes(session, job.id, 0)
    assert stored.output == {"second": [1, 2]}
    assert (stored.alias, stored.input_tokens, stored.latency_s) == ("fast", 10, 1.0)


async def test_duplicates_within_one_batch_count_once(session: AsyncSession) -> None:
    job = await running_job(session, 1)
    await results.write_batch(
        session, [node(job.id, 0, "a"), node(job.id, 0, "a")], [item(job.id, 0), item(job.id, 0)]
    )
    fresh = await reloaded(session, job)
    assert (fresh.running, fresh.succeeded, fresh.input_tokens) == (0, 1, 20)


async def test_only_running_items_are_finished(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [0, 1])
    await jobs.mark_running(session, job.id, [0])

    await results.write_batch(session, [], [item(job.id, 0), item(job.id, 1)])

    fresh = await reloaded(session, job)
    assert (fresh.running, fresh.succeeded) == (0, 1)
    pending = await jobs.get_item(session, job.id, 1)
    assert pending is not None
    assert pending.status == "pending"


async def test_counters_are_kept_per_job(session: AsyncSession) -> None:
    first = await running_job(session, 3)
    tenant, version = first.tenant_id, first.graph_version_id
    second = await seed_job(session, tenant, version, [0, 1])
    await jobs.mark_running(session, second.id, [0, 1])

    batch = [item(first.id, 0), item(second.id, 0, "failed"), item(second.id, 1)]
    await results.write_batch(session, [node(first.id, 0, "a"), node(second.id, 1, "a")], batch)

    one, two = await reloaded(session, first), await reloaded(session, second)
    assert (one.running, one.succeeded, one.failed, one.input_tokens) == (2, 1, 0, 20)
    assert (two.running, two.succeeded, two.failed, two.input_tokens) == (0, 1, 1, 40)


async def test_an_unknown_item_status_is_refused(session: AsyncSession) -> None:
    job = await running_job(session, 1)
    with pytest.raises(ValueError, match="skipped"):
        await results.write_batch(session, [], [item(job.id, 0, "skipped")])


async def test_node_results_are_read_back_per_item(session: AsyncSession) -> None:
    job = await running_job(session, 3)
    await results.write_batch(session, [node(job.id, i, n) for i in (0, 2) for n in "ba"], [])

    found = await results.node_results_for(session, job.id, [0, 1, 2])
    assert {i: [r.node_id for r in rows] for i, rows in found.items()} == {
        0: ["a", "b"],
        2: ["a", "b"],
    }
    assert await results.node_results_for(session, job.id, []) == {}
    assert [r.node_id for r in await results.item_nodes(session, job.id, 2)] == ["a", "b"]
    assert await results.item_nodes(session, job.id, 1) == []


OUTPUTS = [
    "plain text",
    "",
    None,
    0,
    -2.5,
    True,
    [1, "two", None],
    {"nested": {"ünïcode": "✓ 漢字", "quote": 'say "hi"\n'}},
]


@pytest.mark.parametrize("output", OUTPUTS, ids=repr)
async def test_outputs_and_timestamps_round_trip(session: AsyncSession, output: object) -> None:
    job_id = (await running_job(session, 1)).id
    finished = ItemRow(job_id, 0, "succeeded", output, None, 1, 1, 0.0)
    await results.write_batch(session, [node(job_id, 0, "a", output)], [finished])
    await session.commit()
    session.expire_all()

    [stored] = await results.item_nodes(session, job_id, 0)
    [stored_item] = await jobs.results_page(session, job_id, -1, 1)
    assert (stored.output, stored_item.output) == (output, output)
    assert stored.finished_at.tzinfo is not None
    assert stored_item.finished_at is not None
    assert stored_item.finished_at.tzinfo is not None
