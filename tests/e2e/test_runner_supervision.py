"""The HTTP process supervises its job-runner child in a real ``python -m app serve``.

A runner killed with SIGKILL is restarted and its jobs resume; a job that kills its runner
every time it runs is failed after the second death while the runner goes on with other jobs;
a runner whose event loop stops answering (SIGSTOP) is reported stalled, with
``inf_runner_up 0``, until it answers again, or is killed and restarted once it has been
stalled for ``runner_stall_kill_s``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    DatabaseProbe,
    ServerProcess,
    Servers,
    endpoints_for,
    job_status,
    marked_graph,
    server_env,
    submit_job,
    tagged_inputs,
    upload_graph,
    wait_for,
)

pytestmark = pytest.mark.slow  # each starts a server and waits for runner restarts
SETTINGS = {
    "auto_migrate": "false",
    "lease_s": 2,
    "heartbeat_s": 0.5,
    "poll_s": 0.2,
    "flush_interval_s": 0.02,
    "runner_restart_backoff_s": 1.0,  # long enough to see the runner down
    "runner_ping_s": 0.2,
    "runner_answer_timeout_s": 1.0,
}
ITEMS = 1_000
FINISHED = ("completed", "failed", "cancelled")


def start(
    running: Servers, name: str, db_url: str, llm: FakeLLM, tmp_path: Path, **settings: Any
) -> ServerProcess:
    endpoints = endpoints_for(tmp_path / f"{name}.yaml", llm.base_url, name)
    return running.start(name, server_env(db_url, endpoints, **{**SETTINGS, **settings}))


def runner_pid(server: ServerProcess) -> int:
    """The server's runner child as of now (it changes with each restart)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    runners = [pid for pid in map(int, children) if b"spawn" in _cmdline(pid)]
    assert len(runners) == 1, (children, server.log_tail())
    return runners[0]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def health(server: ServerProcess) -> dict[str, Any]:
    response = server.client.get("/healthz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def runner_up(server: ServerProcess) -> float:
    text = server.client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "inf_runner_up":
            return float(family.samples[0].value)
    raise AssertionError("no inf_runner_up in /metrics")


def health_when(
    server: ServerProcess, wanted: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Poll ``/healthz`` until its body is ``wanted``; that body."""

    def probe() -> dict[str, Any] | None:
        body = health(server)
        return body if wanted(body) else None

    return wait_for(probe, timeout_s=60, interval_s=0.02, what=what)


def runner_restarted(server: ServerProcess, restarts: int) -> dict[str, Any]:
    return health_when(
        server,
        lambda body: (body["runner"], body["runner_restarts"]) == ("up", restarts),
        f"restart {restarts} of the runner",
    )


def finished(server: ServerProcess, job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = job_status(server.client, job_id)
        return status if status["status"] in FINISHED else None

    return wait_for(probe, timeout_s=90, interval_s=0.1, what=f"job {job_id} to end")


def held_by_runner(
    db: DatabaseProbe, server: ServerProcess, job_id: str, not_by: str | None
) -> str:
    """Wait until a runner other than ``not_by`` holds the job's lease and has started it."""

    def probe() -> str | None:
        status, owner = db.leases()[job_id]
        assert status not in FINISHED, job_status(server.client, job_id)
        started = job_status(server.client, job_id)["counts"]["running"] > 0
        return owner if owner is not None and owner != not_by and started else None

    return wait_for(probe, timeout_s=60, what=f"a runner to run job {job_id}")


def test_a_killed_runner_is_restarted_and_its_job_resumes(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    server = start(running, "killed", db_url, slow_llm, tmp_path)
    assert health(server) == {"status": "ok", "runner": "up", "runner_restarts": 0}
    assert runner_up(server) == 1
    graph_id = upload_graph(server.client, marked_graph("supervised"))
    job_id = submit_job(server.client, graph_id, tagged_inputs("k", ITEMS))
    wait_for(
        lambda: job_status(server.client, job_id)["counts"]["succeeded"] >= 50 or None,
        timeout_s=30,
        what="the first items",
    )
    first = runner_pid(server)

    os.kill(first, signal.SIGKILL)

    down = health_when(server, lambda body: body["runner"] != "up", "the runner reported down")
    assert down["runner"] in ("down", "restarting")
    assert runner_up(server) == 0
    assert server.client.get("/readyz").status_code == 503
    runner_restarted(server, 1)
    assert runner_pid(server) != first
    assert runner_up(server) == 1
    assert server.client.get("/readyz").status_code == 200
    final = finished(server, job_id)
    assert final["status"] == "completed", final
    assert final["counts"]["succeeded"] == ITEMS
    assert "killed by signal SIGKILL" in server.log_path.read_text()


def test_a_job_that_kills_its_runner_twice_is_failed_and_the_runner_goes_on(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    server = start(running, "bomb", db_url, slow_llm, tmp_path)
    graph_id = upload_graph(server.client, marked_graph("supervised"))
    with DatabaseProbe(db_url) as db:
        bomb = submit_job(server.client, graph_id, tagged_inputs("b", ITEMS))
        owner = None
        for death in (1, 2):  # each time the job runs, its runner dies
            owner = held_by_runner(db, server, bomb, not_by=owner)
            os.kill(runner_pid(server), signal.SIGKILL)
            runner_restarted(server, death)
            if death == 1:
                assert job_status(server.client, bomb)["status"] in ("queued", "running")
        failed = finished(server, bomb)
        assert db.leases()[bomb] == ("failed", None)

    assert failed["status"] == "failed", failed
    assert failed["error"] == (
        "the job's runner process died twice while running it (last: killed by signal SIGKILL)"
    )
    assert failed["counts"]["pending"] == failed["counts"]["running"] == 0
    assert failed["counts"]["cancelled"] > 0  # what it had not finished is closed
    after = submit_job(server.client, graph_id, tagged_inputs("a", 20))
    assert finished(server, after)["status"] == "completed"
    assert health(server) == {"status": "ok", "runner": "up", "runner_restarts": 2}


def test_a_stalled_runner_is_reported_until_it_answers_again(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    server = start(running, "stalled", db_url, slow_llm, tmp_path)
    pid = runner_pid(server)
    os.kill(pid, signal.SIGSTOP)
    try:
        assert runner_up(server) == 0  # the scrape waited at most the answer timeout
        stalled = health_when(server, lambda body: body["runner"] == "stalled", "a stall")
        assert server.client.get("/readyz").status_code == 200  # alive: this replica serves
    finally:
        os.kill(pid, signal.SIGCONT)

    health_when(server, lambda body: body["runner"] == "up", "the runner to answer again")
    assert stalled["runner_restarts"] == 0
    assert runner_up(server) == 1
    assert runner_pid(server) == pid  # the same process: it was never killed


def test_a_runner_stalled_too_long_is_killed_and_restarted(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    # On a loaded machine a restarted runner may be slow to answer too: a spare crash for it.
    server = start(
        running,
        "stuck",
        db_url,
        slow_llm,
        tmp_path,
        runner_stall_kill_s=5,
        runner_job_max_crashes=3,
    )
    graph_id = upload_graph(server.client, marked_graph("supervised"))
    job_id = submit_job(server.client, graph_id, tagged_inputs("s", 200))
    wait_for(
        lambda: job_status(server.client, job_id)["counts"]["succeeded"] > 0 or None,
        timeout_s=30,
        what="the first items",
    )
    stuck = runner_pid(server)

    os.kill(stuck, signal.SIGSTOP)  # never continued: only a kill ends it

    health_when(server, lambda body: body["runner"] == "stalled", "a stall")
    health_when(server, lambda body: body["runner_restarts"] >= 1, "a restart")
    final = finished(server, job_id)
    assert runner_pid(server) != stuck
    assert final["status"] == "completed", final  # it is resumed, not failed
    assert final["counts"]["succeeded"] == 200
    log = server.log_path.read_text()
    assert "killed by signal SIGKILL after it stalled for" in log
