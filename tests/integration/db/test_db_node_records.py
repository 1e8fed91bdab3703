"""A node stored before a restart comes back as the same record: output, attempts, duration
and the usage of its model call (tokens, cost, latency, model, finish reason), so a resumed
item reports the call it reused, not an empty one."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import jobs, results
from app.engine import LLMUsage, NodeRecord, NodeStatus
from app.services.runner.node_rows import node_row, restored_records
from tests.support.db import seed_job, seed_version

USAGE = LLMUsage("fast", "gpt-x", 120, 30, 0.8, "stop", 0.0042, queued_s=0.05)


async def test_a_stored_node_is_restored_with_its_usage(session: AsyncSession) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [{}])
    await jobs.mark_running(session, job.id, [0])
    record = NodeRecord(
        "answer", NodeStatus.SUCCEEDED, output={"a": 1}, attempts=2,
        started_at=10.0, ended_at=11.5, usage=USAGE,
    )  # fmt: skip
    await results.write_batch(session, [node_row(job.id, 0, record, "fast", 1_700_000.0)], [])
    await session.commit()

    stored = await results.node_results_for(session, job.id, [0])
    restored = restored_records(stored[0])["answer"]

    assert restored.usage == USAGE
    assert (restored.output, restored.attempts, restored.restored) == ({"a": 1}, 2, True)
    assert restored.duration_s == 1.5


async def test_retries_round_trip_and_only_a_failed_node_keeps_its_inputs(
    session: AsyncSession,
) -> None:
    tenant, version = await seed_version(session)
    job = await seed_job(session, tenant, version.id, [{}])
    await jobs.mark_running(session, job.id, [0])
    inputs = {"doc": "text", "prompt": "Summarize: text"}
    succeeded = NodeRecord(
        "answer", NodeStatus.SUCCEEDED, output="ok", attempts=2, usage=USAGE,
        retries=["RateLimitError"], inputs=inputs,
    )  # fmt: skip
    failed = NodeRecord(
        "check", NodeStatus.FAILED, error="boom", attempts=1, retries=[], inputs=inputs
    )
    rows = [node_row(job.id, 0, record, "fast", 1_700_000.0) for record in (succeeded, failed)]
    await results.write_batch(session, rows, [])
    await session.commit()

    stored = {row.node_id: row for row in (await results.node_results_for(session, job.id, [0]))[0]}
    assert (stored["answer"].retries, stored["answer"].inputs) == (["RateLimitError"], None)
    assert (stored["check"].retries, stored["check"].inputs) == ([], inputs)
    restored = restored_records(list(stored.values()))["answer"]
    assert restored.retries == ["RateLimitError"]
