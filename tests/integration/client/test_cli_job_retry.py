"""``inf-engine jobs retry``: the failed items of an ended job run again as a new job, which
the command follows to its end; a job with nothing to retry is refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from app.cli import app
from app.client import Client
from tests.integration.client.support import ECHO_GRAPH
from tests.support.fake_llm import FakeLLM

INPUTS = [
    {"text": "fine a"},
    {"text": "poison b", "custom_id": "b"},
    {"text": "fine c"},
    {"text": "poison d", "custom_id": "d"},
]


def jobs_cli(service_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["jobs", *args], env={"INF_URL": service_url})


def ended_job(client: Client, fake_llm: FakeLLM) -> str:
    """A completed job whose two ``poison`` rows failed (the server refused them once)."""
    fake_llm.configure(rules=[{"match": "poison", "status": 400, "times": 2}])
    client.push_graph(ECHO_GRAPH)
    job_id = str(client.submit("echo", INPUTS)["id"])
    assert client.wait(job_id)["counts"]["failed"] == 2
    return job_id


def test_retry_runs_the_failed_rows_as_a_new_job_and_follows_it(
    service_url: str, client: Client, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    original = ended_job(client, fake_llm)
    output = tmp_path / "retried.jsonl"

    done = jobs_cli(service_url, "retry", original, "--output", str(output))

    assert done.exit_code == 0, done.output
    assert f"queued: 2 failed items of {original}" in done.output
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(row["custom_id"], row["status"]) for row in rows] == [
        ("b", "succeeded"),
        ("d", "succeeded"),
    ]
    retried = done.output.split()[1]
    shown = jobs_cli(service_url, "status", retried)
    assert f"retry of  {original}" in shown.output


def test_retry_of_a_job_without_failures_is_refused(
    service_url: str, client: Client, fake_llm: FakeLLM
) -> None:
    client.push_graph(ECHO_GRAPH)
    job_id = str(client.submit("echo", [{"text": "fine"}])["id"])
    client.wait(job_id)

    refused = jobs_cli(service_url, "retry", job_id, "--no-wait")

    assert refused.exit_code == 1
    assert "no failed items" in refused.output
