"""Row identities from Python and the CLI: ``custom_id`` and ``metadata`` submitted with the
rows (a list or a JSONL file) come back with the results, and one result is found by its id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.client import Client, ClientError
from tests.integration.client.support import ECHO_GRAPH

ROWS: list[dict[str, Any]] = [
    {"text": "first", "custom_id": "q1", "metadata": {"source": "faq"}},
    {"text": "second"},
    {"text": "third", "custom_id": "q3"},
]


def test_a_list_keeps_each_rows_identity_and_one_result_is_found(client: Client) -> None:
    client.push_graph(ECHO_GRAPH)
    job = client.submit("echo", ROWS)
    client.wait(job["id"])

    results = list(client.results(job["id"]))
    found = client.result(job["id"], "q3")

    assert [(r["custom_id"], r["metadata"]) for r in results] == [
        ("q1", {"source": "faq"}),
        (None, None),
        ("q3", None),
    ]
    assert found is not None
    assert (found["index"], found["output"]["answer"].endswith("third")) == (2, True)
    assert client.result(job["id"], "nobody") is None
    assert [r["index"] for r in client.results(job["id"], custom_id="q1")] == [0]


def test_a_jsonl_file_keeps_identities_and_a_repeat_is_refused(
    client: Client, tmp_path: Path
) -> None:
    client.push_graph(ECHO_GRAPH)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    job = client.submit("echo", path)
    client.wait(job["id"])
    repeated = tmp_path / "repeated.jsonl"
    repeated.write_text("".join(json.dumps(row) + "\n" for row in [*ROWS, ROWS[0]]))

    with pytest.raises(ClientError) as refused:
        client.submit("echo", repeated)

    assert [r["custom_id"] for r in client.results(job["id"])] == ["q1", None, "q3"]
    assert refused.value.status == 422
    assert refused.value.errors[0]["field"] == "inputs[3].custom_id"
    assert refused.value.errors[0]["line"] == 4


def test_the_cli_prints_the_result_of_one_custom_id(service_url: str, client: Client) -> None:
    client.push_graph(ECHO_GRAPH)
    job = client.submit("echo", ROWS)
    client.wait(job["id"])

    shown = CliRunner().invoke(
        app, ["jobs", "results", job["id"], "--custom-id", "q1"], env={"INF_URL": service_url}
    )

    assert shown.exit_code == 0, shown.output
    [line] = shown.output.splitlines()
    result = json.loads(line)
    assert (result["custom_id"], result["metadata"]) == ("q1", {"source": "faq"})
    assert result["output"]["answer"].endswith("first")
