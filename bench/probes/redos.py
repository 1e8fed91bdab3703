"""ReDoS probe: catastrophic-backtracking patterns in ``classify`` nodes must not stall the service.

Uploads a graph with one ``classify`` node per classic evil pattern (``(a+)+$``, ``(a|aa)+$``,
``(.*a){20}``, ...), shows that patterns RE2 cannot run are refused at upload (422), then runs
``--concurrency`` parallel ``POST /v1/runs`` on ``"a" * k + "!"`` (k from 28 to 100,000) and a
job of such items, while a separate client polls ``/healthz`` every 10 ms.

Criterion: ``/healthz`` p99 < 100 ms during the hostile load, every run answered 200, the job
completed.

    .venv/bin/python -m bench.probes.redos [--concurrency 8 --runs 64 --items 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.probes import common
from bench.probes.common import Outcome

EVIL = {  # label -> pattern RE2 runs in linear time (a backtracking engine: exponential)
    "nested": "(a+)+$",
    "alternation": "(a|aa)+$",
    "repeated_star": "(.*a){20}",
    "star_star": "(a*)*$",
    "overlap": "^(\\w+\\s?)*$",
}
REFUSED = {  # patterns RE2 refuses: they need backtracking
    "backreference": "(a+)\\1$",
    "lookahead": "(?=a+)+a$",
}
LENGTHS = (28, 1_000, 10_000, 100_000)
HEALTH_P99_MS = 100.0


def graph(labels: dict[str, str], name: str = "probe-redos") -> dict[str, Any]:
    """One classify node per pattern, each on the input ``text``."""
    nodes = [
        {
            "id": f"c_{label}",
            "op": "classify",
            "source": "text",
            "labels": {label: pattern},
            "default": "fine",
        }
        for label, pattern in labels.items()
    ]
    return {
        "name": name,
        "inputs": {"text": {"type": "string"}},
        "nodes": nodes,
        "outputs": {node["id"]: node["id"] for node in nodes},
    }


def hostile(i: int) -> str:
    return "a" * LENGTHS[i % len(LENGTHS)] + "!"


def run(args: argparse.Namespace) -> Outcome:
    outcome = Outcome("redos")
    with (
        common.workdir(args.keep_logs) as directory,
        common.database(args.database_url, directory) as url,
    ):
        outcome.say(f"redos on {common.backend_name(url)}")
        with common.server(url, directory) as service:
            _probe(service, args, outcome)
    return outcome


def _probe(service: common.Server, args: argparse.Namespace, outcome: Outcome) -> None:
    _refusals(service.client, outcome)
    uploaded = common.upload_graph(service.client, graph(EVIL))
    patterns = ", ".join(EVIL.values())
    outcome.say(f"  upload {patterns}: {uploaded.status_code}")
    if not outcome.check(
        uploaded.status_code in (200, 201), "RE2-compatible evil patterns accepted"
    ):
        outcome.say(common.short(uploaded.text, 600))
        return
    texts = [{"text": hostile(i)} for i in range(args.items)]
    with common.HealthPoller(service.url) as poller:
        started = time.monotonic()
        job_id = common.submit_job(service.client, "probe-redos", texts)
        statuses, run_ms = _hostile_runs(service.url, args)
        status, _ = common.wait_terminal(service.client, job_id, args.timeout_s)
        job_s = time.monotonic() - started
        health_ms = poller.stop()
    _report(outcome, health_ms, statuses, run_ms, status, job_s)


def _refusals(client: httpx.Client, outcome: Outcome) -> None:
    for label, pattern in REFUSED.items():
        reply = common.upload_graph(client, graph({label: pattern}, f"probe-redos-{label}"))
        detail = reply.json().get("errors") or reply.json().get("detail")
        outcome.say(f"  upload {pattern!r}: {reply.status_code} {common.short(detail, 200)}")
        outcome.check(reply.status_code == 422, f"{pattern!r} refused at upload with 422")


def _hostile_runs(url: str, args: argparse.Namespace) -> tuple[list[int], list[float]]:
    """``args.runs`` requests from ``args.concurrency`` clients, each on its own connection;
    stops early once ``args.duration_s`` has passed."""
    deadline = time.monotonic() + args.duration_s

    def one(i: int) -> tuple[int, float]:
        if time.monotonic() > deadline:
            return 0, 0.0
        body = {"graph_id": "probe-redos", "inputs": {"text": hostile(i)}}
        started = time.perf_counter()
        with httpx.Client(base_url=url, timeout=args.timeout_s) as client:
            try:
                code = client.post("/v1/runs", json=body).status_code
            except httpx.HTTPError:
                code = -1
        return code, (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(args.concurrency) as pool:
        answers = [answer for answer in pool.map(one, range(args.runs)) if answer[0] != 0]
    return [code for code, _ in answers], [ms for _, ms in answers]


def _report(
    outcome: Outcome,
    health_ms: list[float],
    statuses: list[int],
    run_ms: list[float],
    status: dict[str, Any],
    job_s: float,
) -> None:
    outcome.say("  " + common.latency_line("/healthz during the load", health_ms))
    outcome.say("  " + common.latency_line("hostile POST /v1/runs", run_ms))
    codes = {code: statuses.count(code) for code in sorted(set(statuses))}
    outcome.say(f"  run answers by status: {codes}")
    counts = status["counts"]
    outcome.say(f"  job: {status['status']} in {job_s:.1f} s, counts {counts}")
    p99 = common.percentile(health_ms, 0.99)
    outcome.check(bool(health_ms) and p99 < HEALTH_P99_MS, f"/healthz p99 {p99:.1f} ms < 100 ms")
    outcome.check(bool(statuses) and set(statuses) == {200}, "every hostile run answered 200")
    outcome.check(
        status["status"] == "completed" and counts["succeeded"] == counts["total"],
        "the hostile job completed, every item succeeded",
    )
    outcome.summary = f"/healthz p99 {p99:.1f} ms, max {max(health_ms, default=0):.1f} ms"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(__doc__)
    p.add_argument("--concurrency", type=int, default=8, help="parallel POST /v1/runs clients")
    p.add_argument("--runs", type=int, default=160, help="POST /v1/runs requests in all")
    p.add_argument("--items", type=int, default=1_000, help="items of the hostile job")
    p.add_argument("--duration-s", type=float, default=60.0, help="stop sending runs after this")
    p.add_argument("--timeout-s", type=float, default=90.0, help="per request, and for the job")
    return p


if __name__ == "__main__":
    sys.exit(common.main(run, build_parser().parse_args()))
