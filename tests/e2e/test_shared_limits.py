"""One ``serve``: the HTTP process (``POST /v1/runs``) and its runner child share one alias's
concurrency cap through the shared rate store, as the fake server's peak in flight shows.
With the default settings the store is the service's database: the SQLite file of one
``serve``, or the Postgres of a ``serve`` and a worker.

With ``INF_LIMITER_BACKEND=local`` each process has its own limiter, so the same load goes
over the cap: that control shows the measurement can tell the two apart. The rate side (no
60-s window above ``rpm`` for a job plus parallel runs in one ``serve``) needs 70 s of load:
it runs alongside the multi-process one in tests/e2e/test_quota_across_processes.py.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.db import sqlite_url
from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    ServerProcess,
    Servers,
    endpoints_for,
    job_status,
    server_env,
    submit_job,
    upload_graph,
    wait_for,
)
from tests.support.redis import REDIS_URL, require_redis

pytestmark = pytest.mark.slow

CAP, LATENCY_MS = 5, 100
JOB_ITEMS, PARALLEL_RUNS = 150, 10
ONE_CALL = {
    "name": "one-call",
    "inputs": {"doc1": {"type": "string"}},
    "nodes": [
        {"id": "facts", "op": "llm", "alias": "fast", "system": "Facts.", "prompt": "{doc1}"}
    ],
    "outputs": {"facts": "facts"},
}


@pytest.fixture
def loaded(fake_llm: FakeLLM, running: Servers, tmp_path: Path) -> Any:
    """Starts one server on ``database_url`` with ``settings`` and measures its peak."""
    fake_llm.configure(latency_ms=LATENCY_MS)

    def measure(database_url: str, **settings: Any) -> int:
        endpoints = endpoints_for(tmp_path / "endpoints.yaml", fake_llm.base_url, "shared", CAP)
        server = running.start("shared", server_env(database_url, endpoints, **settings))
        return peak_under_load(server, fake_llm)

    return measure


def peak_under_load(server: ServerProcess, fake_llm: FakeLLM, jobs: int = 1) -> int:
    """The fake server's peak in flight while ``jobs`` jobs and parallel runs call one alias."""
    graph_id = upload_graph(server.client, ONE_CALL)
    inputs = [{"doc1": f"job item {i}"} for i in range(JOB_ITEMS)]
    job_ids = [submit_job(server.client, graph_id, inputs) for _ in range(jobs)]
    wait_for(lambda: fake_llm.stats()["requests"] >= CAP or None, 30, what="the job to call")
    statuses = asyncio.run(parallel_runs(server.url, graph_id))
    for job_id in job_ids:
        wait_for(
            lambda job_id=job_id: (
                job_status(server.client, job_id)["status"] == "completed" or None
            ),
            90,
            what="the jobs to complete",
        )
    assert statuses == [200] * PARALLEL_RUNS
    peak: int = fake_llm.stats()["peak_in_flight"]
    print(f"\npeak in flight at the server: {peak} (cap {CAP})")
    return peak


async def parallel_runs(url: str, graph_id: str) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        answers = await asyncio.gather(
            *(
                client.post("/v1/runs", json={"graph_id": graph_id, "inputs": {"doc1": f"r{n}"}})
                for n in range(PARALLEL_RUNS)
            )
        )
    return [answer.status_code for answer in answers]


def test_with_redis_the_http_process_and_the_runner_share_the_cap(
    loaded: Any, tmp_path: Path
) -> None:
    require_redis()
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    peak = loaded(
        sqlite_url(tmp_path / "service.sqlite"),
        limiter_backend="redis",
        redis_url=REDIS_URL,
        redis_prefix=prefix,
    )
    assert 0 < peak <= CAP


@pytest.mark.postgres
def test_with_postgres_the_http_process_and_the_runner_share_the_cap(
    loaded: Any, fresh_postgres: str
) -> None:
    peak = loaded(fresh_postgres, limiter_backend="postgres", auto_migrate="false")
    assert 0 < peak <= CAP


def test_with_auto_on_sqlite_the_http_process_and_the_runner_share_the_cap(
    loaded: Any, tmp_path: Path
) -> None:
    peak = loaded(sqlite_url(tmp_path / "service.sqlite"), limiter_backend="auto")
    assert 0 < peak <= CAP


@pytest.mark.postgres
def test_with_auto_on_postgres_a_serve_and_a_worker_share_the_cap(
    fake_llm: FakeLLM, running: Servers, fresh_postgres: str, tmp_path: Path
) -> None:
    """Three processes call the alias: the HTTP process (its runs), the serve's runner and the
    worker (a job each: one job at a time per runner)."""
    fake_llm.configure(latency_ms=LATENCY_MS)
    endpoints = endpoints_for(tmp_path / "endpoints.yaml", fake_llm.base_url, "shared", CAP)
    env = server_env(
        fresh_postgres, endpoints, auto_migrate="false", runner_max_jobs=1, limiter_backend="auto"
    )
    running.start_workers({"worker": env})
    server = running.start("shared", env)
    peak = peak_under_load(server, fake_llm, jobs=2)
    assert 0 < peak <= CAP


def test_control_with_local_limits_the_two_processes_exceed_the_cap(
    loaded: Any, tmp_path: Path
) -> None:
    """The evidence that the measurement tells: each process alone keeps its own cap."""
    peak = loaded(sqlite_url(tmp_path / "service.sqlite"), limiter_backend="local")
    assert CAP < peak <= 2 * CAP
