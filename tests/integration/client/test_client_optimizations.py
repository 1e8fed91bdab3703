"""Optimization runs through ``Client`` and ``inf-engine optimize``, against the real service
on loopback, Task A's simulated ``task``, ``critic`` and ``optimizer`` on the fake server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from app.cli import app
from app.client import Client, ClientError
from examples.optimization.tasks import ANSWER_LOSS, graph_json, row_splits
from tests.integration.client.support import serve_in_thread, service_settings
from tests.support.fake_llm import FakeLLM
from tests.support.sim_tasks import fake_server_endpoints


@pytest.fixture
def service_url(tmp_path: Path, fake_llm: FakeLLM) -> Iterator[str]:
    endpoints = tmp_path / "sim.yaml"
    endpoints.write_text(yaml.safe_dump(fake_server_endpoints(fake_llm.base_url)))
    settings = service_settings(tmp_path, fake_llm, endpoints_file=endpoints)
    with serve_in_thread(settings) as url:
        yield url


def cli(service_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"INF_URL": service_url, "COLUMNS": "200"})


def task_a(client: Client) -> dict[str, Any]:
    client.push_graph(graph_json("task-a"))
    parts = row_splits("task-a")
    train = client.push_dataset(parts["train"], name="train")["id"]
    val = client.push_dataset(parts["val"], name="val")["id"]
    return {
        "graph_id": "task-a-counting", "train": train, "val": val, "loss": ANSWER_LOSS,
        "schedule": {"epochs": 1, "batch_size": 10}, "budget": {"max_calls": 3_000},
    }  # fmt: skip


def test_start_wait_list_and_a_refused_start(client: Client) -> None:
    body = task_a(client)
    started = client.start_optimization(body)
    final = client.wait_optimization(started["id"])
    assert (final["state"], final["stop_reason"]) == ("succeeded", "max_epochs")
    assert [run["id"] for run in client.optimizations()] == [started["id"]]
    with pytest.raises(ClientError) as refused:
        client.start_optimization({**body, "train": "nope"})
    assert refused.value.status == 422
    assert [e["field"] for e in refused.value.errors] == ["train"]


def test_cli_dry_run_start_follow_and_status(
    service_url: str, client: Client, tmp_path: Path
) -> None:
    spec = tmp_path / "run.json"
    spec.write_text(json.dumps(task_a(client)))
    projected = cli(service_url, "optimize", "start", str(spec), "--dry-run")
    assert projected.exit_code == 0, projected.output
    assert "dry run: 4 steps" in projected.output
    assert "expected: the upper bound (no earlier comparable run" in projected.output
    assert list(client.optimizations()) == []

    ran = cli(service_url, "optimize", "start", str(spec))
    assert ran.exit_code == 0, ran.output
    assert "step 1 (epoch 0)" in ran.output
    assert "validation score" in ran.output
    assert "budget: " in ran.output
    assert "finished: max_epochs" in ran.output
    assert "calls in all (at most" in ran.output  # each budget line: the live projection
    [run] = list(client.optimizations())
    made = sum(int(usage["calls"]) for usage in run["roles"].values())
    assert f"{made:,} spent; projected {made:,} calls in all (at most {made:,})" in ran.output
    again = cli(service_url, "optimize", "start", str(spec), "--dry-run")
    assert f"expected: {made:,} calls, " in again.output
    assert "(from 1 earlier run)" in again.output
    followed = cli(service_url, "optimize", "follow", run["id"])
    assert followed.exit_code == 0, followed.output
    shown = cli(service_url, "optimize", "status", run["id"], "--json")
    assert json.loads(shown.output) == client.optimization(run["id"])
    cancelled = cli(service_url, "optimize", "cancel", run["id"])
    assert cancelled.output.strip() == f"optimization {run['id']} succeeded"  # ended already


def test_cli_refuses_a_start_the_service_refuses_and_shows_the_projection(
    service_url: str, client: Client, tmp_path: Path
) -> None:
    body = task_a(client)
    spec = tmp_path / "run.json"
    spec.write_text(json.dumps({**body, "budget": {"max_calls": 10}}))

    refused = cli(service_url, "optimize", "start", str(spec))

    assert refused.exit_code == 1, refused.output
    assert "error: 422" in refused.stderr
    assert "budget.max_calls: " in refused.stderr
    assert "Traceback" not in refused.output
    assert list(client.optimizations()) == []
    spec.write_text(json.dumps(body))
    projection = client.start_optimization({**body, "dry_run": True})
    projected = cli(service_url, "optimize", "start", str(spec), "--dry-run")
    assert projected.exit_code == 0, projected.output
    rows = {line.split()[0]: line.split()[1:] for line in projected.stdout.splitlines() if line}
    for role, counted in projection["roles"].items():
        assert rows[role] == [str(counted["calls"]), str(counted["tokens"])]
    assert rows["total"] == [str(projection["total"][name]) for name in ("calls", "tokens")]
