"""A runner process that died is charged to the jobs it held: one that reached the limit is
failed like any other failed job (status, reason, open items closed, terminal event, webhook),
the others are released for the restarted runner. (The subprocess side is in tests/e2e.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.db.models import Job
from app.db.repositories import events as events_repo
from app.db.repositories import jobs as jobs_repo
from app.services.runner.crashes import CrashRecorder
from app.settings import Settings
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service, loopback_webhooks

HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The hook is on loopback, which the operator opens for these tests."""
    return loopback_webhooks(settings)


async def submit(service: Service, items: int) -> str:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    body = {"graph_id": "echo", "inputs": [{"text": f"t{i}"} for i in range(items)]}
    response = await service.client.post("/v1/jobs", json={**body, "webhook_url": HOOK})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def held_by(service: Service, owner: str, running: list[int]) -> list[str]:
    """Lease every claimable job to ``owner`` and mark these items of each running."""
    async with service.runtime.sessions() as session:
        claimed = await jobs_repo.claim_jobs(session, owner, 30.0, 10, datetime.now(UTC))
        for job in claimed:
            await jobs_repo.mark_running(session, job.id, running)
        await session.commit()
    return [job.id for job in claimed]


async def stored(service: Service, job_id: str) -> tuple[Job, list[Any]]:
    async with service.runtime.sessions() as session:
        job = await jobs_repo.get_job_by_id(session, job_id)
        events = await events_repo.events_after(session, job_id, 0, 1_000)
    assert job is not None
    return job, [(event.kind, event.data) for event in events]


async def test_a_job_whose_runner_died_twice_is_failed_and_closed(service: Service) -> None:
    job_id = await submit(service, 3)
    record = CrashRecorder(service.runtime.sessions, service.runtime.metrics, max_crashes=2)
    assert await held_by(service, "runner-1", [0]) == [job_id]

    assert await record("runner-1", "killed by signal SIGKILL") == []
    job, _ = await stored(service, job_id)
    assert (job.status, job.runner_crashes, job.lease_owner) == ("running", 1, None)

    assert await held_by(service, "runner-2", [1]) == [job_id]  # released: claimable at once
    assert await record("runner-2", "exit code 1") == [job_id]

    reason = "the job's runner process died twice while running it (last: exit code 1)"
    status = (await service.client.get(f"/v1/jobs/{job_id}")).json()
    assert (status["status"], status["error"], status["webhook_state"]) == (
        "failed",
        reason,
        "pending",
    )
    assert status["counts"] == {
        "total": 3,
        "pending": 0,
        "running": 0,
        "waiting": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 3,
    }
    job, events = await stored(service, job_id)
    assert job.lease_owner is None
    kind, data = events[-1]
    assert (kind, data["error"], data["counts"]["cancelled"]) == ("job_failed", reason, 3)
    items = (await service.client.get(f"/v1/jobs/{job_id}/results")).json()["items"]
    assert {item["status"] for item in items} == {"cancelled"}


async def test_only_the_dead_runners_jobs_are_charged(service: Service) -> None:
    first = await submit(service, 2)
    assert await held_by(service, "alive", [0]) == [first]
    second = await submit(service, 2)
    assert await held_by(service, "dead", [0]) == [second]
    record = CrashRecorder(service.runtime.sessions, service.runtime.metrics, max_crashes=1)

    assert await record("dead", "killed by signal SIGSEGV") == [second]

    kept, _ = await stored(service, first)
    failed, _ = await stored(service, second)
    assert (kept.status, kept.runner_crashes, kept.lease_owner) == ("running", 0, "alive")
    assert (failed.status, failed.runner_crashes) == ("failed", 1)
    assert failed.error == (
        "the job's runner process died once while running it (last: killed by signal SIGSEGV)"
    )
