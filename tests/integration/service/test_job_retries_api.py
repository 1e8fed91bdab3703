"""``POST /v1/jobs/{id}/retry``: a new job of the same graph version on exactly the rows that
failed (with their custom_id and metadata), on SQLite and Postgres."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service

POISONED = (3, 7, 8)


def rows(count: int) -> list[dict[str, Any]]:
    """Rows ``0..count-1``; the POISONED ones fail once at the fake server (400)."""
    return [
        {
            "text": f"poison {i}" if i in POISONED else f"fine {i}",
            **({"custom_id": f"q-{i}", "metadata": {"n": str(i)}} if i != 8 else {}),
        }
        for i in range(count)
    ]


async def submit(service: Service, inputs: list[Any]) -> str:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    answer = await service.client.post("/v1/jobs", json={"graph_id": "echo", "inputs": inputs})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def ended_with_failures(service: Service, fake_llm: FakeLLM) -> str:
    fake_llm.configure(rules=[{"match": "poison", "status": 400, "times": len(POISONED)}])
    job_id = await submit(service, rows(10))
    await service.run_jobs()
    counts = (await service.client.get(f"/v1/jobs/{job_id}")).json()["counts"]
    assert (counts["succeeded"], counts["failed"]) == (7, 3)
    return job_id


def prompts(fake_llm: FakeLLM) -> list[str]:
    return sorted(str(entry["prompt"]) for entry in fake_llm.log())


async def test_a_retry_runs_exactly_the_failed_rows_with_their_identity(
    service: Service, fake_llm: FakeLLM
) -> None:
    original = await ended_with_failures(service, fake_llm)
    graph_id = (await service.client.get(f"/v1/jobs/{original}")).json()["graph_id"]
    newer = {**ECHO_GRAPH, "nodes": [{**ECHO_GRAPH["nodes"][0], "system": "Shout."}]}
    assert (await service.client.post("/v1/graphs", json=newer)).json()["version"] == 2
    fake_llm.configure()  # the server answers every row now
    fake_llm.reset()

    answer = await service.client.post(f"/v1/jobs/{original}/retry")

    assert answer.status_code == 202, answer.text
    retried = answer.json()
    assert retried["id"] != original
    assert (retried["retry_of"], retried["status"]) == (original, "queued")
    assert (retried["graph_id"], retried["graph_version"]) == (graph_id, 1)
    assert retried["counts"]["total"] == 3
    await service.run_jobs()
    assert prompts(fake_llm) == ["poison 3", "poison 7", "poison 8"]
    assert {entry["system"] for entry in fake_llm.log()} == {"Echo."}  # version 1's node
    page = (await service.client.get(f"/v1/jobs/{retried['id']}/results")).json()["items"]
    assert [(i["index"], i["status"], i["custom_id"], i["metadata"]) for i in page] == [
        (0, "succeeded", "q-3", {"n": "3"}),
        (1, "succeeded", "q-7", {"n": "7"}),
        (2, "succeeded", None, None),
    ]
    assert page[1]["output"]["answer"].endswith("poison 7")
    status = (await service.client.get(f"/v1/jobs/{retried['id']}")).json()
    assert (status["status"], status["retry_of"]) == ("completed", original)
    assert (await service.client.get(f"/v1/jobs/{original}")).json()["retry_of"] is None


async def test_a_job_still_running_or_without_failures_cannot_be_retried(
    service: Service, fake_llm: FakeLLM
) -> None:
    queued = await submit(service, [{"text": "a"}])

    early = await service.client.post(f"/v1/jobs/{queued}/retry")
    await service.run_jobs()
    clean = await service.client.post(f"/v1/jobs/{queued}/retry")

    for answer in (early, clean):
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "urn:inf-engine:problem:conflict"
    assert "ended" in early.json()["detail"]
    assert "no failed items" in clean.json()["detail"]
    listed = (await service.client.get("/v1/jobs")).json()["items"]
    assert [job["id"] for job in listed] == [queued]  # no job was made


async def test_an_unknown_or_another_tenants_job_is_not_found(
    service: Service, fake_llm: FakeLLM, other_tenant: httpx.AsyncClient
) -> None:
    original = await ended_with_failures(service, fake_llm)

    stranger = await other_tenant.post(f"/v1/jobs/{original}/retry")
    unknown = await service.client.post("/v1/jobs/no-such-job/retry")

    assert (stranger.status_code, unknown.status_code) == (404, 404)
    assert stranger.headers["content-type"] == "application/problem+json"
    assert (await other_tenant.get("/v1/jobs")).json()["items"] == []
