"""A second run kind runs through the durable-run core: the scoring test double
(tests/support/run_kinds.py) is claimed with a lease, its runner process is killed with SIGKILL
mid-run, another runner resumes it from what was stored, and it ends through the one end-of-run
path, with its events in increasing ids."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db.models import Job, JobEvent, JobItem, NodeResult
from app.db.session import create_engine, session_factory
from tests.support.db import seed_version
from tests.support.processes import REPO_ROOT, wait_for
from tests.support.run_kinds import DELAY, MARKER, STEP_LOG, submit_scoring

STEPS = 200
SETTINGS = {
    "INF_AUTH_MODE": "open",
    "INF_RUNNER_WINDOW": "16",
    "INF_FLUSH_INTERVAL_S": "0.02",
    "INF_LEASE_S": "1",  # Postgres: the killed runner's lease lapses quickly
    "INF_HEARTBEAT_S": "0.2",
    "INF_POLL_S": "0.1",
    DELAY: "0.03",
}


class Database:
    """Synchronous reads and seeding for the test (the runners are other processes)."""

    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self.engine = create_engine(url)
        self.sessions = session_factory(self.engine)

    def close(self) -> None:
        self.runner.run(self.engine.dispose())
        self.runner.close()

    def submit(self, values: list[int]) -> str:
        async def submit() -> str:
            async with self.sessions() as session:
                tenant, version = await seed_version(session)
                job = await submit_scoring(session, tenant, version.id, values)
                await session.commit()
                return job.id

        return self.runner.run(submit())

    def rows(self, stmt: Any) -> list[Any]:
        async def fetch() -> list[Any]:
            async with self.engine.connect() as connection:
                return list(await connection.execute(stmt))

        return self.runner.run(fetch())

    def job(self, job_id: str) -> Any:
        return self.rows(select(Job).where(Job.id == job_id))[0]


def start_runner(db_url: str, marker: str, log: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **SETTINGS, "INF_DATABASE_URL": db_url, MARKER: marker, STEP_LOG: str(log)}
    command = [sys.executable, "-m", "tests.support.run_kind_worker"]
    with (tmp_path / f"{marker}.log").open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def ended(job: Any) -> Any:
    return job if job.status in ("completed", "failed", "cancelled") else None


def succeeded(db: Database, job_id: str) -> int:
    stmt = select(JobItem.item_index).where(JobItem.job_id == job_id, JobItem.status == "succeeded")
    return len(db.rows(stmt))


def logged(log: Path, marker: str) -> list[tuple[int, str]]:
    lines = log.read_text().split("\n") if log.exists() else []
    return [
        (int(i), phase) for m, i, phase in (line.split() for line in lines if line) if m == marker
    ]


def test_a_second_run_kind_is_leased_killed_resumed_and_ended_once(
    db_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"
    db = Database(db_url)
    first = start_runner(db_url, "run1", log, tmp_path)
    second = None
    try:
        job_id = db.submit(list(range(STEPS)))
        # wait on what is stored, not on the phase log: the writer batches, so a logged step
        # may not have reached the database yet on a loaded host
        wait_for(lambda: succeeded(db, job_id) >= STEPS // 5 or None, 30, what="stored steps")
        held = db.job(job_id)
        assert (held.kind, held.status) == ("scoring-double", "running")
        assert held.lease_owner.split(":")[1] == str(first.pid)  # claimed with a lease
        assert held.lease_expires_at.replace(tzinfo=UTC) > datetime.now(UTC)

        first.send_signal(signal.SIGKILL)
        first.wait()
        done_at_kill = {i for (i,) in db.rows(select(JobItem.item_index).where(
            JobItem.job_id == job_id, JobItem.status == "succeeded"))}  # fmt: skip
        drafts_at_kill = {i for (i,) in db.rows(select(NodeResult.item_index).where(
            NodeResult.job_id == job_id, NodeResult.node_id == "draft"))}  # fmt: skip
        assert 0 < len(done_at_kill) < STEPS

        second = start_runner(db_url, "run2", log, tmp_path)
        final = wait_for(lambda: ended(db.job(job_id)), 30, what="the resumed run to end")
        items = db.rows(select(JobItem.item_index, JobItem.status, JobItem.output).where(
            JobItem.job_id == job_id))  # fmt: skip
        events = db.rows(select(JobEvent.id, JobEvent.kind, JobEvent.data).where(
            JobEvent.job_id == job_id).order_by(JobEvent.id))  # fmt: skip
    finally:
        for runner in (first, second):
            if runner is not None and runner.poll() is None:
                runner.send_signal(signal.SIGKILL)
                runner.wait()
        db.close()

    assert (final.status, final.succeeded, final.running, final.lease_owner) == (
        "completed", STEPS, 0, None,
    )  # fmt: skip
    assert {i: (status, out) for i, status, out in items} == {
        i: ("succeeded", {"score": 2 * (i + 1)}) for i in range(STEPS)
    }
    # resumed, not restarted: the second runner ran nothing the first had stored
    rerun = logged(log, "run2")
    assert rerun
    assert not {i for i, _ in rerun} & done_at_kill
    assert not {i for i, phase in rerun if phase == "draft"} & drafts_at_kill
    # events in id order: submitted, started, one scored event per step, the one end last
    order = [kind for _, kind, _ in events]
    assert order[:2] == ["job_submitted", "job_started"]
    kinds = Counter(order)
    assert (kinds["job_submitted"], kinds["job_started"], kinds["job_completed"]) == (1, 1, 1)
    scored = Counter(data["index"] for _, kind, data in events if kind == "step_scored")
    assert scored == Counter(range(STEPS))
    assert events[-1][1] == "job_completed"
    assert events[-1][2]["counts"]["succeeded"] == STEPS
