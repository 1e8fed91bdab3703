"""A server killed (SIGKILL) while items wait at a human node: after a restart on the same
database the waits are all there, the answers resume every item, and no node that finished
before the kill is called again (checked at the fake server's log)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    Servers,
    ended_status,
    endpoints_for,
    job_status,
    request_marker,
    server_env,
    submit_job,
    upload_graph,
    wait_for,
)

ITEMS = 30
SETTINGS = {"auto_migrate": "false", "lease_s": 2, "heartbeat_s": 0.5, "poll_s": 0.2}
GRAPH: dict[str, Any] = {
    "name": "approve-after-kill",
    "inputs": {"text": {"type": "string"}},
    "nodes": [
        {"id": "draft", "op": "llm", "alias": "fast", "prompt": "draft {text}"},
        {
            "id": "ok",
            "op": "human",
            "prompt": "Approve {text}?",
            "schema": {"type": "object", "required": ["approve"]},
        },
        {"id": "final", "op": "llm", "alias": "fast", "prompt": "final {ok.approve} {text}"},
    ],
    "outputs": {"final": "final"},
}


def start(running: Servers, marker: str, db_url: str, llm: FakeLLM, tmp_path: Path) -> Any:
    endpoints = endpoints_for(tmp_path / f"{marker}.yaml", llm.base_url, marker)
    return running.start(marker, server_env(db_url, endpoints, **SETTINGS))


def calls(log: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(server, prompt) of every call the fake server answered."""
    return Counter((request_marker(e), e["prompt"]) for e in log if e.get("status") == 200)


def test_waits_survive_a_kill_and_finished_nodes_never_run_again(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    first = start(running, "run1", db_url, slow_llm, tmp_path)
    upload_graph(first.client, GRAPH)
    job_id = submit_job(first.client, GRAPH["name"], [{"text": f"t{i}"} for i in range(ITEMS)])

    def all_waiting() -> dict[str, Any] | None:
        status = job_status(first.client, job_id)
        return status if status["counts"]["waiting"] == ITEMS else None

    wait_for(all_waiting, timeout_s=60, interval_s=0.05, what="every item to wait")
    first.kill()

    second = start(running, "run2", db_url, slow_llm, tmp_path)
    waits = second.client.get(f"/v1/jobs/{job_id}/waits").json()["data"]
    assert sorted(w["item"] for w in waits if w["status"] == "waiting") == list(range(ITEMS))
    for i in reversed(range(ITEMS)):
        url = f"/v1/jobs/{job_id}/items/{i}/input/ok"
        response = second.client.post(url, json={"answer": {"approve": True}})
        assert response.status_code == 200, response.text

    final = wait_for(
        lambda: ended_status(second.client, job_id),
        timeout_s=60,
        interval_s=0.1,
        what="the job to finish",
    )
    assert final["status"] == "completed", final
    assert final["counts"]["succeeded"] == ITEMS, final["counts"]
    made = calls(slow_llm.log())
    assert {k for k in made if k[1].startswith("draft ")} == {
        ("run1", f"draft t{i}") for i in range(ITEMS)
    }
    assert {k for k in made if k[1].startswith("final ")} == {
        ("run2", f"final true t{i}") for i in range(ITEMS)
    }
    assert set(made.values()) == {1}  # nothing called twice, by either process
