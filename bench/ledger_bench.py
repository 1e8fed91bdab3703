"""The response ledger: a batch recorded into a file ledger, then replayed from it.

Runs ``N`` items of a two-call pipeline (draft, then polish) against the fake server three
ways in one invocation: no ledger, ``cache="read_write"`` into an empty directory (every call
made and recorded), and ``cache="read"`` (every call served from the ledger). Reports wall
time, calls seen by the server and the ratios; figures from one invocation only are compared.

    .venv/bin/python -m bench.ledger_bench --items 500 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from app.engine import InferenceModule, LLMInference, ResourceConfig, ResourceManager, run_batch
from bench.fake_llm.handle import FakeLLM


class Pipeline(InferenceModule):
    def __init__(self) -> None:
        super().__init__()
        self.draft = LLMInference("fast", system_prompt="Draft.")
        self.polish = LLMInference("fast", system_prompt="Polish.")

    def forward(self, doc: str) -> Any:
        return self.polish(f"Polish: {self.draft(doc)}")


async def timed(server: FakeLLM, items: list[str], **settings: Any) -> dict[str, float]:
    endpoint = {"provider": "openai-compatible", "model": "fast", "base_url": server.base_url}
    config = ResourceConfig.from_dict({"endpoints": {"fast": {**endpoint, "max_concurrent": 64}}})
    server.reset()
    async with ResourceManager(config) as manager:
        started = time.perf_counter()
        results = await run_batch(Pipeline(), items, resources=manager, **settings)
        wall = time.perf_counter() - started
    assert all(r.ok for r in results)
    return {"wall_s": round(wall, 3), "server_calls": server.stats()["requests"]}


def count_files(directory: Path) -> int:
    return len(list(directory.glob("*/*.json")))


async def measure(items: int, latency_ms: float) -> dict[str, Any]:
    docs = [f"document {i}" for i in range(items)]
    with FakeLLM(latency_ms=latency_ms) as server, tempfile.TemporaryDirectory() as ledger:
        plain = await timed(server, docs)
        recording = await timed(server, docs, ledger=ledger, cache="read_write")
        replay = await timed(server, docs, ledger=ledger, cache="read")
        entries = count_files(Path(ledger))
    return {
        "items": items,
        "latency_ms": latency_ms,
        "no_ledger": plain,
        "read_write": recording,
        "read": replay,
        "entries": entries,
        "recording_over_plain": round(recording["wall_s"] / plain["wall_s"], 2),
        "replay_over_plain": round(replay["wall_s"] / plain["wall_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.items, args.latency_ms)), indent=2))


if __name__ == "__main__":
    main()
