"""``/metrics`` of a real ``python -m app serve``: the runner process's families (node runs,
model calls, result writes) arrive merged with the HTTP process's."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
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

ITEMS = 20


def test_the_runner_process_metrics_are_served_by_the_http_process(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    endpoints = endpoints_for(tmp_path / "endpoints.yaml", slow_llm.base_url, "metrics")
    server = running.start("metrics", server_env(db_url, endpoints, auto_migrate="false"))
    graph_id = upload_graph(server.client, marked_graph("metrics"))
    job_id = submit_job(server.client, graph_id, tagged_inputs("m", ITEMS))
    wait_for(
        lambda: job_status(server.client, job_id)["status"] == "completed" or None,
        timeout_s=30,
        what="the job to complete",
    )

    text = server.client.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def total(name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))

    assert total("inf_runner_up") == 1
    assert total("inf_node_runs_total", status="succeeded") == 3 * ITEMS  # counted by the runner
    assert total("inf_llm_requests_total", status_code="200") == 3 * ITEMS
    assert total("inf_items_finished_total", status="succeeded") == ITEMS
    assert total("inf_jobs_finished_total", status="completed") == 1
    assert total("inf_jobs_submitted_total") == 1  # counted by the HTTP process
    assert total("inf_http_requests_total", route="/v1/jobs", method="POST") == 1
    assert total("inf_checkpoint_rows_total") >= 4 * ITEMS
    assert total("inf_db_pool_connections", process="runner") >= 1
    assert total("inf_db_pool_connections", process="api") >= 1
    assert total("inf_result_queue_rows", process="runner") == 0
