"""Datasets and active versions through ``Client`` and the ``inf-engine`` command, against the
real service on loopback."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.client import Client, ClientError
from tests.integration.client.support import ECHO_GRAPH

ITEMS = [
    {"id": "a", "input": {"text": "one"}, "expected": "1"},
    {"id": "b", "input": {"text": "two"}, "expected": "2"},
    {"id": "c", "input": {"text": "three"}, "expected": "3"},
]


def cli(service_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"INF_URL": service_url, "COLUMNS": "200"})


def dataset_file(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    return path


def echo_version(system: str) -> dict[str, Any]:
    graph = copy.deepcopy(ECHO_GRAPH)
    graph["nodes"][0]["system"] = system
    return graph


def test_push_a_dataset_file_or_list_and_read_it_back(client: Client, tmp_path: Path) -> None:
    stored = client.push_dataset(dataset_file(tmp_path), name="numbers")
    again = client.push_dataset(ITEMS, name="numbers")
    assert (stored["created"], again["created"], again["id"]) == (True, False, stored["id"])
    assert client.dataset(stored["id"])["count"] == 3
    assert [d["id"] for d in client.datasets(page_size=1)] == [stored["id"]]
    items = list(client.dataset_items(stored["id"], page_size=2))
    assert [(i["id"], i["input"], i["expected"]) for i in items] == [
        (item["id"], item["input"], item["expected"]) for item in ITEMS
    ]


def test_a_bad_dataset_raises_with_the_field(client: Client) -> None:
    with pytest.raises(ClientError) as raised:
        client.push_dataset([{"input": {"text": "x"}}], name="bad")
    assert raised.value.status == 422
    assert raised.value.errors[0]["field"] == "items[0].expected"


def test_promote_and_rollback(client: Client) -> None:
    client.push_graph(echo_version("Echo."))
    client.push_graph(echo_version("Repeat."))
    assert client.promote("echo", 1)["active_version"] == 1
    assert client.graph("echo")["version"] == 1
    moved = client.rollback("echo")
    assert (moved["active_version"], moved["previous_version"]) == (2, 1)
    assert client.rollback("echo", version=1)["active_version"] == 1


def test_cli_datasets_push_list_show(service_url: str, tmp_path: Path) -> None:
    pushed = cli(service_url, "datasets", "push", str(dataset_file(tmp_path)), "--name", "nums")
    assert pushed.exit_code == 0, pushed.output
    assert "nums (new)" in pushed.output
    dataset_id = json.loads(
        cli(
            service_url, "datasets", "push", str(dataset_file(tmp_path)), "--name", "x", "--json"
        ).output
    )["id"]
    listed = cli(service_url, "datasets", "list")
    assert (listed.exit_code, dataset_id in listed.output, "nums" in listed.output) == (
        0,
        True,
        True,
    )
    shown = cli(service_url, "datasets", "show", dataset_id, "--json")
    assert json.loads(shown.output)["count"] == 3
    lines = cli(service_url, "datasets", "show", dataset_id, "--items").output.splitlines()
    assert [json.loads(line)["expected"] for line in lines] == ["1", "2", "3"]


def test_cli_bad_dataset_names_line_and_field(service_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": {"text": "x"}, "expected": 1}\n{"input": [], "expected": 1}\n')
    pushed = cli(service_url, "datasets", "push", str(path), "--name", "bad")
    assert pushed.exit_code == 1
    assert "line 2: items[1].input" in pushed.output


def test_cli_graphs_promote_and_rollback(service_url: str, client: Client) -> None:
    client.push_graph(echo_version("Echo."))
    client.push_graph(echo_version("Repeat."))
    promoted = cli(service_url, "graphs", "promote", "echo", "1")
    assert promoted.exit_code == 0, promoted.output
    assert client.graph("echo")["active_version"] == 1
    rolled = cli(service_url, "graphs", "rollback", "echo", "--json")
    assert json.loads(rolled.output)["active_version"] == 2
    nothing = cli(service_url, "graphs", "rollback", "missing")
    assert (nothing.exit_code, "404" in nothing.output) == (1, True)
