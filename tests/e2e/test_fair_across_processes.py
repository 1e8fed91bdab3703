"""Fairness across processes (INF_LIMITER_BACKEND=postgres): a 20-item job that another
worker runs, submitted while a big job holds every slot of the shared alias, is ``completed``
within twice its ideal time (the time it takes on the idle alias), measured at the client.

Two ``inf-engine worker`` processes, each running one job at a time, and an API process share
one database and an alias of ``max_concurrent: 16``; the big job's worker holds all 16 slots
when the small job arrives, so the small job's calls get slots only as the big job's worker
gives leases back to the store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    Servers,
    ended_status,
    launch_worker,
    server_env,
    submit_job,
    upload_graph,
    wait_for,
    wait_worker,
)
from tests.support.quota import cancel_jobs, documents, limited_endpoints, one_call_per_alias

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CAP, SMALL, BIG = 16, 20, 2_000
WORKERS = ("w1", "w2")
ALIASES = {"fair": {"max_concurrent": CAP}}
SETTINGS = {
    "auto_migrate": "false",
    "limiter_backend": "postgres",
    "runner_max_jobs": 1,
    "poll_s": 0.1,
    "heartbeat_s": 0.5,
}


def in_flight(fake_llm: FakeLLM) -> dict[str, int]:
    """Calls the fake server is answering now, by the worker that sent them."""
    held: dict[str, int] = {}
    for entry in fake_llm.log():
        if entry["t_done"] is None and (entry["model"] or "").endswith("-fair"):
            worker = entry["model"].removesuffix("-fair")
            held[worker] = held.get(worker, 0) + 1
    return held


def timed(client: httpx.Client, graph_id: str, tag: str) -> float:
    """Seconds from submitting a job of ``SMALL`` items until it is ``completed``."""
    began = time.monotonic()
    job_id = submit_job(client, graph_id, documents(tag, SMALL))
    status = wait_for(lambda: ended_status(client, job_id), 60, 0.02, what=f"the {tag} job")
    assert (status["status"], status["counts"]["succeeded"]) == ("completed", SMALL), status
    return time.monotonic() - began


def workers_of(fake_llm: FakeLLM, tag: str) -> set[str]:
    """The workers whose calls carried inputs tagged ``tag``."""
    return {
        entry["model"].removesuffix("-fair")
        for entry in fake_llm.log()
        if f"[{tag}/" in (entry["prompt"] or "")
    }


def test_a_small_job_on_another_worker_gets_its_share_of_the_alias(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    fake_llm.configure(latency_ms=800, jitter_ms=400, log=True)

    def env(marker: str, **extra: Any) -> dict[str, str]:
        path = limited_endpoints(tmp_path / f"{marker}.yaml", fake_llm.base_url, marker, ALIASES)
        return server_env(fresh_postgres, path, **SETTINGS, **extra)

    workers = [launch_worker(marker, env(marker), tmp_path) for marker in WORKERS]
    running.started += workers
    api = running.start("api", env("api", runner_mode="none"))
    for worker in workers:
        wait_worker(worker)
    graph_id = upload_graph(api.client, one_call_per_alias("fair", {"fair": None}))
    ideal = timed(api.client, graph_id, "ideal")
    big = submit_job(api.client, graph_id, documents("big", BIG))
    wait_for(lambda: sum(in_flight(fake_llm).values()) == CAP or None, 30, what="a full alias")
    [big_worker] = workers_of(fake_llm, "big")

    took = timed(api.client, graph_id, "small")

    cancel_jobs(api.client, [big])
    print(f"\nsmall job: {took:.2f} s beside the big job, {ideal:.2f} s alone")
    assert workers_of(fake_llm, "small") == set(WORKERS) - {big_worker}
    assert took <= 2 * ideal, (took, ideal)
