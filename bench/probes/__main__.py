"""``python -m bench.probes``: every probe with its defaults, then a summary table.

Exits non-zero if any probe's criterion fails (or a probe could not run).

    .venv/bin/python -m bench.probes [--only redos,nul] [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from types import ModuleType

from bench.probes import bomb, common, nul, redos, sse, stall
from bench.probes.common import Outcome

PROBES: dict[str, ModuleType] = {
    "redos": redos,
    "nul": nul,
    "bomb": bomb,
    "stall": stall,
    "sse": sse,
}


def run_one(name: str, shared: list[str]) -> Outcome:
    """One probe with its own defaults and the shared options; a crash is a FAIL."""
    module = PROBES[name]
    build: Callable[[], argparse.ArgumentParser] = module.build_parser
    try:
        outcome: Outcome = module.run(build().parse_args(shared))
    except Exception as exc:  # reported as that probe's failure
        traceback.print_exc()
        return Outcome(name, passed=False, summary=f"could not run: {exc!r}"[:200])
    return outcome


def table(outcomes: list[Outcome]) -> str:
    width = max(len(outcome.name) for outcome in outcomes)
    rows = [f"{'probe':<{width}}  result  summary", f"{'-' * width}  ------  -------"]
    rows += [
        f"{o.name:<{width}}  {'PASS' if o.passed else 'FAIL':<6}  {o.summary}" for o in outcomes
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__)
    p.add_argument("--only", default=",".join(PROBES), help="comma-separated probe names")
    args = p.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PROBES))
    if unknown:
        p.error(f"unknown probes {unknown}; known: {', '.join(PROBES)}")
    shared = ["--database-url", args.database_url] if args.database_url else []
    shared += ["--keep-logs"] if args.keep_logs else []
    outcomes = []
    for name in names:
        print(f"\n== {name}", flush=True)
        outcomes.append(run_one(name, shared))
    print("\n" + table(outcomes))
    return 0 if all(outcome.passed for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
