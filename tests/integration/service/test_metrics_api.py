"""``/metrics`` after a real job: every family, with its labels, counting what the job did."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from tests.deploy.dashboard import dashboard_metric_names
from tests.deploy.files import DASHBOARD
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service, endpoints_file

FAMILIES = {
    "inf_jobs_submitted": "counter",
    "inf_jobs_finished": "counter",
    "inf_items_finished": "counter",
    "inf_jobs": "gauge",
    "inf_node_runs": "counter",
    "inf_node_duration_seconds": "histogram",
    "inf_queue_wait_seconds": "histogram",
    "inf_scheduler_overhead_seconds": "histogram",
    "inf_llm_requests": "counter",
    "inf_llm_request_duration_seconds": "histogram",
    "inf_llm_tokens": "counter",
    "inf_llm_cost": "counter",
    "inf_llm_in_flight": "gauge",
    "inf_llm_waiting": "gauge",
    "inf_ratelimit_limit": "gauge",
    "inf_ratelimit_remaining": "gauge",
    "inf_ratelimit_throttled": "counter",
    "inf_retries": "counter",
    "inf_endpoint_state": "gauge",
    "inf_checkpoint_write_seconds": "histogram",
    "inf_checkpoint_rows": "counter",
    "inf_result_queue_rows": "gauge",
    "inf_db_pool_connections": "gauge",
    "inf_http_requests": "counter",
    "inf_http_request_duration_seconds": "histogram",
    "inf_webhook_attempts": "counter",
    "inf_retention_deleted_jobs": "counter",
    "inf_event_streams": "gauge",
    "inf_runner_up": "gauge",
    "inf_runner_deaths": "counter",
}
PRICES = {"input_price_per_million": 1.0, "output_price_per_million": 2.0}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, fake_llm: FakeLLM) -> Settings:
    """The service's settings with priced, rate-limited endpoints."""
    folder = tmp_path / "priced"
    folder.mkdir()
    endpoints = endpoints_file(folder, fake_llm.base_url, rpm=60_000, **PRICES)
    return settings.model_copy(update={"endpoints_file": endpoints})


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(service: Service) -> tuple[dict[str, str], Samples]:
    """Family types by name, and every sample by (name, labels)."""
    response = await service.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    types, samples = {}, {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def run_job_with_faults(
    service: Service, fake_llm: FakeLLM, graph: dict[str, Any]
) -> dict[str, Any]:
    """Ten items: item 3's second extraction gets two 429s, item 5's first one a 400."""
    fake_llm.configure(
        rules=[
            {"match": "B3 ", "status": 429, "times": 2, "retry_after_s": 0},
            {"match": "A5 ", "status": 400},
        ]
    )
    await service.client.post("/v1/graphs", json=graph)
    inputs = [{"doc1": f"A{i} electric.", "doc2": f"B{i} hydrogen."} for i in range(10)]
    submitted = await service.client.post(
        "/v1/jobs", json={"graph_id": graph["name"], "inputs": inputs}
    )
    assert submitted.status_code == 202
    await service.run_jobs()
    return dict((await service.client.get(f"/v1/jobs/{submitted.json()['id']}")).json())


async def node_statuses(service: Service, job_id: str) -> Counter[str]:
    """How the job's stored nodes ended, from each item's record."""
    found: Counter[str] = Counter()
    for index in range(10):
        item = (await service.client.get(f"/v1/jobs/{job_id}/items/{index}")).json()
        found.update(node["status"] for node in item["nodes"])
    return found


async def test_every_family_counts_what_the_job_did(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    job = await run_job_with_faults(service, fake_llm, example_graph)
    assert (job["status"], job["counts"]["succeeded"], job["counts"]["failed"]) == (
        "completed",
        9,
        1,
    )

    types, samples = await scrape(service)

    assert {name: types.get(name) for name in FAMILIES} == FAMILIES
    assert value(samples, "inf_jobs_submitted_total") == 1
    assert value(samples, "inf_jobs_finished_total", status="completed") == 1
    assert value(samples, "inf_jobs", status="completed") == 1
    assert value(samples, "inf_items_finished_total", status="succeeded") == 9
    assert value(samples, "inf_items_finished_total", status="failed") == 1
    stored = await node_statuses(service, job["id"])
    assert stored == {"succeeded": 28, "failed": 1, "cancelled": 1}
    for status, count in stored.items():
        assert value(samples, "inf_node_runs_total", op="llm", status=status) == count
    # the cancelled comparison never started: only started nodes have a duration
    assert value(samples, "inf_node_duration_seconds_count", op="llm") == 29


async def test_model_call_families_match_the_calls_the_server_saw(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    job = await run_job_with_faults(service, fake_llm, example_graph)
    _, samples = await scrape(service)

    seen = Counter((entry["model"], str(entry["status"])) for entry in fake_llm.log())
    assert seen == {
        ("fast", "200"): 19,
        ("fast", "429"): 2,
        ("fast", "400"): 1,
        ("smart", "200"): 9,
    }
    for (model, code), count in seen.items():
        labels = {"alias": model, "model": model, "status_code": code}
        assert value(samples, "inf_llm_requests_total", **labels) == count
    fast = {"alias": "fast", "model": "fast"}
    calls = value(samples, "inf_llm_request_duration_seconds_count", **fast)
    assert calls == 22
    assert value(samples, "inf_llm_request_duration_seconds_bucket", le="+Inf", **fast) == calls
    assert value(samples, "inf_llm_request_duration_seconds_bucket", le="300.0", **fast) == calls
    assert value(samples, "inf_retries_total", alias="fast", reason="rate_limited") == 2
    upstream = value(samples, "inf_ratelimit_throttled_total", alias="fast", reason="upstream_429")
    assert upstream == 2
    usage = job["usage"]
    assert total(samples, "inf_llm_tokens_total", direction="input") == usage["input_tokens"]
    assert total(samples, "inf_llm_tokens_total", direction="output") == usage["output_tokens"]
    assert total(samples, "inf_llm_cost_total") == pytest.approx(usage["cost"])
    assert usage["cost"] > 0


async def test_limits_queues_storage_and_http_are_reported(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    job = await run_job_with_faults(service, fake_llm, example_graph)
    _, samples = await scrape(service)

    limit = value(samples, "inf_ratelimit_limit", alias="fast", resource="requests", process="api")
    assert 0 < limit <= 60_000  # lowered after the 429s, never raised above the configuration
    state = value(samples, "inf_endpoint_state", alias="fast", process="api")
    assert state == (1 if limit < 60_000 else 0)
    assert value(samples, "inf_llm_in_flight", alias="fast") == 0
    assert value(samples, "inf_queue_wait_seconds_count", alias="fast") == 19
    assert value(samples, "inf_queue_wait_seconds_count", alias="smart") == 9
    assert value(samples, "inf_scheduler_overhead_seconds_count") == 28 - 1  # one was retried
    assert value(samples, "inf_checkpoint_rows_total") >= 30 + 10  # node results and items
    assert value(samples, "inf_checkpoint_write_seconds_count") >= 1
    assert value(samples, "inf_result_queue_rows", process="api") == 0
    posted = {"method": "POST", "route": "/v1/jobs", "status_code": "202"}
    assert value(samples, "inf_http_requests_total", **posted) == 1
    polled = {"method": "GET", "route": "/v1/jobs/{job_id}", "status_code": "200"}
    assert value(samples, "inf_http_requests_total", **polled) == 1
    assert total(samples, "inf_db_pool_connections", process="api") >= 1
    assert job["status"] == "completed"


async def test_every_metric_the_dashboard_queries_is_exported(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    await run_job_with_faults(service, fake_llm, example_graph)
    types, _ = await scrape(service)
    exported = {name + "_total" if kind == "counter" else name for name, kind in types.items()}

    queried = dashboard_metric_names(DASHBOARD)

    assert len(queried) >= 10
    assert queried - exported == set()
