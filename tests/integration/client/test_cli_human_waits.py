"""``inf-engine jobs waits`` and ``jobs answer``: list a job's waits with their prompts, answer
one, and a wrong answer's problem named on stderr."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner, Result

from app.cli import app
from app.client import Client

GRAPH = {
    "name": "approve",
    "inputs": {"text": {"type": "string"}},
    "nodes": [
        {
            "id": "ok",
            "op": "human",
            "prompt": "Approve {text}?",
            "schema": {"type": "object", "required": ["approve"],
                       "properties": {"approve": {"type": "boolean"}}},
        },
        {"id": "out", "op": "template", "text": "{text}: {ok.approve}"},
    ],
    "outputs": {"out": "out"},
}  # fmt: skip


def cli(service_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["jobs", *args], env={"INF_URL": service_url})


def until_waiting(client: Client, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while client.job(job_id)["counts"].get("waiting", 0) < 1:
        assert time.monotonic() < deadline, client.job(job_id)
        time.sleep(0.05)


def test_waits_lists_prompts_and_answer_resumes_the_item(service_url: str, client: Client) -> None:
    client.push_graph(GRAPH)
    job_id = client.submit("approve", [{"text": "memo"}])["id"]
    until_waiting(client, job_id)

    listed = cli(service_url, "waits", job_id, "--json")
    assert listed.exit_code == 0, listed.output
    [wait] = json.loads(listed.output)
    assert (wait["item"], wait["node"], wait["prompt"]) == (0, "ok", "Approve memo?")

    wrong = cli(service_url, "answer", job_id, "0", "ok", '{"approve": "yes"}')
    assert wrong.exit_code != 0
    assert "answer.approve" in wrong.output

    answered = cli(service_url, "answer", job_id, "0", "ok", '{"approve": true}')
    assert answered.exit_code == 0, answered.output
    assert "answered" in answered.output
    assert client.wait(job_id)["status"] == "completed"
    assert next(client.results(job_id))["output"] == {"out": "memo: true"}
