"""``Client.submit`` and ``Client.run`` with the response ledger, against the real service:
a JSONL upload recorded, then replayed with no call at the fake server."""

from __future__ import annotations

import json
from pathlib import Path

from app.client import Client
from tests.integration.client.support import ECHO_GRAPH as ECHO
from tests.support.fake_llm import FakeLLM


def test_an_upload_recorded_then_replayed_makes_no_call(
    client: Client, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.configure(unique_replies=True)
    client.push_graph(ECHO)
    inputs = [{"text": f"doc-{i}"} for i in range(10)]
    path = tmp_path / "inputs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in inputs))

    first = client.submit("echo", path, cache="read_write")
    list(client.events(first["id"]))
    recorded = list(client.results(first["id"]))
    assert len(fake_llm.log()) == 10
    fake_llm.reset()

    again = client.submit("echo", inputs, replay="strict")
    list(client.events(again["id"]))

    assert fake_llm.log() == []
    assert [r["output"] for r in client.results(again["id"])] == [r["output"] for r in recorded]
    status = client.job(again["id"])
    assert (status["replay"], status["usage"]["calls_saved"]) == ("strict", 10)
    ran = client.run("echo", inputs[0], cache="read")
    assert ran["outputs"] == recorded[0]["output"]
    assert fake_llm.log() == []
