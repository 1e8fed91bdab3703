"""A runner process that also runs the scoring test double.

    python -m tests.support.run_kind_worker

It builds what a service's runner child builds (from ``INF_*`` settings), registers the test
double by importing it, and runs the dispatcher until it is killed.
"""

from __future__ import annotations

import asyncio

import tests.support.run_kinds  # noqa: F401  (registers the scoring kind)
from app.services.runner.dispatcher import RunDispatcher
from app.services.runner.process import ProcessResources
from app.settings import Settings


async def main() -> None:
    resources = ProcessResources.build(Settings())
    dispatcher = RunDispatcher(resources)
    await dispatcher.start()
    print("runner started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
