"""The first model call of a fresh process: how long binding the configuration and the first
and second run of a one-node graph take, against the fake server on loopback.

    .venv/bin/python -m bench.first_call --runs 5

Each run is a new interpreter, so the provider imports are paid again every time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.fake_llm.handle import REPO_ROOT, FakeLLM

CHILD = """
import asyncio, json, sys, time
from app.engine import ResourceConfig, ResourceManager, load_graph, run

GRAPH = load_graph({"name": "g", "inputs": {"q": {}}, "outputs": {"o": "a"},
                    "nodes": [{"id": "a", "op": "llm", "alias": "fast", "prompt": "{q}"}]})
ENDPOINT = {"provider": "openai-compatible", "model": "m", "base_url": sys.argv[1]}

async def main() -> None:
    config = ResourceConfig.from_dict({"endpoints": {"fast": ENDPOINT}})
    times = {}
    start = time.perf_counter()
    manager = ResourceManager(config)
    times["bind_ms"] = time.perf_counter() - start
    for name, text in (("first_call_ms", "hi"), ("second_call_ms", "again")):
        start = time.perf_counter()
        await run(GRAPH, {"q": text}, resources=manager)
        times[name] = time.perf_counter() - start
    await manager.aclose()
    print(json.dumps({k: round(v * 1000, 1) for k, v in times.items()}))

asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with FakeLLM() as server:
        for _ in range(args.runs):
            command = [sys.executable, "-c", CHILD, server.base_url]
            done = subprocess.run(
                command, cwd=REPO_ROOT, capture_output=True, text=True, check=True
            )
            print(done.stdout.strip())


if __name__ == "__main__":
    main()
