"""The job page's per-node counts are the job's stored node results counted by node and status,
after a real job through the runner with successes, failures, skips and cancellations."""

from __future__ import annotations

from typing import Any

from tests.support.graph_counts import drawn_counts, grouped, stored_counts_query
from tests.support.polling import until
from tests.support.service import Service

MIXED: dict[str, Any] = {
    "name": "mixed",
    "inputs": {"flag": {"type": "boolean"}, "text": {"type": "string"}},
    "nodes": [
        {"id": "answer", "op": "llm", "alias": "fast", "system": "Echo.", "prompt": "{text}"},
        {"id": "parsed", "op": "parse_json", "source": "text"},
        {
            "id": "tail",
            "op": "template",
            "text": "{parsed}",
            "when": {"ref": "flag", "equals": True},
        },
    ],
    "outputs": {"answer": "answer", "tail": "tail"},
}


def inputs(count: int) -> list[dict[str, Any]]:
    """Every third text is not JSON (``parsed`` fails); odd items skip ``tail``."""
    return [
        {"flag": i % 2 == 0, "text": "not json" if i % 3 == 0 else f'{{"n": {i}}}'}
        for i in range(count)
    ]


async def test_the_job_page_counts_what_the_job_stored(ui_service: Service) -> None:
    assert (await ui_service.client.post("/v1/graphs", json=MIXED)).status_code in (200, 201)
    answer = await ui_service.client.post(
        "/v1/jobs", json={"graph_id": "mixed", "inputs": inputs(60)}
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    await until_finished(ui_service, job_id)

    page = await ui_service.client.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200, page.text
    async with ui_service.runtime.reads() as session:
        truth = grouped(await session.execute(stored_counts_query(job_id)))

    assert drawn_counts(page.text) == truth
    assert truth["answer"] == {"succeeded": 60}
    assert truth["parsed"] == {"succeeded": 40, "failed": 20}
    assert set(truth["tail"]) >= {"succeeded", "skipped"}
    assert sum(truth["tail"].values()) == 60


async def until_finished(service: Service, job_id: str) -> None:
    async def finished() -> bool:
        status = (await service.client.get(f"/v1/jobs/{job_id}")).json()["status"]
        return status in ("completed", "failed", "cancelled")

    await until(finished, timeout_s=60)
