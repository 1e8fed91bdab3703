"""A frozen runner (SIGSTOP) loses its job to another process on Postgres; thawed (SIGCONT),
it stops that job at its next heartbeat, and the job is started once and ends once.

The lease keeper renews leases from a thread, so an event loop that stalls keeps them; a
process that is frozen as a whole cannot, and its job is taken over. What it does after the
thaw must not duplicate the job: no second ``job_started``, no second terminal event, one
stored result per (item, node).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db.models import JobEvent
from app.lifecycle import TERMINAL_EVENTS
from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    DatabaseProbe,
    ServerProcess,
    Servers,
    all_calls,
    ended_status,
    endpoints_for,
    job_status,
    marked_graph,
    server_env,
    submit_job,
    tagged_inputs,
    upload_graph,
    wait_for,
)

pytestmark = pytest.mark.postgres

ITEMS = 200
LEASE_S = 3.0
SETTINGS = {
    "auto_migrate": "false",
    "runner_max_jobs": 1,
    "runner_window": 16,
    "lease_s": LEASE_S,
    "heartbeat_s": 0.5,
    "poll_s": 0.2,
    "flush_interval_s": 0.02,
    "runner_stall_kill_s": 0,  # the takeover is the lease's work here, not the supervisor's
}
MARKERS = ("alpha", "beta")
FREEZES = 3


@pytest.fixture
def pair(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> dict[str, ServerProcess]:
    fake_llm.configure(latency_ms=300, log=True)  # calls are slow, writes few
    return {
        marker: running.start(
            marker,
            server_env(
                fresh_postgres,
                endpoints_for(tmp_path / f"{marker}.yaml", fake_llm.base_url, marker, 16),
                **SETTINGS,
            ),
        )
        for marker in MARKERS
    }


def runner_pid(server: ServerProcess) -> int:
    """The server's job runner: the child process multiprocessing spawned (not its tracker)."""
    [child] = [
        pid
        for pid in server.pids - {server.pid}
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return child


def holder(db: DatabaseProbe, job_id: str, pair: dict[str, ServerProcess]) -> str | None:
    owner = db.leases()[job_id][1]
    if owner is None:
        return None
    pid = int(owner.split(":")[-2])
    return next((m for m, server in pair.items() if pid in server.pids), None)


def freeze_until_taken_over(server: ServerProcess, taken: Callable[[], bool]) -> bool:
    """SIGSTOP the server's runner until ``taken()``, then SIGCONT; whether it was taken.

    A runner frozen inside a transaction keeps its row locks, and claimers skip locked rows:
    then nobody can take over until it runs again. So try again, at another moment, after
    letting it run long enough to finish that transaction."""
    pid = runner_pid(server)
    for _ in range(FREEZES):
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(lambda: taken() or None, timeout_s=LEASE_S + 10, what="the takeover")
            return True
        except TimeoutError:
            continue
        finally:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.5)
    return False


def event_kinds(db: DatabaseProbe, job_id: str) -> list[str]:
    stmt = select(JobEvent.kind).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
    return [kind for (kind,) in db._rows(stmt)]


def test_a_frozen_runner_loses_its_job_once_and_stops_it_when_thawed(
    pair: dict[str, ServerProcess], fresh_postgres: str
) -> None:
    first = pair[MARKERS[0]]
    graph_id = upload_graph(first.client, marked_graph("stalled"))
    job_id = submit_job(first.client, graph_id, tagged_inputs("s", ITEMS))
    with DatabaseProbe(fresh_postgres) as db:

        def running_quarter() -> str | None:
            done = job_status(first.client, job_id)["counts"]["succeeded"] >= ITEMS // 4
            return holder(db, job_id, pair) if done else None

        frozen_marker = wait_for(running_quarter, timeout_s=60, what="a quarter of the job")
        frozen = pair[frozen_marker]
        other = next(m for m in MARKERS if m != frozen_marker)
        assert freeze_until_taken_over(frozen, lambda: holder(db, job_id, pair) == other)
        final = wait_for(
            lambda: ended_status(first.client, job_id), timeout_s=60, what="the job's end"
        )
        wait_for(
            lambda: "lost the lease of job" in frozen.log_tail(200_000) or None,
            timeout_s=30,
            what="the thawed runner to notice its lost lease",
        )
        kinds = event_kinds(db, job_id)
        stored = db.node_results(job_id)

    assert (final["status"], final["counts"]["succeeded"]) == ("completed", ITEMS)
    assert kinds.count("job_started") == 1
    assert [kind for kind in kinds if kind in TERMINAL_EVENTS] == ["job_completed"]
    assert len(stored) == len(set(stored)) == 3 * ITEMS
    assert {("s", index, node) for index, node in stored} == all_calls("s", ITEMS)
