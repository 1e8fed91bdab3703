"""NUL probe: one item whose parsed output holds a NUL character must fail alone.

The issue's reproduction: a graph with one ``parse_json`` node on input ``x``, and a job of
``--items`` items where item 7 is ``{"x": "\\"a\\\\u0000b\\""}`` (JSON text that decodes to a
string with U+0000, which Postgres cannot store in text or jsonb) and every other item a valid
JSON string. Postgres is where it froze the job; run it there with ``--database-url``.

Criterion: the job reaches a terminal state within ``--timeout-s``, every other item succeeded
with its result stored, and item 7 failed with an error naming the node.

    .venv/bin/python -m bench.probes.nul [--database-url postgresql+asyncpg://postgres@127.0.0.1/x]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.probes import common
from bench.probes.common import Outcome

BAD_INDEX = 7
NODE = "parsed"
GRAPH = {
    "name": "probe-nul",
    "inputs": {"x": {"type": "string"}},
    "nodes": [{"id": NODE, "op": "parse_json", "source": "x"}],
    "outputs": {"value": NODE},
}


def inputs(count: int) -> list[dict[str, str]]:
    """Valid JSON strings, except item 7: a JSON string with an escaped NUL."""
    items = [{"x": json.dumps(f"value {i}")} for i in range(count)]
    items[BAD_INDEX] = {"x": '"a\\u0000b"'}
    return items


def run(args: argparse.Namespace) -> Outcome:
    outcome = Outcome("nul")
    with (
        common.workdir(args.keep_logs) as directory,
        common.database(args.database_url, directory) as url,
    ):
        outcome.say(f"nul on {common.backend_name(url)}, {args.items} items")
        with common.server(url, directory) as service:
            _probe(service, args, outcome)
    return outcome


def _probe(service: common.Server, args: argparse.Namespace, outcome: Outcome) -> None:
    common.upload_graph(service.client, GRAPH).raise_for_status()
    job_id = common.submit_job(service.client, "probe-nul", inputs(args.items))
    status, waited = common.wait_terminal(service.client, job_id, args.timeout_s)
    outcome.say(f"  job: {status['status']} after {waited:.1f} s, counts {status['counts']}")
    if not outcome.check(status["status"] in common.TERMINAL, f"terminal in {args.timeout_s} s"):
        outcome.say(f"  server log tail:\n{service.log_tail(1500)}")
    stored = common.results(service.client, job_id)
    _check_results(outcome, stored, args.items)
    bad = common.item(service.client, job_id, BAD_INDEX)
    error = str(bad.get("error") or "")
    outcome.say(f"  item {BAD_INDEX}: {bad['status']}, error {common.short(error, 300)!r}")
    outcome.check(
        bad["status"] == "failed" and NODE in error, f"item {BAD_INDEX} failed naming node {NODE!r}"
    )
    outcome.summary = (
        f"job {status['status']} after {waited:.1f} s, item {BAD_INDEX} {bad['status']}"
    )


def _check_results(outcome: Outcome, stored: list[dict[str, Any]], count: int) -> None:
    good = [
        row
        for row in stored
        if row["index"] != BAD_INDEX
        and row["status"] == "succeeded"
        and row.get("output") == {"value": f"value {row['index']}"}
    ]
    outcome.say(f"  results: {len(stored)} rows, {len(good)} other items with their output")
    outcome.check(len(good) == count - 1, f"all {count - 1} other items succeeded and are stored")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(__doc__)
    p.add_argument("--items", type=int, default=2_000)
    p.add_argument("--timeout-s", type=float, default=90.0, help="for the job to end")
    return p


if __name__ == "__main__":
    sys.exit(common.main(run, build_parser().parse_args()))
