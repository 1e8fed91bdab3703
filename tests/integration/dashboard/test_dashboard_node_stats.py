"""A node's panel on a job's page: one statement whatever the items, nearest-rank duration
percentiles equal to those of the stored results, the failure count and the first failures."""

from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy import select

from app.db.models import NodeResult
from tests.integration.dashboard.test_dashboard_queries import counted, quiet  # noqa: F401
from tests.support.service import Service

PARSE: dict[str, Any] = {
    "name": "parse-many",
    "inputs": {"x": {"type": "string"}},
    "nodes": [{"id": "parsed", "op": "parse_json", "source": "x"}],
    "outputs": {"parsed": "parsed"},
}


async def submit(service: Service, count: int, bad: set[int]) -> str:
    await service.client.post("/v1/graphs", json=PARSE)
    inputs = [{"x": "not json" if i in bad else f'"v{i}"'} for i in range(count)]
    answer = await service.client.post(
        "/v1/jobs", json={"graph_id": "parse-many", "inputs": inputs}
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def panel(service: Service, job_id: str) -> tuple[str, int]:
    with counted(service) as statements:
        answer = await service.client.get(f"/ui/jobs/{job_id}/nodes/parsed")
    assert answer.status_code == 200, answer.text
    return answer.text, len(statements)


async def durations(service: Service, job_id: str) -> list[float]:
    async with service.runtime.reads() as session:
        found = await session.scalars(
            select(NodeResult.duration_s).where(NodeResult.job_id == job_id)
        )
        return sorted(d for d in found if d is not None)


async def test_a_node_panel_is_one_statement_with_the_stored_percentiles(
    quiet: Service,  # noqa: F811
) -> None:
    small = await submit(quiet, 3, {1})
    large = await submit(quiet, 60, {7, 8, 20, 30, 40, 50, 59})
    await quiet.run_jobs()
    (_, few), (html, many) = await panel(quiet, small), await panel(quiet, large)
    assert few == many <= 2

    timed = await durations(quiet, large)
    for p in (50, 90, 99):
        expected = timed[math.ceil(p * len(timed) / 100) - 1]
        shown = re.search(rf'data-percentile="{p}">([0-9.]+) s<', html)
        assert shown is not None, p
        assert float(shown[1]) == round(expected, 3), p
    assert 'data-field="node-failures">7<' in html
    items = re.findall(r'/items/(\d+)">Item', html)
    assert items == ["7", "8", "20", "30", "40"]


async def test_a_node_of_another_tenants_or_no_job_shows_no_results(
    quiet: Service,  # noqa: F811
) -> None:
    html, _ = await panel(quiet, "nope")
    assert "No timed results" in html
    assert 'data-field="node-failures">0<' in html
