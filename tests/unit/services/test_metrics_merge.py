"""One exposition from two processes: same series add up, per-process gauges stay apart."""

from __future__ import annotations

import pickle

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.engine import NodeRecord, NodeStatus
from app.services.observability.metrics import ServiceMetrics, merge_families


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_counters_and_histograms_add_up_and_process_gauges_stay_apart() -> None:
    api, runner = ServiceMetrics("api"), ServiceMetrics("runner")
    api.jobs_submitted.inc(3)
    runner.items_finished.labels("succeeded").inc(5)
    for metrics, durations in ((api, [0.2]), (runner, [0.4, 0.3])):
        for seconds in durations:
            metrics.nodes.node_finished("0", finished("n", seconds), "llm", None)
    api.result_queue.labels("api").set(1)
    runner.result_queue.labels("runner").set(7)

    from_runner = pickle.loads(pickle.dumps(runner.families()))  # as the runner's pipe sends them
    merged = samples(merge_families([api.families(), from_runner]))

    assert merged[("inf_jobs_submitted_total", ())] == 3
    assert merged[("inf_items_finished_total", (("status", "succeeded"),))] == 5
    assert merged[("inf_node_runs_total", (("op", "llm"), ("status", "succeeded")))] == 3
    assert merged[("inf_node_duration_seconds_count", (("op", "llm"),))] == 3
    assert merged[("inf_node_duration_seconds_sum", (("op", "llm"),))] == pytest.approx(0.9)
    bucket = ("inf_node_duration_seconds_bucket", (("le", "0.25"), ("op", "llm")))
    assert merged[bucket] == 1
    bucket = ("inf_node_duration_seconds_bucket", (("le", "0.5"), ("op", "llm")))
    assert merged[bucket] == 3
    assert merged[("inf_result_queue_rows", (("process", "api"),))] == 1
    assert merged[("inf_result_queue_rows", (("process", "runner"),))] == 7


def test_families_without_samples_are_still_declared() -> None:
    text = merge_families([ServiceMetrics("api").families()]).decode()
    assert "# TYPE inf_webhook_attempts_total counter" in text
    assert "# TYPE inf_llm_requests_total" not in text  # only with an endpoint collector


def finished(node: str, seconds: float) -> NodeRecord:
    return NodeRecord(node, NodeStatus.SUCCEEDED, started_at=1.0, ended_at=1.0 + seconds)


def test_node_metrics_skip_restored_nodes_and_count_the_rest() -> None:
    metrics = ServiceMetrics("runner")
    restored = NodeRecord("b", NodeStatus.SUCCEEDED, restored=True)
    metrics.nodes.node_finished("0", finished("a", 0.5), "template", None)
    metrics.nodes.node_finished("0", restored, "template", None)
    get = metrics.registry.get_sample_value
    assert get("inf_node_runs_total", {"op": "template", "status": "succeeded"}) == 1
    assert get("inf_node_duration_seconds_sum", {"op": "template"}) == 0.5
    assert get("inf_node_duration_seconds_bucket", {"op": "template", "le": "+Inf"}) == 1
