"""``app.client.Client`` against the real service on loopback, its LLMs on the fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.client import Client, ClientError, verify_webhook
from app.signing import signature_header
from tests.integration.client.support import ECHO_GRAPH as ECHO
from tests.support.fake_llm import FakeLLM
from tests.support.processes import free_port


def texts(count: int, tag: str = "doc") -> list[dict[str, str]]:
    return [{"text": f"{tag}-{i}: electric cars charge from the grid"} for i in range(count)]


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def echoed(results: list[dict[str, Any]], inputs: list[dict[str, str]]) -> bool:
    """Each result answers its own input (the fake server's reply ends with the prompt)."""
    return len(results) == len(inputs) and all(
        result["output"]["answer"].endswith(item["text"])
        for result, item in zip(results, inputs, strict=True)
    )


def test_push_graph_from_json_and_yaml_files_and_dicts(client: Client, tmp_path: Path) -> None:
    json_file = tmp_path / "echo.json"
    json_file.write_text(json.dumps(ECHO))
    first = client.push_graph(json_file)
    again = client.push_graph(str(json_file))
    assert (first["name"], first["version"], first["created"]) == ("echo", 1, True)
    assert (again["version"], again["hash"], again["created"]) == (1, first["hash"], False)

    changed = {**ECHO, "nodes": [{**ECHO["nodes"][0], "system": "Echo back."}]}
    yaml_file = tmp_path / "echo.yaml"
    yaml_file.write_text(yaml.safe_dump({**changed, "name": "echo-yaml"}))
    from_yaml = client.push_graph(yaml_file)
    second = client.push_graph(changed)

    assert (from_yaml["name"], from_yaml["version"], from_yaml["created"]) == ("echo-yaml", 1, True)
    assert (second["name"], second["version"]) == ("echo", 2)
    assert client.graph("echo-yaml")["definition"]["nodes"][0]["system"] == "Echo back."
    assert client.graph("echo", version=1)["hash"] == first["hash"]
    listed = [(graph["name"], graph["version"]) for graph in client.graphs(page_size=1)]
    assert listed == [("echo", 2), ("echo-yaml", 1)]


def test_submitted_list_runs_and_events_end_with_the_terminal_one(client: Client) -> None:
    client.push_graph(ECHO)
    inputs = texts(25)

    job = client.submit("echo", inputs)
    events = list(client.events(job["id"]))

    assert (job["status"], job["counts"]["total"]) == ("queued", 25)
    ids = [event.id for event in events]
    assert ids == sorted(set(ids))
    assert events[-1].kind == "job_completed"
    assert events[-1].data["counts"]["succeeded"] == 25
    assert [event for event in events if event.terminal] == [events[-1]]
    items = [index for event in events if event.kind == "items_succeeded" for index in event.items]
    assert sorted(items) == list(range(25))
    results = list(client.results(job["id"]))
    assert [result["index"] for result in results] == list(range(25))
    assert echoed(results, inputs)
    assert list(client.events(job["id"], after=events[-1].id)) == []


def test_jsonl_file_upload_with_version_and_priority(client: Client, tmp_path: Path) -> None:
    client.push_graph(ECHO)
    inputs = texts(30, tag="file")

    job = client.submit("echo", jsonl(tmp_path / "inputs.jsonl", inputs), version=1, priority=-5)
    final = client.wait(job["id"])

    assert (job["priority"], job["graph_version"], job["counts"]["total"]) == (-5, 1, 30)
    assert (final["status"], final["counts"]["succeeded"]) == ("completed", 30)
    assert echoed(list(client.results(job["id"])), inputs)
    item = client.item(job["id"], 7)
    assert (item["index"], item["input"], item["status"]) == (7, inputs[7], "succeeded")
    assert [node["node"] for node in item["nodes"]] == ["answer"]


def test_cancel_ends_the_job_and_keeps_finished_results(client: Client, fake_llm: FakeLLM) -> None:
    fake_llm.configure(latency_ms=50)
    client.push_graph(ECHO)
    job = client.submit("echo", texts(200))
    stream = client.events(job["id"])

    first = next(event for event in stream if event.kind == "items_succeeded")
    cancelled = client.cancel(job["id"])
    rest = list(stream)

    assert first.items
    assert all(0 <= index < 200 for index in first.items)
    assert cancelled["status"] == "cancelled"
    assert rest[-1].kind == "job_cancelled"
    final = client.job(job["id"])
    assert final["status"] == "cancelled"
    assert 0 < final["counts"]["succeeded"] < 200
    results = list(client.results(job["id"]))
    assert [result["index"] for result in results] == list(range(200))
    succeeded = [result for result in results if result["status"] == "succeeded"]
    assert len(succeeded) == final["counts"]["succeeded"]
    assert {result["status"] for result in results} == {"succeeded", "cancelled"}


def test_run_one_input(client: Client) -> None:
    client.push_graph(ECHO)

    answer = client.run("echo", {"text": "Cats purr."})

    assert answer["status"] == "succeeded"
    assert answer["outputs"]["answer"].endswith("Cats purr.")
    assert answer["nodes"]["answer"]["status"] == "succeeded"


def test_jobs_are_listed_newest_first_across_pages(client: Client) -> None:
    client.push_graph(ECHO)
    older = client.submit("echo", texts(2))
    client.wait(older["id"])
    newer = client.submit("echo", texts(2))
    client.wait(newer["id"])

    listed = [job["id"] for job in client.jobs(page_size=1)]

    assert listed == [newer["id"], older["id"]]
    assert [job["id"] for job in client.jobs(status="completed")] == listed
    assert list(client.jobs(status="running")) == []


def test_errors_carry_the_problem_details(client: Client, tmp_path: Path) -> None:
    client.push_graph(ECHO)
    with pytest.raises(ClientError) as missing:
        client.job("no-such-job")
    with pytest.raises(ClientError) as invalid:
        client.submit("echo", texts(1), priority=5000)
    with pytest.raises(ClientError) as bad_line:
        client.submit("echo", jsonl(tmp_path / "bad.jsonl", [{"text": "ok"}, {"other": "x"}]))
    with pytest.raises(ClientError) as bad_graph:
        client.push_graph({**ECHO, "nodes": [{**ECHO["nodes"][0], "alias": "nowhere"}]})

    assert (missing.value.status, missing.value.type) == (404, "urn:inf-engine:problem:not-found")
    assert (missing.value.title, missing.value.detail) == (
        "Not found",
        "job 'no-such-job' not found",
    )
    assert missing.value.problem["status"] == 404
    assert (invalid.value.status, invalid.value.title) == (422, "Invalid input")
    assert [error["field"] for error in invalid.value.errors] == ["priority"]
    assert bad_line.value.status == 422
    assert [error.get("line") for error in bad_line.value.errors] == [2]
    assert bad_graph.value.detail == "the graph is invalid"
    assert [(e["node"], e["field"]) for e in bad_graph.value.errors] == [("answer", "alias")]


def test_streams_of_unknown_jobs_raise_at_once(client: Client) -> None:
    with pytest.raises(ClientError) as results:
        list(client.results("no-such-job"))
    with pytest.raises(ClientError) as events:
        list(client.events("no-such-job"))

    assert (results.value.status, events.value.status) == (404, 404)


def test_unreachable_service_raises_a_transport_error() -> None:
    with Client(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(httpx.ConnectError):
            client.job("any")
        with pytest.raises(httpx.ConnectError):
            list(client.events("any", reconnects=1))


def test_webhook_secret_verifies_signed_deliveries(client: Client) -> None:
    body = b'{"type": "job.completed", "job": {"id": "j1"}}'

    secret = client.webhook_secret()
    rotated = client.webhook_secret(rotate=True)

    assert client.webhook_secret() == rotated != secret
    signed = signature_header(rotated, "j1", body)
    assert verify_webhook(rotated, "j1", body, signed)
    assert not verify_webhook(secret, "j1", body, signed)
