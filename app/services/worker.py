"""The job runner in a process of its own, beside the HTTP process that started it.

A runner with thousands of calls in flight keeps its event loop busy: each iteration handles
a whole round of completions, and at full load those rounds take tens of milliseconds. An
HTTP request sharing that loop (or, through the GIL, that process) waits for several of
them. So ``inf-engine serve`` starts the runner in a child process with its own database
pool, rate limiters and model clients; the HTTP process answers requests and sends the child
two kinds of message over a pipe: "new work" and "cancel job X". The child dies with its
parent (``PR_SET_PDEATHSIG`` on Linux, else it notices the parent is gone within a second).

    worker = WorkerProcess(settings)
    await worker.start()      # returns once the child's runner runs
    worker.notify()
    await worker.stop()       # running jobs are leased back
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import logs
from app.db.session import create_engine, session_factory
from app.engine import ResourceManager
from app.loops import run_loop
from app.services.background import Background
from app.services.endpoints import load_endpoints
from app.services.live_metrics import process_metrics
from app.services.metrics import ServiceMetrics
from app.services.programs import ProgramCache
from app.settings import Settings

log = logging.getLogger(__name__)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
METRICS_TIMEOUT_S = 2.0
PR_SET_PDEATHSIG = 1
GC_OLDER_THRESHOLD, GC_OLDEST_THRESHOLD = 10, 100


@dataclass
class RunnerHost:
    """What a runner process holds: settings, a database pool, endpoints, compiled graphs."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    resources: ResourceManager
    metrics: ServiceMetrics
    programs: ProgramCache = field(default_factory=ProgramCache)

    @classmethod
    def build(cls, settings: Settings) -> RunnerHost:
        engine = create_engine(settings.database_url)
        resources = ResourceManager(load_endpoints(settings))
        metrics = process_metrics("runner", resources, engine)
        return cls(settings, engine, session_factory(engine), resources, metrics)

    async def close(self) -> None:
        await self.resources.aclose()
        await self.engine.dispose()


def settle_heap(young_threshold: int) -> None:
    """Tune the cyclic garbage collector for a long-running process with a large heap.

    Everything built at start-up (modules, the app, mappers) is frozen out of the collector's
    reach; young collections run every ``young_threshold`` allocations rather than every 700,
    full ones ten times less often than by default. Untuned, full collections rescanning the
    start-up heap paused a busy runner for 50-180 ms each and took a third of its CPU time.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, GC_OLDER_THRESHOLD, GC_OLDEST_THRESHOLD)


# -- the parent's handle -------------------------------------------------------------------


class WorkerProcess:
    """The HTTP process's view of its runner child (the ``Runner`` of the runtime)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        context = multiprocessing.get_context("spawn")
        self._control, child_end = context.Pipe()
        self._process = context.Process(
            target=worker_main, args=(settings, child_end), name="inf-engine-runner", daemon=True
        )
        self._child_end = child_end
        self._asked = 0
        self._asking = asyncio.Lock()

    async def start(self) -> None:
        """Start the child; return once it reports its runner running, else raise."""
        self._process.start()
        self._child_end.close()
        message = await asyncio.to_thread(self._first_message)
        if message != ("ready",):
            self._process.kill()
            raise RuntimeError(f"the runner process did not start: {message[-1]}")

    def _first_message(self) -> tuple[str, ...]:
        if not self._control.poll(START_TIMEOUT_S):
            return ("failed", f"no answer in {START_TIMEOUT_S:.0f}s")
        try:
            message: tuple[str, ...] = self._control.recv()
        except EOFError:
            return ("failed", f"it exited with {self._process.exitcode}; see its log above")
        return message

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def notify(self) -> None:
        """A job was submitted: let the runner look for work now."""
        self._send(("notify",))

    def cancel_local(self, job_id: str) -> None:
        """A job was cancelled through this process: stop it now, not at the next heartbeat."""
        self._send(("cancel", job_id))

    async def metrics_families(self) -> list[Metric] | None:
        """The runner process's metric families; ``None`` if it does not answer."""
        async with self._asking:
            self._asked += 1
            self._send(("metrics", self._asked))
            return await asyncio.to_thread(self._metrics_reply, self._asked)

    def _metrics_reply(self, asked: int) -> list[Metric] | None:
        deadline = time.monotonic() + METRICS_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0 and self._control.poll(left):
            try:
                message = self._control.recv()
            except (EOFError, OSError):
                return None
            if message[:2] == ("metrics", asked):  # a late answer to an earlier ask is dropped
                families: list[Metric] = message[2]
                return families
        return None

    async def stop(self) -> None:
        """Ask the child to stop (it leases running jobs back), then wait for it to exit."""
        self._send(("stop",))
        await asyncio.to_thread(self._process.join, STOP_TIMEOUT_S)
        if self._process.is_alive():
            log.warning("the runner process did not stop in %ss; killing it", STOP_TIMEOUT_S)
            self._process.kill()
        self._control.close()

    def _send(self, message: tuple[str | int, ...]) -> None:
        with contextlib.suppress(OSError, ValueError):  # the child is gone: nothing to tell
            self._control.send(message)


# -- the child -----------------------------------------------------------------------------


def worker_main(settings: Settings, control: Connection) -> None:
    """The runner process: run jobs until told to stop or the parent dies."""
    _die_with_parent()
    os.nice(settings.runner_niceness)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    logs.configure(settings.log_level, settings.log_format)
    try:
        run_loop(_serve(settings, control))
    except Exception as exc:
        with contextlib.suppress(OSError):
            control.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise


async def _serve(settings: Settings, control: Connection) -> None:
    host = RunnerHost.build(settings)
    runner = Background(host)
    stopped = asyncio.Event()
    try:
        await runner.start()
        settle_heap(settings.gc_young_threshold)
        _listen(control, host, runner, stopped)
        control.send(("ready",))
        await _until_stopped(stopped)
    finally:
        await runner.stop()
        await host.close()


def _listen(
    control: Connection, host: RunnerHost, runner: Background, stopped: asyncio.Event
) -> None:
    def on_message() -> None:
        try:
            message = control.recv()
        except (EOFError, OSError):
            message = ("stop",)  # the parent closed the pipe or died
        if message[0] == "notify":
            runner.notify()
        elif message[0] == "cancel":
            runner.cancel_local(message[1])
        elif message[0] == "metrics":
            control.send(("metrics", message[1], host.metrics.families()))
        else:
            asyncio.get_running_loop().remove_reader(control.fileno())
            stopped.set()

    asyncio.get_running_loop().add_reader(control.fileno(), on_message)


async def _until_stopped(stopped: asyncio.Event) -> None:
    parent = os.getppid()
    while not stopped.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stopped.wait()
        if os.getppid() != parent:
            log.warning("the service process is gone; the runner stops")
            return


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL when the parent dies, as a crash would have."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
