"""Template-bomb probe: an output that doubles at every node must fail its item, not the runner.

21 template nodes, ``t0 = {x}{x}`` and ``t{i} = {t{i-1}}{t{i-1}}``: on a 1 KiB ``x`` the last
one would be 2 GiB. One job runs it on a single item, and a second, normal job (a small
template on ``--items`` items) runs beside it.

Criterion: the bomb item fails with an error naming the limit, the normal job completes with
every item succeeded, ``/healthz`` shows the runner ``up`` with no restart, and the runner
process is the same one as before (its pid is unchanged).

    .venv/bin/python -m bench.probes.bomb
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.probes import common
from bench.probes.common import Outcome

DEPTH = 21
NORMAL = {
    "name": "probe-normal",
    "inputs": {"x": {"type": "string"}},
    "nodes": [{"id": "greeting", "op": "template", "text": "hello {x}"}],
    "outputs": {"greeting": "greeting"},
}


def bomb_graph(depth: int = DEPTH) -> dict[str, Any]:
    """``t{i}`` is ``{t{i-1}}{t{i-1}}``: the output doubles at every node."""
    nodes = [{"id": "t0", "op": "template", "text": "{x}{x}"}]
    nodes += [
        {"id": f"t{i}", "op": "template", "text": f"{{t{i - 1}}}{{t{i - 1}}}"}
        for i in range(1, depth)
    ]
    return {
        "name": "probe-bomb",
        "inputs": {"x": {"type": "string"}},
        "nodes": nodes,
        "outputs": {"out": nodes[-1]["id"]},
    }


def run(args: argparse.Namespace) -> Outcome:
    outcome = Outcome("bomb")
    with (
        common.workdir(args.keep_logs) as directory,
        common.database(args.database_url, directory) as url,
    ):
        outcome.say(f"bomb on {common.backend_name(url)}")
        with common.server(url, directory) as service:
            _probe(service, args, outcome)
    return outcome


def _probe(service: common.Server, args: argparse.Namespace, outcome: Outcome) -> None:
    client = service.client
    common.upload_graph(client, bomb_graph()).raise_for_status()
    common.upload_graph(client, NORMAL).raise_for_status()
    pid_before, health_before = service.runner_pid(), service.health()
    outcome.say(f"  before: runner pid {pid_before}, /healthz {health_before}")
    bomb_id = common.submit_job(client, "probe-bomb", [{"x": "x" * 1024}])
    normal_id = common.submit_job(
        client, "probe-normal", [{"x": str(i)} for i in range(args.items)]
    )
    bomb, bomb_s = common.wait_terminal(client, bomb_id, args.timeout_s)
    normal, normal_s = common.wait_terminal(client, normal_id, args.timeout_s)
    detail = common.item(client, bomb_id, 0)
    error = str(detail.get("error") or "")
    pid_after, health_after = service.runner_pid(), service.health()
    outcome.say(f"  bomb job: {bomb['status']} after {bomb_s:.1f} s, counts {bomb['counts']}")
    outcome.say(f"  bomb item: {detail['status']}, error {common.short(error, 300)!r}")
    outcome.say(f"  normal job: {normal['status']} after {normal_s:.1f} s, {normal['counts']}")
    outcome.say(f"  after: runner pid {pid_after}, /healthz {health_after}")
    outcome.check(
        detail["status"] == "failed" and "limit" in error.lower(),
        "the bomb item failed naming the limit",
    )
    counts = normal["counts"]
    outcome.check(
        normal["status"] == "completed" and counts["succeeded"] == args.items,
        "the normal job completed, every item succeeded",
    )
    outcome.check(
        health_after.get("runner") == "up"
        and health_after.get("runner_restarts") == health_before.get("runner_restarts"),
        "/healthz: runner up, no restart",
    )
    outcome.check(pid_before is not None and pid_after == pid_before, "runner pid unchanged")
    outcome.summary = f"bomb item {detail['status']}, runner {health_after.get('runner')}"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(__doc__)
    p.add_argument("--items", type=int, default=500, help="items of the normal job")
    p.add_argument("--timeout-s", type=float, default=90.0, help="for each job to end")
    return p


if __name__ == "__main__":
    sys.exit(common.main(run, build_parser().parse_args()))
