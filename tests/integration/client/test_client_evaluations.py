"""Evaluations through ``Client`` and ``inf-engine evaluate``, against the real service on
loopback (its ``fast`` alias on the fake server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.client import Client, ClientError
from tests.integration.client.support import ECHO_GRAPH
from tests.integration.client.test_client_datasets_and_versions import ITEMS, echo_version

CONTAINS = {"verifiers": [{"op": "contains"}]}


def cli(service_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"INF_URL": service_url, "COLUMNS": "200"})


def test_start_wait_and_list_an_evaluation(client: Client) -> None:
    client.push_graph(ECHO_GRAPH)
    dataset = client.push_dataset(ITEMS, name="numbers")["id"]
    started = client.start_evaluation({"graph_id": "echo", "dataset": dataset, "loss": CONTAINS})
    final = client.wait_evaluation(started["id"])
    assert final["status"] == "completed"
    [version] = final["result"]["versions"]
    assert (version["version"], version["n"], version["failures"]) == (1, 3, 0)
    assert [e["id"] for e in client.evaluations()] == [started["id"]]
    assert client.cancel_evaluation(started["id"])["status"] == "completed"  # ended already


def test_a_refused_evaluation_raises_naming_the_field(client: Client) -> None:
    client.push_graph(ECHO_GRAPH)
    with pytest.raises(ClientError) as refused:
        client.start_evaluation({"graph_id": "echo", "dataset": "nope", "loss": CONTAINS})
    assert refused.value.status == 422
    assert [e["field"] for e in refused.value.errors] == ["dataset"]


def test_cli_starts_a_paired_evaluation_and_shows_its_status(
    service_url: str, client: Client, tmp_path: Path
) -> None:
    client.push_graph(echo_version("Echo."))
    client.push_graph(echo_version("Echo it back."))
    dataset = client.push_dataset(ITEMS, name="numbers")["id"]
    loss = tmp_path / "loss.json"
    loss.write_text(json.dumps(CONTAINS))

    waited = cli(
        service_url, "evaluate", "start", "echo", "--dataset", dataset, "--version", "1",
        "--version", "2", "--loss", str(loss), "--seed", "3",
    )  # fmt: skip

    assert waited.exit_code == 0, waited.output
    assert "paired delta (b - a)" in waited.output
    [evaluation] = list(client.evaluations())
    shown = cli(service_url, "evaluate", "status", evaluation["id"], "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == client.evaluation(evaluation["id"])
    assert [v["version"] for v in json.loads(shown.output)["result"]["versions"]] == [1, 2]


def test_cli_no_wait_prints_the_id_and_a_bad_start_exits_1(
    service_url: str, client: Client
) -> None:
    client.push_graph(ECHO_GRAPH)
    dataset = client.push_dataset(ITEMS, name="numbers")["id"]
    queued = cli(service_url, "evaluate", "start", "echo", "--dataset", dataset, "--no-wait")
    assert queued.exit_code == 0, queued.output
    assert client.evaluation(queued.output.strip())["versions"] == [1]
    refused = cli(service_url, "evaluate", "start", "echo", "--dataset", dataset, "--version", "7")
    assert refused.exit_code == 1
    assert "version" in refused.output


def test_cli_jobs_lists_batch_jobs_only_and_points_an_evaluation_to_its_path(
    service_url: str, client: Client
) -> None:
    client.push_graph(ECHO_GRAPH)
    dataset = client.push_dataset(ITEMS, name="numbers")["id"]
    evaluation = client.start_evaluation({"graph_id": "echo", "dataset": dataset, "loss": CONTAINS})
    job = client.submit("echo", [{"text": "a"}])

    listed = cli(service_url, "jobs", "list")
    shown = cli(service_url, "jobs", "status", evaluation["id"])

    assert listed.exit_code == 0, listed.output
    assert job["id"] in listed.output
    assert evaluation["id"] not in listed.output
    assert shown.exit_code == 1
    assert f"/v1/evaluations/{evaluation['id']}" in shown.stderr
