"""The Grafana dashboard: well-formed, on the provisioned datasource, PromQL that parses. That it
queries only families the service exports is checked against a live ``/metrics`` in
``tests/integration/service/test_metrics_api.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.dashboard import dashboard_expressions, dashboard_metric_names, metric_names
from tests.deploy.files import DASHBOARD, GRAFANA_DATASOURCES, read_json, read_yaml

# What the panels of deploy/grafana/dashboards/inf-engine.json query.
QUERIED = {
    "inf_items_finished_total",
    "inf_node_runs_total",
    "inf_jobs",
    "inf_llm_in_flight",
    "inf_llm_waiting",
    "inf_llm_request_duration_seconds",
    "inf_llm_requests_total",
    "inf_retries_total",
    "inf_ratelimit_remaining",
    "inf_llm_tokens_total",
    "inf_llm_cost_total",
    "inf_endpoint_state",
    "inf_checkpoint_write_seconds",
    "inf_result_queue_rows",
    "inf_http_request_duration_seconds",
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = read_json(DASHBOARD)
    return data


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        found.append(panel)
        found += all_panels(panel.get("panels", []))
    return found


def test_dashboard_metric_names_finds_the_families_of_the_panels() -> None:
    assert dashboard_metric_names(DASHBOARD) == QUERIED


def test_every_expression_is_valid_promql(dashboard: dict[str, Any]) -> None:
    expressions = dashboard_expressions(dashboard)
    assert len(expressions) >= len(QUERIED)
    for expr in expressions:
        metric_names(expr)  # raises ValueError on a syntax error


def test_metric_names_reads_selectors_not_strings_or_labels() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le, inf_label) (rate(inf_a_seconds_bucket{route="inf_b"}'
        '[$__rate_interval]))) / on (alias) group_left sum(inf_c_total) + {__name__="inf_d_sum"}'
    )
    assert metric_names(expr) == {"inf_a_seconds_bucket", "inf_c_total", "inf_d_sum"}
    with pytest.raises(ValueError, match="parenthesis"):
        metric_names("sum(rate(inf_a_total[5m])")


def test_dashboard_metric_names_walks_rows_and_variables(tmp_path: Path) -> None:
    board = {
        "panels": [
            {"targets": [{"expr": "rate(inf_a_count[5m]) / rate(inf_a_sum[5m])"}]},
            {
                "type": "row",
                "panels": [{"targets": [{"expr": "inf_b_total + other_metric"}, {"refId": "B"}]}],
            },
        ],
        "templating": {
            "list": [
                {"type": "query", "query": {"query": "label_values(inf_c, alias)"}},
                {"type": "query", "query": "query_result(max(inf_d_bucket))"},
                {"type": "custom", "query": "inf_not_promql"},
            ]
        },
    }
    path = tmp_path / "board.json"
    path.write_text(json.dumps(board))
    assert dashboard_metric_names(path) == {"inf_a", "inf_b_total", "inf_c", "inf_d"}


def test_dashboard_is_a_provisionable_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "inf-engine"
    assert 36 <= dashboard["schemaVersion"] <= 41
    panels = all_panels(dashboard["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles))
    for panel in panels:
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t.get("expr") for t in panel.get("targets", [])), panel["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["w"] > 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_uses_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    (provisioned,) = read_yaml(GRAFANA_DATASOURCES)["datasources"]
    expected = {"type": provisioned["type"], "uid": provisioned["uid"]}
    for panel in all_panels(dashboard["panels"]):
        if panel.get("type") == "row":
            continue
        assert panel["datasource"] == expected, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", expected) == expected, panel["title"]
