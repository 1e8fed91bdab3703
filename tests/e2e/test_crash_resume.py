"""A server killed mid-job (SIGKILL) resumes it after a restart on the same database.

Stored node results are the checkpoint: after the restart every (item, node) has exactly one
stored result, nodes stored before the kill are never called again, the only repeated
calls are those whose results were in flight or not yet flushed when the process died, and the
job page counts each node's results as they are stored.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.fake_llm import FakeLLM
from tests.support.graph_counts import drawn_counts
from tests.support.processes import (
    Call,
    DatabaseProbe,
    ServerProcess,
    Servers,
    all_calls,
    calls_by_marker,
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

ITEMS = 2_000
WINDOW = 128  # items in flight per process: bounds what a crash can lose
# Answers the result writer has not stored yet are lost too: up to one batch of rows (its
# flush_rows, 500 by default) is queued or being written at any moment.
FLUSH_ROWS = 500
MAX_CONCURRENT = 64  # per alias
KILL_AT = ITEMS // 4  # succeeded items before the kill
SETTINGS = {
    "auto_migrate": "false",
    "runner_window": WINDOW,
    "flush_interval_s": 0.02,
    "flush_rows": FLUSH_ROWS,
    "lease_s": 2,  # Postgres: the dead process's lease lapses quickly
    "heartbeat_s": 0.5,
    "poll_s": 0.2,
}
TAG = "crash"


def start(running: Servers, marker: str, db_url: str, llm: FakeLLM, tmp_path: Path) -> Any:
    path = tmp_path / f"{marker}.yaml"
    endpoints = endpoints_for(path, llm.base_url, marker, MAX_CONCURRENT)
    return running.start(marker, server_env(db_url, endpoints, **SETTINGS))


def kill_midway(server: ServerProcess, job_id: str) -> dict[str, Any]:
    """Poll until a quarter of the items succeeded with the job still running, then SIGKILL."""

    def midway() -> dict[str, Any] | None:
        status = job_status(server.client, job_id)
        assert status["status"] in ("queued", "running"), status
        return status if status["counts"]["succeeded"] >= KILL_AT else None

    status = wait_for(midway, timeout_s=30, interval_s=0.02, what="a quarter of the items")
    server.kill()
    return status


def completed(server: ServerProcess, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status = job_status(server.client, job_id)
        return status if status["status"] in ("completed", "failed", "cancelled") else None

    return wait_for(done, timeout_s=45, interval_s=0.1, what="the job to finish")


def test_killed_server_resumes_job_without_rerunning_stored_nodes(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    with DatabaseProbe(db_url) as db:
        first = start(running, "run1", db_url, slow_llm, tmp_path)
        graph_id = upload_graph(first.client, marked_graph("crash-resume"))
        job_id = submit_job(first.client, graph_id, tagged_inputs(TAG, ITEMS))
        at_kill = kill_midway(first, job_id)
        wait_for(lambda: slow_llm.stats()["in_flight"] == 0 or None, 10, what="the fake to drain")
        log = slow_llm.log()
        before = calls_by_marker(log).get("run1", [])
        in_flight = interrupted_calls(log, "run1")
        stored_at_kill = {(TAG, i, node) for i, node in db.node_results(job_id)}

        second = start(running, "run2", db_url, slow_llm, tmp_path)
        final = completed(second, job_id)
        after = calls_by_marker(slow_llm.log()).get("run2", [])
        stored = db.node_results(job_id)
        stored_tokens = db.input_tokens(job_id)
        stored_counts = db.node_counts(job_id)
        drawn = drawn_counts(second.client.get(f"/ui/jobs/{job_id}").text)

    repeated = set(before) & set(after)
    print(
        f"\nkilled at {at_kill['counts']['succeeded']} items succeeded; requests before the "
        f"kill {len(before)}, node results stored at the kill {len(stored_at_kill)}, "
        f"requests after the restart {len(after)}, repeated {len(repeated)} = "
        f"{len(in_flight)} in flight + {len(repeated) - len(in_flight)} answered but not stored "
        f"at the kill (bound: window {WINDOW} x 3 + a writer batch {FLUSH_ROWS})"
    )
    assert final["status"] == "completed", final
    assert final["counts"]["succeeded"] == ITEMS, final["counts"]
    # usage counts nodes stored before the kill too, each once
    assert final["usage"]["input_tokens"] == stored_tokens > 0
    # exactly one stored result per (item, node)
    assert len(stored) == ITEMS * 3
    # the job page counts each node's results as stored, whoever wrote them
    assert drawn == stored_counts
    assert sum(sum(counts.values()) for counts in drawn.values()) == ITEMS * 3
    assert {(TAG, i, node) for i, node in stored} == all_calls(TAG, ITEMS)
    # each process called each node at most once; together they called every node
    assert not _duplicates(before)
    assert not _duplicates(after)
    assert set(before) | set(after) == all_calls(TAG, ITEMS)
    # the restart ran exactly the nodes without a stored result: stored ones never again
    assert set(after) == all_calls(TAG, ITEMS) - stored_at_kill
    assert repeated <= set(before) - stored_at_kill
    assert set(in_flight) <= repeated
    assert 0 < len(stored_at_kill) < ITEMS * 3
    assert len(in_flight) <= 3 * WINDOW
    assert len(repeated) <= 3 * WINDOW + FLUSH_ROWS


def _duplicates(calls: list[Call]) -> list[Call]:
    return [call for call, count in Counter(calls).items() if count > 1]
