"""Two service processes on one Postgres database share the jobs and take over each other's.

Jobs are claimed with leases and ``SKIP LOCKED``: both processes run jobs, none runs twice,
and when one process dies (SIGKILL) the other finishes its job, taken over at its next claim
(the dead runner's owner lock is gone: no wait for the lease), calling again only the nodes
whose results were not stored at the kill.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    Call,
    DatabaseProbe,
    ServerProcess,
    Servers,
    all_calls,
    calls_by_marker,
    ended_status,
    endpoints_for,
    interrupted_calls,
    job_status,
    marked_graph,
    server_env,
    submit_job,
    tagged_inputs,
    upload_graph,
    wait_for,
)

pytestmark = pytest.mark.postgres

LATENCY_MS = 30
JOBS, ITEMS = 6, 150
BIG_JOB_ITEMS = 600
LEASE_S, HEARTBEAT_S, POLL_S = 3.0, 0.5, 0.2
SETTINGS = {
    "auto_migrate": "false",
    "runner_max_jobs": 1,
    "lease_s": LEASE_S,
    "heartbeat_s": HEARTBEAT_S,
    "poll_s": POLL_S,
    "flush_interval_s": 0.02,
}
MARKERS = ("alpha", "beta")


@pytest.fixture
def pair(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> dict[str, ServerProcess]:
    """Both servers, ready, on the fresh database; requests tell them apart by model name."""
    fake_llm.configure(latency_ms=LATENCY_MS, log=True)
    started = {}
    for marker in MARKERS:
        endpoints = endpoints_for(tmp_path / f"{marker}.yaml", fake_llm.base_url, marker, 16)
        started[marker] = running.start(marker, server_env(fresh_postgres, endpoints, **SETTINGS))
    return started


def owner_marker(owner: str | None, pair: dict[str, ServerProcess]) -> str | None:
    """Which server holds a lease (owner ids are ``host:pid:random``)."""
    if owner is None:
        return None
    pid = int(owner.split(":")[-2])
    return next(marker for marker, server in pair.items() if pid in server.pids)


def watch_until_finished(
    db: DatabaseProbe, job_ids: list[str], pair: dict[str, ServerProcess], timeout_s: float
) -> dict[str, set[str]]:
    """Poll the jobs table until these jobs end; returns which servers held each one's lease."""
    holders: dict[str, set[str]] = {job_id: set() for job_id in job_ids}

    def finished() -> bool | None:
        leases = db.leases()
        for job_id in job_ids:
            marker = owner_marker(leases[job_id][1], pair)
            if marker is not None:
                holders[job_id].add(marker)
        return all(leases[j][0] not in ("queued", "running") for j in job_ids) or None

    wait_for(finished, timeout_s, interval_s=0.02, what="every job to finish")
    return holders


def stored_calls(db: DatabaseProbe, job_id: str, tag: str) -> list[Call]:
    return [(tag, index, node) for index, node in db.node_results(job_id)]


def test_two_processes_share_jobs_and_take_over_a_dead_ones(
    pair: dict[str, ServerProcess], fresh_postgres: str, fake_llm: FakeLLM
) -> None:
    with DatabaseProbe(fresh_postgres) as db:
        _shared_jobs_run_once(pair, db, fake_llm)
        fake_llm.reset()
        _dead_process_job_taken_over(pair, db, fake_llm)


def _shared_jobs_run_once(
    pair: dict[str, ServerProcess], db: DatabaseProbe, fake_llm: FakeLLM
) -> None:
    servers = list(pair.values())
    graph_id = upload_graph(servers[0].client, marked_graph("two-processes"))
    tags = [f"j{n}" for n in range(JOBS)]
    job_ids = [
        submit_job(servers[n % 2].client, graph_id, tagged_inputs(tag, ITEMS))
        for n, tag in enumerate(tags)
    ]
    holders = watch_until_finished(db, job_ids, pair, timeout_s=60)

    by_marker = calls_by_marker(fake_llm.log())
    ran = {
        tag: {m for m, calls in by_marker.items() for call in calls if call[0] == tag}
        for tag in tags
    }
    print(f"\njobs per server: { {m: sorted(t for t in tags if ran[t] == {m}) for m in MARKERS} }")
    for job_id, tag in zip(job_ids, tags, strict=True):
        status = job_status(servers[0].client, job_id)
        assert status["status"] == "completed", status
        assert status["counts"]["succeeded"] == ITEMS
        assert len(ran[tag]) == 1, f"job {tag} was run by {ran[tag]}"
        assert holders[job_id] == ran[tag], "the lease holder is the process that called"
        stored = stored_calls(db, job_id, tag)
        assert len(stored) == len(set(stored)) == 3 * ITEMS
        assert set(stored) == all_calls(tag, ITEMS)
    assert {m for owners in ran.values() for m in owners} == set(MARKERS), "both ran jobs"
    every_call = Counter(call for calls in by_marker.values() for call in calls)
    expected = set().union(*(all_calls(tag, ITEMS) for tag in tags))
    assert set(every_call) == expected
    assert set(every_call.values()) == {1}, "each (job, item, node) was called exactly once"


def _dead_process_job_taken_over(
    pair: dict[str, ServerProcess], db: DatabaseProbe, fake_llm: FakeLLM
) -> None:
    submitter = pair[MARKERS[0]]
    graph_id = upload_graph(submitter.client, marked_graph("two-processes"))
    job_id = submit_job(submitter.client, graph_id, tagged_inputs("big", BIG_JOB_ITEMS))
    victim_marker = _wait_running_quarter(submitter, db, job_id, pair)
    victim = pair[victim_marker]
    survivor_marker = next(m for m in MARKERS if m != victim_marker)
    survivor = pair[survivor_marker]

    victim.kill()
    killed_at = time.monotonic()
    stored_at_kill = set(stored_calls(db, job_id, "big"))
    taken_over_s = _wait_owner(db, job_id, survivor_marker, pair) - killed_at
    final = wait_for(
        lambda: ended_status(survivor.client, job_id), timeout_s=LEASE_S + 20, what="the takeover"
    )
    completed_s = time.monotonic() - killed_at

    log = fake_llm.log()
    by_marker = calls_by_marker(log)
    before = [c for c in by_marker.get(victim_marker, []) if c[0] == "big"]
    after = [c for c in by_marker.get(survivor_marker, []) if c[0] == "big"]
    in_flight = interrupted_calls(log, victim_marker)
    repeated = set(before) & set(after)
    stored = stored_calls(db, job_id, "big")
    print(
        f"killed {victim_marker}: requests before the kill {len(before)}, stored at the kill "
        f"{len(stored_at_kill)}, repeated {len(repeated)} ({len(in_flight)} in flight); "
        f"{survivor_marker} took over after {taken_over_s:.2f}s, completed after {completed_s:.2f}s"
    )
    assert final["status"] == "completed", final
    assert final["counts"]["succeeded"] == BIG_JOB_ITEMS
    assert taken_over_s <= POLL_S + 1.5  # at the next claim, not when the lease lapses
    assert completed_s <= LEASE_S + 10
    assert len(stored) == len(set(stored)) == 3 * BIG_JOB_ITEMS
    assert set(stored) == all_calls("big", BIG_JOB_ITEMS)
    assert len(before) == len(set(before))
    assert len(after) == len(set(after))
    assert set(after) == all_calls("big", BIG_JOB_ITEMS) - stored_at_kill
    assert repeated <= set(before) - stored_at_kill
    assert set(in_flight) <= repeated


def _wait_running_quarter(
    server: ServerProcess, db: DatabaseProbe, job_id: str, pair: dict[str, ServerProcess]
) -> str:
    """Wait until a quarter of the job succeeded; the marker of the server that runs it."""

    def quarter() -> str | None:
        status = job_status(server.client, job_id)
        assert status["status"] in ("queued", "running"), status
        if status["counts"]["succeeded"] < BIG_JOB_ITEMS // 4:
            return None
        return owner_marker(db.leases()[job_id][1], pair)

    return wait_for(quarter, timeout_s=30, interval_s=0.02, what="a quarter of the big job")


def _wait_owner(
    db: DatabaseProbe, job_id: str, marker: str, pair: dict[str, ServerProcess]
) -> float:
    """When the job's lease first shows ``marker`` as its owner (or the job already ended)."""

    def owned() -> float | None:
        status, owner = db.leases()[job_id]
        if owner_marker(owner, pair) == marker or status == "completed":
            return time.monotonic()
        return None

    return wait_for(owned, timeout_s=LEASE_S + 10, interval_s=0.02, what="the takeover")
