"""The item page's prompts are rendered again from the stored values, not stored per node:
what it shows for every llm node is the conversation the model server received."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.services.limits import output_limits
from app.services.requests import dashboard
from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import TWO_CALLS_GRAPH
from tests.support.service import Service, serve


@pytest.fixture
async def quiet(ui_settings: Settings) -> AsyncIterator[Service]:
    async with serve(ui_settings.model_copy(update={"runner_enabled": False})) as running:
        yield running


async def submit(service: Service, texts: list[str]) -> str:
    assert (await service.client.post("/v1/graphs", json=TWO_CALLS_GRAPH)).status_code in (
        200,
        201,
    )
    inputs = [{"text": text} for text in texts]
    answer = await service.client.post(
        "/v1/jobs", json={"graph_id": TWO_CALLS_GRAPH["name"], "inputs": inputs}
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def prompts_of(service: Service, job_id: str, index: int) -> dict[str, list[Any]]:
    runtime = service.runtime
    limits = output_limits(runtime.settings)
    tenant_id = await runtime.auth.tenant_id(None, "127.0.0.1")
    async with runtime.reads() as session:
        found = await dashboard.item_page(
            session, runtime.programs, limits, (tenant_id, job_id, index)
        )
    return {
        node: [{"role": m.role, "content": m.content} for m in prompt.messages]
        for node, prompt in found.prompts.items()
    }


async def test_re_rendered_prompts_are_what_the_server_received(
    quiet: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(capture=True)
    job_id = await submit(quiet, ["owls", "bats"])
    await quiet.run_jobs()
    log = fake_llm.log()
    assert len(log) == 4

    shown = await prompts_of(quiet, job_id, 1)
    drafts = [e["body"]["messages"] for e in log if e["model"] == "fast"]
    assert shown["draft"] in drafts
    assert shown["draft"] == [
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": "Draft: bats"},
    ]
    polished = [e["body"]["messages"] for e in log if e["model"] == "smart"]
    assert shown["polish"] in polished
    assert shown["polish"][1] == {"role": "user", "content": "The topic was bats."}
    assert shown["polish"][2]["content"].startswith("Improve: reply")  # the draft's answer
    assert shown["polish"] != (await prompts_of(quiet, job_id, 0))["polish"]
