"""Stall probe: a runner frozen past its lease must not make the job's items run twice.

The service runs with a short lease (``INF_LEASE_S=3``, heartbeat 1 s, and ``INF_POLL_S=0.2``
so that on waking the runner's claim loop tends to run before its heartbeat) against the fake LLM
server (``--latency-ms``, every request logged). A job of ``--items`` items, each with a
unique prompt, is submitted; once it is running the runner process (the serve process's
child) gets SIGSTOP for twice the lease, then SIGCONT, ``--stalls`` times (the race it exposes
is not won every time), and the job is waited for. A prompt the
fake server saw twice is a duplicate run. ``--stall-s 60`` is the issue's 60-s case with the
service's default lease; the service kills a runner silent for ``INF_RUNNER_STALL_KILL_S``
(20 s) and starts a new one, and the probe reports that from ``/healthz``.

LLM calls are at-least-once: a call in flight at the stall (sent, its result not yet stored)
may repeat. So the probe reports every duplicate, the duplicates of calls the fake server had
answered before a stall, and those of calls in flight at one. Criterion: no duplicate beyond
those in flight at a stall, exactly one ``job_started`` event (a runner restarted by the service
resumes the job without starting it again), and the job completed.

    .venv/bin/python -m bench.probes.stall [--stall-s 60]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.fake_llm.handle import FakeLLM
from bench.probes import common
from bench.probes.common import Outcome

TAG = "stall"
DEFAULT_LEASE_S = 3.0


def graph() -> dict[str, Any]:
    node = {"id": "answer", "op": "llm", "alias": "fast", "system": "probe", "prompt": "{x}"}
    return {
        "name": "probe-stall",
        "inputs": {"x": {"type": "string"}},
        "nodes": [node],
        "outputs": {"answer": "answer"},
    }


def prompt(i: int) -> str:
    return f"[{TAG}/{i}] Say something about the number {i}."


@dataclass
class Calls:
    """The probe's prompts the fake server has seen, split by whether it answered them."""

    answered: set[str]
    open: set[str]

    @classmethod
    def of(cls, log: list[dict[str, Any]]) -> Calls:
        ours = [entry for entry in log if str(entry.get("prompt") or "").startswith(f"[{TAG}/")]
        answered = {e["prompt"] for e in ours if e.get("t_done") is not None}
        return cls(answered, {e["prompt"] for e in ours} - answered)


def settings(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """The service's ``INF_*`` settings and the stall: twice a short lease by default; with
    ``--stall-s``, the service's own lease unless ``--lease-s`` is given too."""
    lease = args.lease_s if args.stall_s is None or args.lease_s is not None else None
    if args.stall_s is None:
        lease = lease or DEFAULT_LEASE_S
    chosen = {"heartbeat_s": 1.0, "poll_s": args.poll_s}
    chosen |= {"lease_s": lease} if lease is not None else {}
    return chosen, args.stall_s if args.stall_s is not None else 2 * (lease or DEFAULT_LEASE_S)


def run(args: argparse.Namespace) -> Outcome:
    outcome = Outcome("stall")
    chosen, stall_s = settings(args)
    with (
        common.workdir(args.keep_logs) as directory,
        common.database(args.database_url, directory) as url,
        FakeLLM(latency_ms=args.latency_ms) as llm,
    ):
        outcome.say(f"stall on {common.backend_name(url)}: {stall_s:.0f} s stall, {chosen}")
        endpoints = common.endpoints_file(directory / "endpoints.yaml", llm.base_url)
        with common.server(url, directory, endpoints, **chosen) as service:
            _probe(service, llm, args, stall_s, outcome)
    return outcome


def _probe(
    service: common.Server, llm: FakeLLM, args: argparse.Namespace, stall_s: float, out: Outcome
) -> None:
    client = service.client
    common.upload_graph(client, graph()).raise_for_status()
    job_id = common.submit_job(client, "probe-stall", [{"x": prompt(i)} for i in range(args.items)])
    answered: set[str] = set()
    in_flight: set[str] = set()
    restarts_before = int(service.health()["runner_restarts"])
    stalls = args.stalls or (1 if args.stall_s is not None else 3)
    step = args.items // (stalls + 3)
    for number in range(stalls):
        if not _wait_progress(service, job_id, step * (number + 1)):
            out.say(f"  stall {number + 1}: the job is not running (any more), no stall")
            break
        before, flying = _stall(service, llm, job_id, stall_s, out)
        answered, in_flight = before, in_flight | flying
    status, waited = common.wait_terminal(client, job_id, args.timeout_s)
    out.say(f"  /healthz after: {service.health()}; runner pid now {service.runner_pid()}")
    out.say(f"  job: {status['status']} {waited:.1f} s after the last SIGCONT, {status['counts']}")
    restarts = int(service.health()["runner_restarts"]) - restarts_before
    kinds = common.event_kinds(client, job_id)
    _judge(out, status, llm.log(), answered, in_flight, kinds, restarts)


def _wait_progress(service: common.Server, job_id: str, succeeded: int) -> bool:
    """Whether the job, still running, reaches ``succeeded`` items within 60 s."""

    def progressed() -> bool | None:
        status = common.job_status(service.client, job_id)
        if status["status"] in common.TERMINAL:
            return False
        return True if status["counts"]["succeeded"] >= max(1, succeeded) else None

    return bool(common.wait_for(progressed, timeout_s=60.0))


def _stall(
    service: common.Server, llm: FakeLLM, job_id: str, stall_s: float, out: Outcome
) -> tuple[set[str], set[str]]:
    """SIGSTOP the runner for ``stall_s``; returns the calls the fake server had answered just
    before the stop, and those in flight at it: sent, but their result not stored (a runner
    killed then may repeat them)."""
    pid = service.runner_pid()
    if pid is None:
        raise RuntimeError(f"no runner process under {service.proc.pid}")
    before = Calls.of(llm.log())
    os.kill(pid, signal.SIGSTOP)
    at_stall = Calls.of(llm.log())
    rows = common.results(service.client, job_id)
    stored = {prompt(row["index"]) for row in rows if row["status"] in ("succeeded", "failed")}
    in_flight = (at_stall.open | at_stall.answered) - stored
    out.say(f"  SIGSTOP runner {pid}: {len(before.answered)} answered, {len(in_flight)} in flight")
    try:
        time.sleep(stall_s)  # the stall itself is the workload
        out.say(f"  /healthz at the end of the stall: {service.health()}")
    finally:
        _resume(pid, stall_s, out)
    return before.answered, in_flight


def _resume(pid: int, stall_s: float, out: Outcome) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
        out.say(f"  SIGCONT runner {pid} after {stall_s:.0f} s")
    except ProcessLookupError:
        out.say(f"  runner {pid} was gone before SIGCONT (killed by the service)")


def _judge(
    out: Outcome,
    status: dict[str, Any],
    log: list[dict[str, Any]],
    answered: set[str],
    in_flight: set[str],
    kinds: list[str],
    restarts: int,
) -> None:
    seen = Counter(str(e.get("prompt")) for e in log if str(e.get("prompt")).startswith(f"[{TAG}/"))
    duplicated = {text for text, times in seen.items() if times > 1}
    extra = sum(seen[text] - 1 for text in duplicated)
    beyond = duplicated - in_flight
    out.say(f"  LLM calls: {sum(seen.values())} for {len(seen)} prompts; duplicate calls {extra}")
    out.say(
        f"  duplicated prompts: {len(duplicated)}; of calls answered before a stall "
        f"{len(duplicated & answered)}; of calls in flight at one "
        f"{len(duplicated & in_flight)}"
    )
    started = kinds.count("job_started")
    out.say(f"  job_started events: {started}; events by kind {dict(Counter(kinds))}")
    out.say(f"  runner restarts during the probe: {restarts}")
    out.check(
        not beyond, f"no duplicate beyond the {len(in_flight)} calls in flight ({len(beyond)})"
    )
    # A job is started once, even when a restarted runner resumes it.
    out.check(started == 1, f"job_started events: {started} (exactly one)")
    out.check(status["status"] == "completed", "the job completed")
    out.summary = f"{extra} duplicate calls, {len(beyond)} beyond in-flight, {started} job_started"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(__doc__)
    p.add_argument("--items", type=int, default=4_000)
    p.add_argument(
        "--stalls", type=int, default=None, help="stalls one after another: 3, or 1 with --stall-s"
    )
    p.add_argument("--latency-ms", type=float, default=200.0, help="the fake LLM's latency")
    p.add_argument("--lease-s", type=float, default=None, help=f"default {DEFAULT_LEASE_S}")
    p.add_argument("--stall-s", type=float, default=None, help="default: twice the lease")
    p.add_argument(
        "--poll-s", type=float, default=0.2, help="INF_POLL_S: how often the runner claims"
    )
    p.add_argument("--timeout-s", type=float, default=120.0, help="for the job after SIGCONT")
    return p


if __name__ == "__main__":
    sys.exit(common.main(run, build_parser().parse_args()))
