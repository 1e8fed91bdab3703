"""Human-input nodes through the service: items wait holding no slot, answers (some sent
before their wait begins) resume each item exactly once, a timeout gives its default, and a
wrong answer is refused at once, naming the field."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service, endpoints_file
from tests.support.sse import read_events

ITEMS = 100
MAX_CONCURRENT = 4
APPROVE = {
    "type": "object",
    "required": ["approve"],
    "properties": {"approve": {"type": "boolean"}, "note": {"type": "string"}},
}


def approval_graph(name: str = "approval", **human: Any) -> dict[str, Any]:
    """draft (a call) -> ok (a human) -> final (a call that reads the answer)."""
    return {
        "name": name,
        "inputs": {"text": {"type": "string"}},
        "nodes": [
            {"id": "draft", "op": "llm", "alias": "fast", "prompt": "draft {text}"},
            {"id": "ok", "op": "human", "prompt": "Approve {text}: {draft}?", "schema": APPROVE,
             **human},
            {"id": "final", "op": "llm", "alias": "fast", "prompt": "final {ok.approve} {text}"},
        ],
        "outputs": {"final": "final", "ok": "ok"},
    }  # fmt: skip


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLLM, tmp_path: Path) -> Settings:
    path = endpoints_file(tmp_path, fake_llm.base_url, max_concurrent=MAX_CONCURRENT)
    return Settings.model_validate({**settings.model_dump(), "endpoints_file": path})


async def submit(client: httpx.AsyncClient, graph: dict[str, Any], items: int) -> str:
    assert (await client.post("/v1/graphs", json=graph)).status_code in (200, 201)
    body = {"graph_id": graph["name"], "inputs": [{"text": f"t{i}"} for i in range(items)]}
    response = await client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def until(client: httpx.AsyncClient, job_id: str, ready: Any, limit_s: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        status = (await client.get(f"/v1/jobs/{job_id}")).json()
        if ready(status):
            return status
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.05)


def answer_url(job_id: str, index: int, node: str = "ok") -> str:
    return f"/v1/jobs/{job_id}/items/{index}/input/{node}"


def calls(fake_llm: FakeLLM, prefix: str) -> Counter[str]:
    return Counter(e["prompt"] for e in fake_llm.log() if (e["prompt"] or "").startswith(prefix))


async def test_waiting_items_hold_no_slot_and_every_answer_resumes_once(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=20)
    client = service.client
    job_id = await submit(client, approval_graph(), ITEMS)
    order = list(range(ITEMS))
    random.Random(7).shuffle(order)
    early, late = order[:20], order[20:]
    for index in early:  # before the runner ever saw the job: kept in the mailbox
        response = await client.post(answer_url(job_id, index), json={"answer": {"approve": True}})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "answered"
    runner = asyncio.get_running_loop().create_task(service.run_jobs())
    try:
        waiting = await until(
            client,
            job_id,
            lambda s: (s["counts"]["waiting"], s["counts"]["succeeded"]) == (len(late), len(early)),
        )
        assert waiting["counts"]["running"] == 0
        assert waiting["status"] == "running"
        waits = (await client.get(f"/v1/jobs/{job_id}/waits")).json()["data"]
        prompts = {w["item"]: w["prompt"] for w in waits if w["status"] == "waiting"}
        assert sorted(prompts) == sorted(late)
        assert all(prompts[i].startswith(f"Approve t{i}: ") for i in late)
        # While 80 items wait, another job on the same alias gets the whole endpoint.
        before = calls(fake_llm, "")
        assert sum(before[f"draft t{i}"] for i in range(ITEMS)) == ITEMS
        fake_llm.reset()
        other = await submit(client, ECHO_GRAPH, 40)
        await until(client, other, lambda s: s["status"] == "completed")
        assert fake_llm.window()["peak_in_flight"] == MAX_CONCURRENT
        for index in late:
            answer = {"approve": index % 2 == 0, "note": f"n{index}"}
            response = await client.post(answer_url(job_id, index), json={"answer": answer})
            assert response.status_code == 200, response.text
        done = await until(client, job_id, lambda s: s["status"] == "completed")
    finally:
        await asyncio.wait_for(runner, 60)
    assert done["counts"]["succeeded"] == ITEMS
    assert done["counts"]["waiting"] == 0
    finals = calls(fake_llm, "final ") + Counter(
        {k: n for k, n in before.items() if k.startswith("final ")}
    )
    expected = {f"final {str(i in early or i % 2 == 0).lower()} t{i}" for i in range(ITEMS)}
    assert set(finals) == expected
    assert set(finals.values()) == {1}
    assert not calls(fake_llm, "draft ")  # nothing finished before the wait ran again
    again = await client.post(answer_url(job_id, late[0]), json={"answer": {"approve": True}})
    assert again.status_code == 409


async def test_a_wrong_answer_is_refused_naming_the_field(
    service: Service, other_tenant: httpx.AsyncClient
) -> None:
    client = service.client
    job_id = await submit(client, approval_graph(), 2)
    wrong = await client.post(answer_url(job_id, 0), json={"answer": {"approve": "yes"}})
    assert wrong.status_code == 422, wrong.text
    assert [i["field"] for i in wrong.json()["errors"]] == ["answer.approve"]
    missing = await client.post(answer_url(job_id, 1), json={"answer": {}})
    assert [i["field"] for i in missing.json()["errors"]] == ["answer.approve"]
    assert (
        await client.post(answer_url(job_id, 0, "draft"), json={"answer": {}})
    ).status_code == 404
    assert (await client.post(answer_url(job_id, 9), json={"answer": {}})).status_code == 404
    assert (await other_tenant.get(f"/v1/jobs/{job_id}/waits")).status_code == 404
    theirs = await other_tenant.post(answer_url(job_id, 0), json={"answer": {"approve": True}})
    assert theirs.status_code == 404


async def test_a_hostile_schema_is_refused_at_upload_naming_the_field(service: Service) -> None:
    graph = approval_graph("hostile")
    graph["nodes"][1]["schema"] = {"type": "string", "pattern": "^(a+)+$"}
    response = await service.client.post("/v1/graphs", json=graph)
    assert response.status_code == 422, response.text
    assert "schema.pattern" in response.text


@pytest.mark.parametrize("on_timeout", ["default", "fail"])
async def test_a_timeout_gives_the_default_or_fails(
    service: Service, fake_llm: FakeLLM, on_timeout: str
) -> None:
    human = {"timeout_s": 0.3, "on_timeout": on_timeout, "default": {"approve": False}}
    job_id = await submit(service.client, approval_graph(f"timed_{on_timeout}", **human), 1)
    await asyncio.wait_for(service.run_jobs(), 30)
    item = (await service.client.get(f"/v1/jobs/{job_id}/items/0")).json()
    if on_timeout == "default":
        assert item["status"] == "succeeded", item
        assert item["output"]["ok"] == {"approve": False}
        assert calls(fake_llm, "final ") == {"final false t0": 1}
    else:
        assert item["status"] == "failed", item
        assert "HumanTimeout" in item["error"]
        assert not calls(fake_llm, "final ")
    waits = (await service.client.get(f"/v1/jobs/{job_id}/waits")).json()["data"]
    assert [w["status"] for w in waits] == ["timed_out"]
    events = await read_events(service.client, job_id, {})
    kinds = [e.kind for e in events]
    assert kinds.index("item_waiting") < kinds.index("item_answered")
    waiting = events[kinds.index("item_waiting")].data
    assert (waiting["index"], waiting["node"]) == (0, "ok")
    assert waiting["prompt"].startswith("Approve t0: ")
    assert events[kinds.index("item_answered")].data["timed_out"] is True


async def test_cancelling_a_job_closes_its_waiting_items(service: Service) -> None:
    client = service.client
    job_id = await submit(client, approval_graph("cancelled"), 5)
    runner = asyncio.get_running_loop().create_task(service.run_jobs())
    try:
        await until(client, job_id, lambda s: s["counts"]["waiting"] == 5)
        assert (await client.post(f"/v1/jobs/{job_id}/cancel")).status_code == 200
        done = await until(client, job_id, lambda s: s["status"] == "cancelled")
    finally:
        await asyncio.wait_for(runner, 30)
    assert done["counts"]["cancelled"] == 5
    assert done["counts"]["waiting"] == 0
    waits = (await client.get(f"/v1/jobs/{job_id}/waits")).json()["data"]
    assert {w["status"] for w in waits} == {"cancelled"}
    late = await client.post(answer_url(job_id, 0), json={"answer": {"approve": True}})
    assert late.status_code == 409
