"""Load for the shared-limit tests: endpoints with limits, a two-alias graph, parallel runs.

The bound under test is read at the fake server (``FakeLLM.window``), never from the service:
each process's endpoints name their models ``<marker>-<alias>``, so ``model_suffix="-rpm"``
selects one alias across every process and ``"alpha-rpm"`` one process's calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

# ~400 characters per document: a call serves about 160 tokens (prompt + reply preview).
FILLER = "Electric cars charge from the grid while hydrogen cars refuel at a station. " * 5


def limited_endpoints(
    path: Path, base_url: str, marker: str, aliases: Mapping[str, Mapping[str, Any]]
) -> Path:
    """An endpoints YAML on the fake server with one entry per alias (its limits as given);
    alias ``a`` calls the model ``<marker>-a``."""
    common = {"provider": "openai-compatible", "base_url": base_url}
    endpoints = {
        alias: {**common, **limits, "model": f"{marker}-{alias}"}
        for alias, limits in aliases.items()
    }
    path.write_text(yaml.safe_dump({"endpoints": endpoints}))
    return path


def one_call_per_alias(name: str, aliases: Mapping[str, int | None]) -> dict[str, Any]:
    """A graph with one independent ``llm`` node per alias (alias -> its ``max_tokens``); the
    system prompt of each is ``<alias>: Facts.``, so that a fake-server rule can pick one."""
    nodes = [
        {"id": alias, "op": "llm", "alias": alias, "system": f"{alias}: Facts.", "prompt": "{doc1}"}
        | ({} if max_tokens is None else {"max_tokens": max_tokens})
        for alias, max_tokens in aliases.items()
    ]
    return {
        "name": name,
        "inputs": {"doc1": {"type": "string"}},
        "nodes": nodes,
        "outputs": {alias: alias for alias in aliases},
    }


def documents(tag: str, count: int) -> list[dict[str, str]]:
    """``count`` distinct inputs of about 400 characters."""
    return [{"doc1": f"[{tag}/{i}] {FILLER}"} for i in range(count)]


def cancel_jobs(client: httpx.Client, job_ids: list[str]) -> None:
    """Cancel every job (they were meant to outlast the test)."""
    for job_id in job_ids:
        response = client.post(f"/v1/jobs/{job_id}/cancel")
        assert response.status_code == 200, response.text


@contextmanager
def parallel_runs(url: str, graph_id: str, parallel: int) -> Iterator[list[int]]:
    """Rounds of ``parallel`` concurrent ``POST /v1/runs`` while the block lasts (the round in
    progress is finished afterwards); yields the list their statuses are appended to (0: no
    answer within the client's 60 s)."""
    statuses: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(_rounds(url, graph_id, parallel, stop, statuses)), daemon=True
    )
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(timeout=90)


async def _rounds(
    url: str, graph_id: str, parallel: int, stop: threading.Event, statuses: list[int]
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        round_ = 0
        while not stop.is_set():
            bodies = [
                {"graph_id": graph_id, "inputs": documents(f"run{round_}", parallel)[n]}
                for n in range(parallel)
            ]
            answers = await asyncio.gather(
                *(client.post("/v1/runs", json=b) for b in bodies), return_exceptions=True
            )
            statuses += [_status(answer) for answer in answers]
            round_ += 1


def _status(answer: httpx.Response | BaseException) -> int:
    if isinstance(answer, httpx.TransportError):
        return 0
    if isinstance(answer, BaseException):
        raise answer
    return answer.status_code
