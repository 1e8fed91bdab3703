"""One quota across processes, measured at the fake server (INF_LIMITER_BACKEND=postgres).

Three ``inf-engine worker`` processes and one API process (``serve --no-runner``, serving
parallel ``POST /v1/runs``) share one database and two aliases: ``rpm`` (600 requests a minute)
and ``tpm`` (30 000 tokens a minute), 8 and 3 in flight at most. Demand is above all four for
70 s, so the busiest 60-s window the server saw is the limiter's doing; in the same 70 s
one ``serve`` on a database of its own keeps its job and parallel runs to 600 a minute. Then
a worker killed with SIGKILL mid-job: its concurrency slots stay taken until their lease lapses
(``INF_LIMITER_LEASE_S``), and then the other worker fills every slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.db import migrate
from tests.support.db import create_database, drop_database, require_server
from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    ServerProcess,
    Servers,
    launch_worker,
    server_env,
    submit_job,
    upload_graph,
    wait_for,
    wait_worker,
)
from tests.support.quota import (
    cancel_jobs,
    documents,
    limited_endpoints,
    one_call_per_alias,
    parallel_runs,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RPM, TPM, CAP, TPM_CAP = 600, 30_000, 8, 3
LOAD_S, WINDOW_S = 70.0, 60.0
WORKERS = ("w1", "w2", "w3")
ITEMS, PARALLEL_RUNS = 500, 4
ALIASES = {
    "rpm": {"rpm": RPM, "max_concurrent": CAP},
    "tpm": {"tpm": TPM, "max_concurrent": TPM_CAP},
}
# NOTE: a call holds its slot while it waits for the rate budget, and a starved host adds its
# own time per call: fast answers keep the demand above 600 rpm, and the first job's first
# SLOW_ITEMS (rpm alias only, answered after SLOW_MS) take all 8 slots: their process draws
# about a quarter of the 10 grants a second, so SLOW_MS leaves it time for 8 of them.
LATENCY_MS, SLOW_MS, SLOW_ITEMS = 20, 6_000, CAP
SLOW_RULE = {"match": "rpm: Facts.\n[slow", "delay_ms": SLOW_MS}
SOLO = {"solo": {"rpm": RPM, "max_concurrent": CAP}}
SETTINGS = {
    "auto_migrate": "false",
    "limiter_backend": "postgres",
    "runner_max_jobs": 1,
    "poll_s": 0.2,
    "heartbeat_s": 0.5,
}


@pytest.fixture
def serve_postgres() -> Iterator[str]:
    """A second migrated database, for a ``serve`` whose limits nobody else shares."""
    url = create_database(require_server())
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(url)


def start_service(
    running: Servers,
    database_url: str,
    fake_llm: FakeLLM,
    tmp_path: Path,
    workers: tuple[str, ...],
    aliases: dict[str, dict[str, Any]],
    **settings: Any,
) -> ServerProcess:
    """Starts ``workers`` and an API process without runner on ``aliases``; returns the API."""
    return start_all(
        running,
        tmp_path,
        workers,
        aliases_env(database_url, fake_llm, tmp_path, aliases, **settings),
    )["api"]


def aliases_env(
    database_url: str,
    fake_llm: FakeLLM,
    tmp_path: Path,
    aliases: dict[str, dict[str, Any]],
    **settings: Any,
) -> Callable[..., dict[str, str]]:
    """``env(marker, **extra)``: a process's settings with its endpoints file on ``aliases``."""

    def env(marker: str, **extra: Any) -> dict[str, str]:
        path = limited_endpoints(tmp_path / f"{marker}.yaml", fake_llm.base_url, marker, aliases)
        return server_env(database_url, path, **SETTINGS, **settings, **extra)

    return env


def start_all(
    running: Servers,
    tmp_path: Path,
    workers: tuple[str, ...],
    env: Callable[..., dict[str, str]],
    serves: dict[str, dict[str, str]] | None = None,
) -> dict[str, ServerProcess]:
    """Workers, an ``api`` without runner and ``serves`` (name -> env), by name."""
    # NOTE: the workers start while the others do: process start-up is most of a test's time.
    launched = [launch_worker(marker, env(marker), tmp_path) for marker in workers]
    running.started += launched
    started = {"api": running.start("api", env("api", runner_mode="none"))}
    started |= {name: running.start(name, serve_env) for name, serve_env in (serves or {}).items()}
    for worker in launched:
        wait_worker(worker)
    return started


def test_workers_and_an_api_never_pass_the_rpm_tpm_or_concurrency_limit(
    fresh_postgres: str, serve_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    """Also, meanwhile, one ``serve`` (HTTP + runner child) on a database of its own: its job
    and parallel runs keep its alias ``solo`` to 600 requests a minute as well."""
    fake_llm.configure(latency_ms=LATENCY_MS, rules=[SLOW_RULE], log=True)
    env = aliases_env(fresh_postgres, fake_llm, tmp_path, ALIASES)
    solo_env = aliases_env(serve_postgres, fake_llm, tmp_path, SOLO)("serve")
    started = start_all(running, tmp_path, WORKERS, env, {"serve": solo_env})
    api, serve = started["api"], started["serve"]
    graph_id = upload_graph(api.client, one_call_per_alias("quota", {"rpm": None, "tpm": 64}))
    runs_graph = upload_graph(api.client, one_call_per_alias("quota-runs", {"rpm": None}))
    solo_graph = upload_graph(serve.client, one_call_per_alias("solo", {"solo": None}))
    inputs = {tag: documents(tag, ITEMS) for tag in WORKERS}
    inputs[WORKERS[0]][:0] = documents("slow", SLOW_ITEMS)
    job_ids = [submit_job(api.client, graph_id, inputs[tag]) for tag in WORKERS]
    solo_job = submit_job(serve.client, solo_graph, documents("solo", 2 * ITEMS))
    wait_for(lambda: fake_llm.stats()["requests"] or None, 30, what="the first call")
    with (
        parallel_runs(api.url, runs_graph, PARALLEL_RUNS) as statuses,
        parallel_runs(serve.url, solo_graph, PARALLEL_RUNS) as solo_statuses,
    ):
        time.sleep(LOAD_S)
    cancel_jobs(api.client, job_ids)
    cancel_jobs(serve.client, [solo_job])
    rpm, tpm = fake_llm.window(WINDOW_S, "-rpm"), fake_llm.window(WINDOW_S, "-tpm")
    solo = fake_llm.window(WINDOW_S, "serve-solo")
    print(f"\nat the server: rpm alias {rpm}\ntpm alias {tpm}\nsolo alias {solo}")
    print(f"runs: {len(statuses)} on the API, {len(solo_statuses)} on the serve")

    assert statuses, "the API served runs during the load"
    assert set(statuses) == set(solo_statuses) == {200}, (statuses, solo_statuses)
    callers, span = _callers_and_span(fake_llm.log(), "-rpm")
    assert callers == {*WORKERS, "api"}, "every process called"
    assert span > WINDOW_S + 5
    assert 0.95 * RPM <= rpm["max_requests_in_window"] <= RPM
    assert 0.9 * TPM <= tpm["max_tokens_in_window"] <= TPM
    assert rpm["peak_in_flight"] == CAP, "the cap was reached, never passed"
    assert tpm["peak_in_flight"] <= TPM_CAP
    assert 0.95 * RPM <= solo["max_requests_in_window"] <= RPM
    assert solo["peak_in_flight"] <= CAP


def _callers_and_span(log: list[dict[str, Any]], suffix: str) -> tuple[set[str], float]:
    """The markers of the processes that called an alias, and its first to last arrival."""
    calls = [entry for entry in log if (entry["model"] or "").endswith(suffix)]
    times = [entry["t_arrival"] for entry in calls]
    return {entry["model"].removesuffix(suffix) for entry in calls}, max(times) - min(times)


LEASE_S, HOLD_MS = 3.0, 400
PAIR = ("alpha", "beta")


def test_a_killed_workers_slots_return_to_the_other_within_the_lease(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    fake_llm.configure(latency_ms=HOLD_MS, log=True)
    aliases = {"slots": {"max_concurrent": CAP}}
    api = start_service(
        running, fresh_postgres, fake_llm, tmp_path, PAIR, aliases, limiter_lease_s=LEASE_S
    )
    graph_id = upload_graph(api.client, one_call_per_alias("slots", {"slots": None}))
    job_ids = [submit_job(api.client, graph_id, documents(tag, ITEMS)) for tag in PAIR]
    wait_for(lambda: _both_hold_slots(fake_llm), 30, what="both workers to hold slots")
    victim = next(server for server in running.started if server.name == "alpha")
    victim.kill()
    killed = time.monotonic()
    wait_for(lambda: _in_flight(fake_llm, "beta-slots") == CAP or None, 3 * LEASE_S, 0.01)
    refilled = time.monotonic() - killed
    print(f"\nbeta holds all {CAP} slots {refilled:.2f} s after alpha's SIGKILL")
    cancel_jobs(api.client, job_ids[1:])

    assert refilled <= LEASE_S + 1.0, "the dead worker's slots came back within the lease"
    # NOTE: a refused slot frees a dead process's slots at once (its liveness lock is gone),
    # so they come back well before the lease lapses.
    assert fake_llm.window(WINDOW_S, "-slots")["peak_in_flight"] <= CAP


def _in_flight(fake_llm: FakeLLM, model: str) -> int:
    return sum(1 for e in fake_llm.log() if e["model"] == model and e["t_done"] is None)


def _both_hold_slots(fake_llm: FakeLLM) -> bool | None:
    held = [_in_flight(fake_llm, f"{marker}-slots") for marker in PAIR]
    return (min(held) > 0 and sum(held) == CAP) or None
