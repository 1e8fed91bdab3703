"""CLI: `python -m bench.fake_llm --host 127.0.0.1 --port 0 [--latency-ms 50 ...]`.

Prints exactly one line, `READY http://HOST:PORT`, once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from .behaviour import Behaviour, BehaviourError, parse_behaviour
from .server import serve


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m bench.fake_llm", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--rpm", type=float, default=None, help="requests-per-minute cap")
    p.add_argument("--rate-window-s", type=float, default=60.0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--timeout-rate", type=float, default=0.0)
    p.add_argument("--malformed-rate", type=float, default=0.0)
    p.add_argument("--max-in-flight", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-log", dest="log", action="store_false", help="keep no request log")
    p.add_argument("--unique-replies", action="store_true", help="number every text reply")
    p.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    return p


def behaviour_from_args(args: argparse.Namespace) -> Behaviour:
    """Behaviour fields from parsed flags."""
    fields = set(Behaviour.model_fields) - {"rules"}
    return parse_behaviour({name: getattr(args, name) for name in fields if hasattr(args, name)})


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _ready(url: str) -> None:
    print(f"READY {url}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT."""
    args = build_parser().parse_args(argv)
    try:
        behaviour = behaviour_from_args(args)
    except BehaviourError as exc:
        print(f"invalid behaviour: {exc}", file=sys.stderr)
        return 2
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(behaviour, args.host, args.port, _ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
