"""The dashboard's pages cost a fixed number of SQL statements: ten times the jobs on the list,
or the items and nodes of a job, add none (no N+1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from app.settings import Settings
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service, serve

BRANCHES: dict[str, Any] = {
    "name": "fan",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": f"n{i}", "op": "template", "text": "{text}"} for i in range(12)],
    "outputs": {"out": "n11"},
}


@pytest.fixture
async def quiet(ui_settings: Settings) -> AsyncIterator[Service]:
    """The service with no runner of its own: only the pages' statements are counted
    (``run_jobs`` runs the jobs in between)."""
    async with serve(ui_settings.model_copy(update={"runner_enabled": False})) as running:
        yield running


@contextmanager
def counted(service: Service) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    engine = service.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def page_statements(service: Service, path: str) -> int:
    with counted(service) as statements:
        answer = await service.client.get(path)
    assert answer.status_code == 200, answer.text
    return len(statements)


async def submit(service: Service, graph: dict[str, Any], items: int) -> str:
    await service.client.post("/v1/graphs", json=graph)
    inputs = [{"text": f"t{i}"} for i in range(items)]
    answer = await service.client.post(
        "/v1/jobs", json={"graph_id": graph["name"], "inputs": inputs}
    )
    return str(answer.json()["id"])


async def test_the_jobs_list_costs_the_same_for_two_jobs_or_twenty(quiet: Service) -> None:
    for _ in range(2):
        await submit(quiet, ECHO_GRAPH, 1)
    few = await page_statements(quiet, "/ui/jobs")
    for _ in range(18):
        await submit(quiet, ECHO_GRAPH, 1)
    many = await page_statements(quiet, "/ui/jobs")
    assert many == few
    assert few <= 6


async def test_a_job_page_costs_the_same_for_one_node_or_twelve(quiet: Service) -> None:
    small = await submit(quiet, ECHO_GRAPH, 2)
    large = await submit(quiet, BRANCHES, 40)
    await quiet.run_jobs()
    assert await page_statements(quiet, f"/ui/jobs/{large}") == await page_statements(
        quiet, f"/ui/jobs/{small}"
    )
    item = await page_statements(quiet, f"/ui/jobs/{large}/items/3")
    assert item == await page_statements(quiet, f"/ui/jobs/{small}/items/1")
