"""A server killed (SIGKILL) mid-batch resumes the batch after a restart on the same database:
the batch completes, its output file answers every custom_id exactly once, in input order,
and no line answered and stored before the kill is sent to the model again."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    DatabaseProbe,
    Servers,
    endpoints_for,
    server_env,
    wait_for,
)

pytestmark = pytest.mark.slow

LINES = 2_000
SETTINGS = {
    "auto_migrate": "false",
    "runner_window": 128,
    "flush_interval_s": 0.02,
    "lease_s": 2,  # Postgres: the dead process's lease lapses quickly
    "heartbeat_s": 0.5,
    "poll_s": 0.2,
}


def batch_file() -> bytes:
    lines = [
        {"custom_id": f"line-{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "fast", "messages": [{"role": "user", "content": f"item {i}"}]}}
        for i in range(LINES)
    ]  # fmt: skip
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="open", max_retries=0)


def start(running: Servers, marker: str, db_url: str, llm: FakeLLM, tmp_path: Path) -> Any:
    endpoints = endpoints_for(tmp_path / f"{marker}.yaml", llm.base_url, marker, 64)
    env = server_env(db_url, endpoints, files_dir=tmp_path / "files", **SETTINGS)
    return running.start(marker, env)


def test_a_killed_batch_completes_with_each_line_answered_once(
    db_url: str, slow_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    probe = DatabaseProbe(db_url)
    first = start(running, "run1", db_url, slow_llm, tmp_path)
    client = sdk(first.url)
    upload = client.files.create(file=("in.jsonl", io.BytesIO(batch_file())), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    def a_quarter() -> bool | None:
        counts = client.batches.retrieve(batch.id).request_counts
        return True if counts is not None and counts.completed >= LINES // 4 else None

    wait_for(a_quarter, timeout_s=30, interval_s=0.02, what="a quarter of the lines")
    first.kill()
    wait_for(lambda: slow_llm.stats()["in_flight"] == 0 or None, 10, what="the fake to drain")
    before = _prompts(slow_llm.log(), "run1")
    stored_at_kill = {f"item {index}" for index, _ in probe.node_results(batch.id)}

    second = start(running, "run2", db_url, slow_llm, tmp_path)
    client = sdk(second.url)

    def ended() -> Any:
        found = client.batches.retrieve(batch.id)
        return found if found.status in ("completed", "failed", "expired", "cancelled") else None

    final = wait_for(ended, timeout_s=60, interval_s=0.1, what="the batch to end")
    after = _prompts(slow_llm.log(), "run2")
    stored = probe.node_results(batch.id)
    probe.close()
    assert final.status == "completed", final
    assert final.output_file_id is not None
    assert final.request_counts is not None
    assert final.request_counts.completed == LINES
    text = client.files.content(final.output_file_id).text
    answered = [json.loads(raw)["custom_id"] for raw in text.splitlines()]
    assert answered == [f"line-{i}" for i in range(LINES)]  # each once, in input order
    print(f"\nrequests before the kill {len(before)}, after the restart {len(after)}, "
          f"sent by both {len(before & after)}")  # fmt: skip
    assert before | after == {f"item {i}" for i in range(LINES)}
    assert not stored_at_kill & after  # a call stored before the kill is never sent again
    assert 0 < len(stored_at_kill) < LINES
    assert sorted(index for index, _ in stored) == list(range(LINES))  # one call row per line
    assert len(before & after) <= 128 + 500  # in flight (the window) or not yet flushed


def _prompts(log: list[dict[str, Any]], marker: str) -> set[str]:
    return {str(e.get("prompt")) for e in log if str(e.get("model", "")).startswith(marker)}
