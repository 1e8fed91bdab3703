"""A server whose Postgres is stopped for 20 s mid-job finishes the job once it is back.

The test runs a cluster of its own (``tests/support/pg_cluster.py``), so it can stop it.
While the database is down: the HTTP process and its runner child stay up, ``/healthz``
answers 200, ``/readyz`` and a job read answer 503 problem details, and the runner keeps
the answers of the calls in flight in memory. Once it is back the job completes with every
(item, node) stored exactly once, and no (item, node) is called twice: the runner kept its
lease and its unwritten results (the bound is in docs/operations.md), so nothing is redone.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.db import migrate
from tests.support.fake_llm import FakeLLM
from tests.support.pg_cluster import PgCluster, binaries
from tests.support.processes import (
    DatabaseProbe,
    ServerProcess,
    Servers,
    all_calls,
    calls_by_marker,
    endpoints_for,
    marked_graph,
    server_env,
    submit_job,
    tagged_inputs,
    upload_graph,
    wait_for,
)

pytestmark = pytest.mark.slow

ITEMS = 400  # more than a page (core.PAGE_SIZE, 256): a page is read while the database is down
OUTAGE_S = 20.0
STOP_AT = 60  # succeeded items before the database is stopped
LATENCY_MS = 150
MAX_CONCURRENT = 16  # per alias: ~100 calls/s, so the job outlasts the outage
SETTINGS = {
    "auto_migrate": "false",
    "runner_window": 64,
    "flush_interval_s": 0.05,
    "lease_s": 5,  # shorter than the outage: the lease lapses while the database is down
    "heartbeat_s": 0.5,
    "poll_s": 0.2,
}
TAG = "outage"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("no Postgres binaries under /usr/lib/postgresql/*/bin")
    with PgCluster.create(bin_dir) as made:
        migrate.upgrade(made.url)
        yield made


def test_job_survives_a_database_restart(
    cluster: PgCluster, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    fake_llm.configure(latency_ms=LATENCY_MS, log=True)
    endpoints = endpoints_for(tmp_path / "e.yaml", fake_llm.base_url, "srv", MAX_CONCURRENT)
    server = running.start("srv", server_env(cluster.url, endpoints, **SETTINGS))
    children = _children(server.pid)  # the runner child (and multiprocessing's tracker)
    graph_id = upload_graph(server.client, marked_graph("outage"))
    job_id = submit_job(server.client, graph_id, tagged_inputs(TAG, ITEMS))
    wait_for(lambda: _succeeded(server, job_id) >= STOP_AT or None, 30, what="items to succeed")

    cluster.stop()
    seen = _watch_outage(server, (graph_id, job_id), fake_llm, OUTAGE_S)
    cluster.start()

    final = wait_for(lambda: _finished(server, job_id), 90, interval_s=0.2, what="the job")
    with DatabaseProbe(cluster.url) as db:
        stored = db.node_results(job_id)
        stored_tokens = db.input_tokens(job_id)
    calls = calls_by_marker(fake_llm.log()).get("srv", [])
    print(f"\nduring the outage: {seen}; calls {len(calls)}, stored {len(stored)}")

    assert seen["readyz"] == {503}, seen
    assert seen["healthz"] == {200}, seen
    # /metrics still answers, and shows the results the runner holds for the database
    assert None not in seen["queued"], seen
    assert max(seen["queued"]) > 0, seen
    assert seen["job_read"] == seen["submit"] == {503}, seen
    assert seen["calls_during"] > 0, "no model call was in flight when the database stopped"
    # the run needed the database meanwhile (its next page of items), and waited
    assert f"job {job_id}: database unavailable" in server.log_tail(10**8)
    assert server.alive, server.log_tail()
    assert _children(server.pid) == children, "the runner child was restarted"
    health = server.client.get("/healthz").json()
    assert (health["runner"], health["runner_restarts"]) == ("up", 0), health
    assert final["status"] == "completed", final
    assert final["counts"]["succeeded"] == ITEMS, final["counts"]
    assert final["usage"]["input_tokens"] == stored_tokens > 0
    assert sorted(stored) == sorted(set(stored)), "an (item, node) is stored twice"
    assert {(TAG, i, node) for i, node in stored} == all_calls(TAG, ITEMS)
    assert set(calls) == all_calls(TAG, ITEMS)
    # nothing was lost, so nothing was called again
    assert [call for call, n in Counter(calls).items() if n > 1] == []


def _watch_outage(
    server: ServerProcess, ids: tuple[str, str], llm: FakeLLM, seconds: float
) -> dict[str, Any]:
    """Probe the server while the database is down: the statuses seen, calls made meanwhile."""
    graph_id, job_id = ids
    seen: dict[str, Any] = {"readyz": set(), "healthz": set(), "job_read": set(), "submit": set()}
    seen["queued"] = []  # the runner's result queue, as /metrics shows it
    calls_before = llm.stats()["requests"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = server.client.get("/readyz", timeout=10)
        assert ready.headers["content-type"].startswith(PROBLEM_JSON), ready.text
        seen["readyz"].add(ready.status_code)
        seen["healthz"].add(server.client.get("/healthz", timeout=10).status_code)
        seen["queued"].append(_queued_rows(server.client.get("/metrics", timeout=10)))
        read = server.client.get(f"/v1/jobs/{job_id}", timeout=10)
        job = {"graph_id": graph_id, "inputs": tagged_inputs("refused", 1)}
        submit = server.client.post("/v1/jobs", json=job, timeout=10)
        for name, answer in (("job_read", read), ("submit", submit)):
            assert answer.headers["content-type"].startswith(PROBLEM_JSON), answer.text
            seen[name].add(answer.status_code)
        time.sleep(1.0)
    seen["calls_during"] = llm.stats()["requests"] - calls_before
    return seen


def _queued_rows(metrics: httpx.Response) -> float | None:
    """``inf_result_queue_rows`` of the runner process, or ``None`` if /metrics did not say."""
    if metrics.status_code != 200:
        return None
    for family in text_string_to_metric_families(metrics.text):
        for sample in family.samples:
            if sample.name == "inf_result_queue_rows" and sample.labels["process"] == "runner":
                return sample.value
    return None


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (the runner child of a server)."""
    return set(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))


def _succeeded(server: ServerProcess, job_id: str) -> int:
    status = server.client.get(f"/v1/jobs/{job_id}").json()
    assert status["status"] in ("queued", "running"), status
    return int(status["counts"]["succeeded"])


def _finished(server: ServerProcess, job_id: str) -> dict[str, Any] | None:
    try:
        response = server.client.get(f"/v1/jobs/{job_id}")
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    status: dict[str, Any] = response.json()
    return status if status["status"] in ("completed", "failed", "cancelled") else None
