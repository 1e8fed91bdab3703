"""Engine benchmark: extract-and-compare at scale against the fake server, beside its floor.

Each item makes three calls: two extractions (concurrent) and one comparison of their
outputs, so two calls lie on the critical path. The fake server answers after a fixed latency
and runs pinned to one core; each client runs in its own process pinned to the other core:

- ``floor``: a plain asyncio + aiohttp loop making the same calls under a semaphore;
- ``engine``: the traced ``ExtractAndCompare`` module run as a batch by inf-engine.

Ideal bound: every call holds one of ``C`` concurrency slots for the latency ``L``, so ``3N``
calls need at least ``ceil(3N / C)`` rounds of ``L`` (and never less than the critical path
``2L``). Efficiency is ideal / actual wall time. CPU per call is the client process's user +
system time divided by the calls it made.

    make bench-engine                       # both configurations, then "plan 10k nodes"
    .venv/bin/python -m bench.engine_bench --items 1000 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from app.engine import InferenceModule, LLMInference, Parameter, ResourceConfig, stream
from app.engine.resources.manager import close_shared_managers
from app.loops import run_loop
from bench import plan_bench
from bench.fake_llm.handle import FakeLLM

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EXTRACT = "Extract the main facts as a bulleted list."
COMPARE = "Highlight key similarities and differences."


@dataclass
class Measurement:
    client: str
    items: int
    concurrency: int
    latency_s: float
    calls: int
    failures: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float

    @property
    def ideal_s(self) -> float:
        return ideal_bound(self.items, self.concurrency, self.latency_s)

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.wall_s

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_s / max(1, self.calls)


def ideal_bound(items: int, concurrency: int, latency_s: float) -> float:
    """Slot-limited lower bound on wall time (see the module docstring)."""
    return max(math.ceil(3 * items / concurrency), 2) * latency_s


def documents(i: int) -> tuple[str, str]:
    return (
        f"Document A{i}: electric cars charge from the grid.",
        f"Document B{i}: hydrogen refuels fast.",
    )


# -- clients (each runs in its own pinned process) ---------------------------------------


async def floor_client(base_url: str, items: int, concurrency: int) -> tuple[int, int]:
    """The floor: aiohttp, one session, a semaphore, the same three calls per item."""
    semaphore = asyncio.Semaphore(concurrency)
    url = f"{base_url}/chat/completions"
    failures = 0

    async def call(session: aiohttp.ClientSession, system: str, prompt: str) -> str:
        nonlocal failures
        body = {
            "model": "m",
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
        }
        async with semaphore, session.post(url, json=body) as response:
            data = await response.json()
            if response.status != 200:
                failures += 1
                return ""
            return str(data["choices"][0]["message"]["content"])

    async def item(session: aiohttp.ClientSession, i: int) -> None:
        doc1, doc2 = documents(i)
        facts1, facts2 = await asyncio.gather(
            call(session, EXTRACT, doc1), call(session, EXTRACT, doc2)
        )
        await call(session, COMPARE, f"Compare:\n{facts1}\n\nvs:\n{facts2}")

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(item(session, i) for i in range(items)))
    return 3 * items, failures


async def engine_client(base_url: str, items: int, concurrency: int) -> tuple[int, int]:
    """inf-engine: the traced module, run as one batch on one shared resource manager."""

    class ExtractAndCompare(InferenceModule):
        def __init__(self) -> None:
            super().__init__()
            self.extract = LLMInference("fast", system_prompt=EXTRACT)
            self.style = Parameter(COMPARE, description="How the comparison is written")
            self.compare = LLMInference("fast", system_prompt=self.style)

        def forward(self, doc1: str, doc2: str) -> Any:
            facts1, facts2 = self.extract(doc1), self.extract(doc2)
            return self.compare(f"Compare:\n{facts1}\n\nvs:\n{facts2}")

    endpoint = {
        "provider": "openai-compatible",
        "model": "m",
        "base_url": base_url,
        "max_concurrent": concurrency,
    }
    config = ResourceConfig.from_dict({"endpoints": {"fast": endpoint}})
    pipeline = ExtractAndCompare()
    failures = 0
    async for result in stream(
        pipeline, (documents(i) for i in range(items)), resources=config, ordered=False
    ):
        failures += result.error is not None
    await close_shared_managers()
    return 3 * items, failures


CLIENTS = {"floor": floor_client, "engine": engine_client}


def measure(
    client: str, base_url: str, items: int, concurrency: int, latency_s: float, loop: str
) -> Measurement:
    """Run one client in this process (on ``loop``: asyncio or uvloop) and measure it."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    work = CLIENTS[client](base_url, items, concurrency)
    calls, failures = run_loop(work) if loop == "uvloop" else asyncio.run(work)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss_mb = after.ru_maxrss / 1024
    return Measurement(client, items, concurrency, latency_s, calls, failures, wall, cpu, rss_mb)


# -- orchestration -------------------------------------------------------------------------


def run_client_process(
    client: str, base_url: str, args: argparse.Namespace, items: int, concurrency: int
) -> Measurement:
    command = [
        sys.executable,
        "-m",
        "bench.engine_bench",
        "--child",
        client,
        "--base-url",
        base_url,
        "--items",
        str(items),
        "--concurrency",
        str(concurrency),
        "--latency-ms",
        str(args.latency_ms),
        "--client-cpu",
        str(args.client_cpu),
        "--loop",
        args.loop,
    ]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return Measurement(**json.loads(output.strip().splitlines()[-1]))


ROW = "{:<8} {:>8} {:>11} {:>7} {:>12} {:>12} {:>7}"


def report(floor: Measurement, engine: Measurement) -> dict[str, Any]:
    """Print one configuration's table and return its figures."""
    print(
        f"\n{engine.items:,} items x 3 calls, latency {engine.latency_s * 1000:.0f} ms, "
        f"max_concurrent {engine.concurrency}, ideal bound {engine.ideal_s:.2f} s"
    )
    print(
        ROW.format(
            "client", "wall s", "efficiency", "cpu s", "cpu ms/call", "peak RSS MB", "failed"
        )
    )
    for m in (floor, engine):
        figures = (f"{m.wall_s:.2f}", f"{m.efficiency:.3f}", f"{m.cpu_s:.2f}")
        more = (f"{m.cpu_ms_per_call:.3f}", f"{m.peak_rss_mb:.1f}", m.failures)
        print(ROW.format(m.client, *figures, *more))
    wall = engine.wall_s / floor.wall_s
    cpu = engine.cpu_ms_per_call / floor.cpu_ms_per_call
    print(f"engine/floor: wall {wall:.3f}x, cpu per call {cpu:.3f}x")
    return {
        "floor": _figures(floor),
        "engine": _figures(engine),
        "wall_vs_floor": wall,
        "cpu_per_call_vs_floor": cpu,
    }


def _figures(m: Measurement) -> dict[str, Any]:
    return {
        **asdict(m),
        "ideal_s": m.ideal_s,
        "efficiency": m.efficiency,
        "cpu_ms_per_call": m.cpu_ms_per_call,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--items", type=int, action="append", help="items (repeat for several runs)"
    )
    parser.add_argument("--concurrency", type=int, action="append", help="max_concurrent per run")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the clients' event loop"
    )
    parser.add_argument("--child", choices=sorted(CLIENTS))
    parser.add_argument("--base-url")
    args = parser.parse_args(argv)
    if args.child:
        os.sched_setaffinity(0, {args.client_cpu})
        items, concurrency = args.items[0], args.concurrency[0]
        print(
            json.dumps(
                asdict(
                    measure(
                        args.child,
                        args.base_url,
                        items,
                        concurrency,
                        args.latency_ms / 1000,
                        args.loop,
                    )
                )
            )
        )
        return 0
    runs = list(zip(args.items or [10_000, 1_000], args.concurrency or [256, 64], strict=True))
    results = []
    with FakeLLM(latency_ms=args.latency_ms, log=False, cpu=args.server_cpu) as server:
        for items, concurrency in runs:
            pair = [
                run_client_process(c, server.base_url, args, items, concurrency)
                for c in ("floor", "engine")
            ]
            results.append(report(*pair))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "engine_bench.json").write_text(json.dumps(results, indent=2))
    os.sched_setaffinity(0, {args.client_cpu})  # planning runs here, on the clients' core
    plan_bench.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
