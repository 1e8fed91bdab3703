"""An API process without a runner and two ``inf-engine worker`` processes on one Postgres.

The API (``runner_mode = none``) makes no model call and reports its runner ``external``; the
workers find the jobs submitted through it, each job runs in one worker with every item
stored once, and a worker stopped with SIGTERM gives its lease back so the other finishes.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.test_two_processes import owner_marker, stored_calls, watch_until_finished
from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    DatabaseProbe,
    ServerProcess,
    Servers,
    all_calls,
    calls_by_marker,
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
SETTINGS = {
    "auto_migrate": "false",
    "runner_max_jobs": 1,
    "lease_s": 5.0,
    "heartbeat_s": 0.5,
    "poll_s": 0.2,
    "flush_interval_s": 0.02,
}
WORKERS = ("alpha", "beta")


@pytest.fixture
def service(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> dict[str, ServerProcess]:
    """``api`` (no runner) and the two workers, started and ready."""
    fake_llm.configure(latency_ms=30, log=True)

    def env(marker: str, **extra: str) -> dict[str, str]:
        endpoints = endpoints_for(tmp_path / f"{marker}.yaml", fake_llm.base_url, marker, 16)
        return server_env(fresh_postgres, endpoints, **SETTINGS, **extra)

    workers = running.start_workers({marker: env(marker) for marker in WORKERS})
    api = running.start("api", env("api", runner_mode="none"))
    return {"api": api, **{worker.name: worker for worker in workers}}


def test_an_api_without_runner_and_two_workers(
    service: dict[str, ServerProcess], fresh_postgres: str, fake_llm: FakeLLM
) -> None:
    with DatabaseProbe(fresh_postgres) as db:
        _jobs_run_in_the_workers(service, db, fake_llm)
        _sigterm_gives_the_job_back(service, db)


def _jobs_run_in_the_workers(
    service: dict[str, ServerProcess], db: DatabaseProbe, fake_llm: FakeLLM
) -> None:
    """Submitted to the API, run by the workers: each job by one, each worker one job."""
    api = service["api"]
    health = api.client.get("/healthz").json()
    assert health["runner"] == "external", health
    graph_id = upload_graph(api.client, marked_graph("separate-worker"))
    tags = ["one", "two"]
    job_ids = [submit_job(api.client, graph_id, tagged_inputs(tag, ITEMS)) for tag in tags]
    holders = watch_until_finished(db, job_ids, service, timeout_s=30)
    by_marker = calls_by_marker(fake_llm.log())
    assert "api" not in by_marker, "the API process made no model call"
    for job_id, tag in zip(job_ids, tags, strict=True):
        _assert_completed_once(api, db, job_id, tag)
        ran = {m for m, calls in by_marker.items() if any(c[0] == tag for c in calls)}
        assert len(ran) == 1, (tag, ran)
        assert holders[job_id] == ran, "the lease holder is the worker that called"
    assert set().union(*holders.values()) == set(WORKERS), "each worker ran a job"
    every_call = Counter(call for calls in by_marker.values() for call in calls)
    assert set(every_call.values()) == {1}, "each (job, item, node) was called once"


def _sigterm_gives_the_job_back(service: dict[str, ServerProcess], db: DatabaseProbe) -> None:
    """A worker stopped with SIGTERM exits 0 without its lease; the other finishes the job."""
    api = service["api"]
    graph_id = upload_graph(api.client, marked_graph("separate-worker"))
    job_id = submit_job(api.client, graph_id, tagged_inputs("big", 3 * ITEMS))
    holder = wait_for(
        lambda: owner_marker(db.leases()[job_id][1], service), 10, what="a worker's claim"
    )
    stopped = service[holder]
    stopped.proc.send_signal(signal.SIGTERM)
    assert stopped.proc.wait(timeout=10) == 0, stopped.log_tail()
    assert owner_marker(db.leases()[job_id][1], service) != holder, "its lease was given back"
    wait_for(lambda: db.leases()[job_id][0] == "completed" or None, 20, what="the job")
    _assert_completed_once(api, db, job_id, "big", 3 * ITEMS)


def _assert_completed_once(
    api: ServerProcess, db: DatabaseProbe, job_id: str, tag: str, items: int = ITEMS
) -> None:
    status = job_status(api.client, job_id)
    assert status["status"] == "completed", status
    assert status["counts"]["succeeded"] == items
    stored = stored_calls(db, job_id, tag)
    assert len(stored) == len(set(stored)) == 3 * items
    assert set(stored) == all_calls(tag, items)
