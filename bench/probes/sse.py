"""Event-stream probe: hundreds of open streams must not take the database pool from others.

A job of ``--items`` items runs against the fake LLM server (``--latency-ms``) while
``--streams`` clients follow its event stream (``GET /v1/jobs/{id}/events``) and a separate
process polls the job's status (``GET /v1/jobs/{id}``) every 20 ms.

Criterion: every stream receives the job's terminal event, and the status polls' p99 stays under
``--p99-ms`` (100 ms). Before event streams shared one poller per job, about 16 streams on
SQLite (20 on Postgres) held every pooled connection: each request waited about 30 s and no
stream got an event.

    .venv/bin/python -m bench.probes.sse [--streams 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import httpx

from bench.fake_llm.handle import FakeLLM
from bench.probes import common
from bench.probes.common import Outcome

TERMINAL_EVENTS = ("job_completed", "job_failed", "job_cancelled")


def graph() -> dict[str, Any]:
    node = {"id": "answer", "op": "llm", "alias": "fast", "prompt": "{x}"}
    return {
        "name": "probe-sse",
        "inputs": {"x": {"type": "string"}},
        "nodes": [node],
        "outputs": {"answer": "answer"},
    }


def run(args: argparse.Namespace) -> Outcome:
    outcome = Outcome("sse")
    with (
        common.workdir(args.keep_logs) as directory,
        common.database(args.database_url, directory) as url,
        FakeLLM(latency_ms=args.latency_ms) as llm,
    ):
        outcome.say(f"sse on {common.backend_name(url)}: {args.streams} streams")
        endpoints = common.endpoints_file(directory / "endpoints.yaml", llm.base_url, 16)
        with common.server(url, directory, endpoints) as service:
            _probe(service, args, outcome)
    return outcome


def _probe(service: common.Server, args: argparse.Namespace, outcome: Outcome) -> None:
    common.upload_graph(service.client, graph()).raise_for_status()
    inputs = [{"x": f"item {i}"} for i in range(args.items)]
    job_id = common.submit_job(service.client, "probe-sse", inputs)
    path = f"/v1/jobs/{job_id}"
    with common.HealthPoller(service.url, interval_s=0.02, path=path) as poller:
        ended = asyncio.run(follow_all(service.url, job_id, args.streams, args.timeout_s))
        latencies = poller.stop()
    status, _ = common.wait_terminal(service.client, job_id, args.timeout_s)
    outcome.say(f"  job: {status['status']}, {status['counts']}")
    outcome.say(f"  streams that got the terminal event: {ended} of {args.streams}")
    outcome.say("  " + common.latency_line("status polls during the streams", latencies))
    p99 = common.percentile(latencies, 0.99)
    outcome.check(ended == args.streams, "every stream got the terminal event")
    outcome.check(p99 < args.p99_ms, f"status poll p99 {p99:.1f} ms < {args.p99_ms:.0f} ms")
    outcome.summary = f"{ended}/{args.streams} streams ended, status p99 {p99:.1f} ms"


async def follow_all(url: str, job_id: str, streams: int, timeout_s: float) -> int:
    """Open ``streams`` event streams at once; how many saw a terminal event in time."""
    limits = httpx.Limits(max_connections=streams + 10)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:
        ended = await asyncio.gather(*(follow(client, job_id) for _ in range(streams)))
    return sum(ended)


async def follow(client: httpx.AsyncClient, job_id: str) -> bool:
    try:
        async with client.stream("GET", f"/v1/jobs/{job_id}/events") as reply:
            async for line in reply.aiter_lines():
                if line.startswith("event:") and line.split(":", 1)[1].strip() in TERMINAL_EVENTS:
                    return True
    except httpx.HTTPError:
        return False
    return False


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(__doc__)
    p.add_argument("--streams", type=int, default=200, help="event streams on the job")
    p.add_argument("--items", type=int, default=3000, help="items of the followed job (about 20 s)")
    p.add_argument("--latency-ms", type=float, default=100.0, help="the fake LLM's latency")
    p.add_argument("--p99-ms", type=float, default=100.0, help="status-poll p99 bound")
    p.add_argument("--timeout-s", type=float, default=120.0, help="for the streams to end")
    return p


if __name__ == "__main__":
    sys.exit(common.main(run, build_parser().parse_args()))
