"""An optimization run survives a SIGKILL of its server: restarted on the same database it
continues from the last finished trainer step and ends with the same history as an
uninterrupted run of the same request, and the fake server's log shows that the restarted
process made exactly the calls the unfinished steps and the test need, none of a finished step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import select

from app.db.models import NodeResult
from tests.support.fake_llm import FakeLLM
from tests.support.processes import DatabaseProbe, ServerProcess, Servers, server_env, wait_for
from tests.support.sim_tasks import dataset_bodies, fake_server_endpoints, graph_json, run_request

SETTINGS = {
    "auto_migrate": "false",
    "flush_interval_s": 0.02,
    "lease_s": 2,  # Postgres: the dead process's lease lapses quickly
    "heartbeat_s": 0.5,
    "poll_s": 0.2,
}
KILL_AFTER_STEPS = 3


def endpoints(path: Path, base_url: str) -> Path:
    path.write_text(yaml.safe_dump(fake_server_endpoints(base_url)))
    return path


def push_task_a(client: httpx.Client) -> dict[str, Any]:
    graph = graph_json("task-a")
    assert client.post("/v1/graphs", json=graph).status_code in (200, 201)
    ids = {}
    for name, body in dataset_bodies("task-a").items():
        headers = {"content-type": "application/x-ndjson"}
        response = client.post("/v1/datasets", params={"name": name}, content=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        ids[name] = response.json()["id"]
    return run_request({"graph_id": graph["name"], **ids}, seed=5)


def submit(server: ServerProcess, body: dict[str, Any]) -> str:
    response = server.client.post("/v1/optimizations", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def status(server: ServerProcess, run_id: str) -> dict[str, Any]:
    return dict(server.client.get(f"/v1/optimizations/{run_id}").json())


def finished(server: ServerProcess, run_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        shown = status(server, run_id)
        return shown if shown["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout_s=120, interval_s=0.1, what="the run to end")


def stored_calls(db: DatabaseProbe, run_id: str) -> tuple[int, int]:
    """The finished steps and the calls they made, as the stored trainer state says."""
    stmt = select(NodeResult.output).where(NodeResult.job_id == run_id)
    rows = db._rows(stmt)
    state = rows[0][0]["state"]
    return state["step"], sum(int(usage["calls"]) for usage in state["usage"].values())


def history(run: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (s["step"], s["scores"], [p["diff"] for p in s["proposals"]], s["accepted"], s["delta"],
         s["reason"], s["version"])
        for s in run["steps"]
    ]  # fmt: skip


def test_a_killed_run_resumes_with_the_same_history_and_no_repeated_step(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    env = server_env(db_url, endpoints(tmp_path / "sim.yaml", slow_llm.base_url), **SETTINGS)
    with DatabaseProbe(db_url) as db:
        first = running.start("first", env)
        body = push_task_a(first.client)
        run_id = submit(first, body)

        def midway() -> dict[str, Any] | None:
            shown = status(first, run_id)
            assert shown["state"] in ("queued", "running"), shown
            return shown if shown["step"] >= KILL_AFTER_STEPS else None

        wait_for(midway, timeout_s=60, interval_s=0.02, what="three finished steps")
        first.kill()
        wait_for(lambda: slow_llm.stats()["in_flight"] == 0 or None, 10, what="the fake to drain")
        at_kill = len(slow_llm.log())
        steps_done, calls_done = stored_calls(db, run_id)

        second = running.start("second", env)
        resumed = finished(second, run_id)
        after_restart = len(slow_llm.log()) - at_kill
        reference_start = len(slow_llm.log())
        reference = finished(second, submit(second, body))
        reference_calls = len(slow_llm.log()) - reference_start

    assert steps_done >= KILL_AFTER_STEPS
    assert (resumed["state"], resumed["stop_reason"]) == ("succeeded", "max_epochs")
    assert history(resumed) == history(reference)
    assert resumed["best"] == reference["best"]
    assert resumed["test"] == reference["test"]
    assert resumed["roles"] == reference["roles"]
    # the restarted process made exactly what the unfinished steps and the test needed
    assert after_restart == reference_calls - calls_done
