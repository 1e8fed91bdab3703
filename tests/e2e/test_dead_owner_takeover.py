"""A dead runner's jobs are taken over at once on Postgres, not after its lease lapses.

Each runner holds an advisory lock keyed by its lease owner id for its life; when it dies the
lock goes with its connection, so the job it held is claimed by the next claim whatever its
lease (30 s here): by the restarted service, or by another live one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

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

ITEMS, TAG = 800, "dead"
LATENCY_MS, MAX_CONCURRENT = 30, 4
# While the survivor starts (seconds, more on a loaded machine) the runner must not finish the
# job: replies are this slow until the runner is killed.
STALLED_LATENCY_MS = 500
PROMPTLY_S = 5.0  # what a user may rely on
WAIT_S = 8.0  # long enough to see it, well short of the lease
SETTINGS = {
    "auto_migrate": "false",
    "lease_s": 30,
    "heartbeat_s": 1,
    "poll_s": 1,
    "flush_interval_s": 0.02,
}


def start(running: Servers, marker: str, url: str, llm: FakeLLM, tmp_path: Path) -> ServerProcess:
    endpoints = endpoints_for(tmp_path / f"{marker}.yaml", llm.base_url, marker, MAX_CONCURRENT)
    return running.start(marker, server_env(url, endpoints, **SETTINGS))


def succeeded(server: ServerProcess, job_id: str) -> int:
    count: int = job_status(server.client, job_id)["counts"]["succeeded"]
    return count


def running_quarter(server: ServerProcess, job_id: str) -> int:
    """Wait until a quarter of the items succeeded, the job still running; how many did."""

    def quarter() -> int | None:
        status = job_status(server.client, job_id)
        assert status["status"] in ("queued", "running"), status
        done: int = status["counts"]["succeeded"]
        return done if done >= ITEMS // 4 else None

    return wait_for(quarter, timeout_s=30, interval_s=0.02, what="a quarter of the items")


def progressed_after(server: ServerProcess, job_id: str, since: float) -> float:
    """Seconds from ``since`` until the job gains a succeeded item."""
    before = succeeded(server, job_id)
    wait_for(
        lambda: succeeded(server, job_id) > before or None,
        timeout_s=WAIT_S,
        interval_s=0.05,
        what="the job to progress again",
    )
    return time.monotonic() - since


def finished(server: ServerProcess, job_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: ended_status(server.client, job_id),
        timeout_s=60,
        interval_s=0.1,
        what="the job to finish",
    )


def assert_stored_once(db: DatabaseProbe, server: ServerProcess, job_id: str) -> None:
    final = finished(server, job_id)
    assert final["status"] == "completed", final
    assert final["counts"]["succeeded"] == ITEMS
    stored = [(TAG, index, node) for index, node in db.node_results(job_id)]
    assert len(stored) == len(set(stored)) == 3 * ITEMS
    assert set(stored) == all_calls(TAG, ITEMS)


def test_a_restarted_service_resumes_a_killed_ones_job_at_once(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    fake_llm.configure(latency_ms=LATENCY_MS, log=True)
    first = start(running, "first", fresh_postgres, fake_llm, tmp_path)
    graph_id = upload_graph(first.client, marked_graph("dead-owner"))
    job_id = submit_job(first.client, graph_id, tagged_inputs(TAG, ITEMS))
    running_quarter(first, job_id)
    first.kill()

    second = start(running, "second", fresh_postgres, fake_llm, tmp_path)
    resumed_s = progressed_after(second, job_id, since=time.monotonic())
    print(f"\nprogressed {resumed_s:.2f}s after the restart (lease 30s)")
    assert resumed_s <= PROMPTLY_S
    with DatabaseProbe(fresh_postgres) as db:
        assert_stored_once(db, second, job_id)


def test_a_live_service_takes_over_a_killed_ones_job_at_once(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    fake_llm.configure(latency_ms=LATENCY_MS, log=True)
    runner = start(running, "runner", fresh_postgres, fake_llm, tmp_path)
    graph_id = upload_graph(runner.client, marked_graph("dead-owner"))
    job_id = submit_job(runner.client, graph_id, tagged_inputs(TAG, ITEMS))
    running_quarter(runner, job_id)  # claimed by the only service, before the other starts
    fake_llm.configure(latency_ms=STALLED_LATENCY_MS)
    survivor = start(running, "survivor", fresh_postgres, fake_llm, tmp_path)
    time.sleep(2 * SETTINGS["poll_s"])  # the survivor has polled and left the job alone
    assert job_status(survivor.client, job_id)["status"] == "running"
    runner.kill()
    fake_llm.configure(latency_ms=LATENCY_MS)

    taken_over_s = progressed_after(survivor, job_id, since=time.monotonic())
    print(f"\nprogressed {taken_over_s:.2f}s after the kill (lease 30s)")
    assert taken_over_s <= PROMPTLY_S
    with DatabaseProbe(fresh_postgres) as db:
        assert_stored_once(db, survivor, job_id)
