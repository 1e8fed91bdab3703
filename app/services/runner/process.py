"""The runner in a process of its own, beside the HTTP process that started it.

A runner with thousands of calls in flight keeps its event loop busy: each iteration handles
a whole round of completions, and at full load those rounds take tens of milliseconds. An
HTTP request sharing that loop (or, through the GIL, that process) waits for several of
them. So ``inf-engine serve`` starts the runner in a child process with its own database
pool, rate limiters and model clients; the HTTP process answers requests and sends the child
two kinds of message over a pipe: "new work" and "cancel job X". The child dies with its
parent (``PR_SET_PDEATHSIG`` on Linux, else it notices the parent is gone within a second).

The parent supervises the child: a dead child is restarted with backoff (and the jobs it held
are charged a crash, see :mod:`app.services.runner.crashes`), and a liveness ping answered on the
child's event loop tells a stalled runner from a busy one.

    worker = RunnerProcess(settings, on_death=charge)
    await worker.start()      # returns once the child's runner runs
    worker.notify()
    worker.health             # RunnerHealth("up", restarts=0)
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
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import logs
from app.db.session import create_engine, session_factory
from app.engine import ResourceManager
from app.engine.resources.shared import SharedRateStore
from app.loops import run_loop
from app.services.endpoints import load_endpoints
from app.services.limiting.backends import build_rate_store, close_rate_store, slice_settings
from app.services.observability.health import RunnerHealth
from app.services.observability.live_metrics import process_metrics
from app.services.observability.metrics import ServiceMetrics
from app.services.programs import ProgramCache
from app.services.runner.background import Background
from app.services.runner.calls import watched_clients
from app.services.runner.dispatcher import new_owner
from app.settings import Settings

log = logging.getLogger(__name__)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1
GC_OLDER_THRESHOLD, GC_OLDEST_THRESHOLD = 10, 100


@dataclass
class ProcessResources:
    """What a runner process holds: settings, a database pool, endpoints, compiled graphs."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    resources: ResourceManager
    metrics: ServiceMetrics
    programs: ProgramCache = field(default_factory=ProgramCache)
    rate_store: SharedRateStore | None = None

    @classmethod
    def build(cls, settings: Settings) -> ProcessResources:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        config = load_endpoints(settings)
        store = build_rate_store(settings, sessions, config)
        resources = ResourceManager(
            config,
            client_factory=watched_clients(),
            shared_store=store,
            aging_s=settings.fair_aging_s,
            shared_lease_s=settings.limiter_lease_s,
            shared_slices=slice_settings(settings),
        )
        metrics = process_metrics("runner", resources, engine, store)
        return cls(settings, engine, sessions, resources, metrics, rate_store=store)

    async def close(self) -> None:
        await self.resources.aclose()
        await close_rate_store(self.rate_store)
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

OnDeath = Callable[[str, str], Awaitable[object]]


def restart_delay(deaths: int, base_s: float, max_s: float) -> float:
    """The wait before a restart after ``deaths`` quick deaths in a row: base, 2 x base, ...

    >>> [restart_delay(n, 1.0, 5.0) for n in (1, 2, 3, 4)]
    [1.0, 2.0, 4.0, 5.0]
    """
    return min(base_s * 2.0 ** max(deaths - 1, 0), max_s)


def describe_exit(exitcode: int | None) -> str:
    """``exit code 1``, ``killed by signal SIGKILL``.

    >>> describe_exit(-9)
    'killed by signal SIGKILL'
    """
    if exitcode is None:
        return "exit status unknown"
    if exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        return f"killed by signal {signal.Signals(-exitcode).name}"
    except ValueError:
        return f"killed by signal {-exitcode}"


class _Child:
    """One runner process: its pipe, its lease owner id, the thread that reads its answers."""

    def __init__(self, settings: Settings, owner: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.control, self._child_end = context.Pipe()
        self.process = context.Process(
            target=worker_main,
            args=(settings, self._child_end, owner),
            name="inf-engine-runner",
            daemon=True,
        )
        self.owner = owner
        self.gone = asyncio.Event()
        self.started_at = time.monotonic()
        self.killed_for: str | None = None

    async def start(self) -> None:
        """Start it; return once it reports its runner running, else kill it and raise."""
        self.process.start()
        self._child_end.close()
        try:
            message = await asyncio.to_thread(self._first_message)
        except asyncio.CancelledError:
            self.process.kill()
            raise
        if message != ("ready",):
            self.process.kill()
            raise RuntimeError(f"the runner process did not start: {message[-1]}")

    def _first_message(self) -> tuple[str, ...]:
        if not self.control.poll(START_TIMEOUT_S):
            return ("failed", f"no answer in {START_TIMEOUT_S:.0f}s")
        try:
            message: tuple[str, ...] = self.control.recv()
        except EOFError:
            return ("failed", f"it exited with {self.process.exitcode}; see its log above")
        return message

    def listen(self, on_message: Callable[[tuple[Any, ...]], None]) -> None:
        """Hand every message to ``on_message`` on this loop; set ``gone`` once the pipe
        closes (the process died). A thread reads, so a child stopped halfway through a
        message never blocks the loop."""
        loop = asyncio.get_running_loop()
        reader = threading.Thread(
            target=self._read, args=(loop, on_message), name="runner-pipe", daemon=True
        )
        reader.start()

    def _read(
        self, loop: asyncio.AbstractEventLoop, on_message: Callable[[tuple[Any, ...]], None]
    ) -> None:
        while True:
            try:
                message = self.control.recv()
            except (EOFError, OSError):
                break
            with contextlib.suppress(RuntimeError):  # the loop closed: we are shutting down
                loop.call_soon_threadsafe(on_message, message)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.gone.set)

    def send(self, message: tuple[str | int, ...]) -> None:
        with contextlib.suppress(OSError, ValueError):  # the child is gone: nothing to tell
            self.control.send(message)

    def death(self) -> str:
        """How it ended, for logs and for the jobs it failed."""
        how = describe_exit(self.process.exitcode)
        return how if self.killed_for is None else f"{how} after {self.killed_for}"


class RunnerProcess:
    """The HTTP process's view of its runner child (the ``RunnerHandle`` of the runtime).

    It supervises the child: a child that dies is logged with its exit code or signal,
    ``on_death(owner, how)`` is awaited (the runtime charges the dead child's jobs there), and
    a new child starts after a backoff that doubles with each quick death. Every
    ``runner_ping_s`` it pings the child's event loop; a child that answers neither a ping nor
    a scrape within ``runner_answer_timeout_s`` is ``stalled`` until it answers again, and
    killed (then restarted) after ``runner_stall_kill_s``.
    """

    def __init__(self, settings: Settings, on_death: OnDeath | None = None) -> None:
        self.settings = settings
        self.on_death = on_death
        self.state = "starting"
        self.restarts = 0
        self._child: _Child | None = None
        self._waiting: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self._asked = 0
        self._ping_sent: float | None = None  # when the unanswered ping went out
        self._deaths = 0  # quick deaths in a row
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        """Start the child; return once it reports its runner running, else raise. Then
        supervise it until ``stop``."""
        await self._spawn()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._supervise(), name="runner-supervisor"),
            loop.create_task(self._ping_loop(), name="runner-ping"),
        ]

    async def _spawn(self) -> None:
        child = _Child(self.settings, new_owner())
        await child.start()
        child.listen(self._answered)
        self._child, self._ping_sent, self.state = child, None, "up"

    @property
    def alive(self) -> bool:
        """Running, answering or not (what ``/readyz`` asks): a stalled runner is reported by
        ``health`` and ``inf_runner_up``, but a replica whose runner is busy keeps serving."""
        return self.state in ("up", "stalled")

    @property
    def health(self) -> RunnerHealth:
        return RunnerHealth(self.state, self.restarts)

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.process.pid

    def notify(self) -> None:
        """A job was submitted: let the runner look for work now."""
        self._send(("notify",))

    def cancel_local(self, job_id: str) -> None:
        """A job was cancelled through this process: stop it now, not at the next heartbeat."""
        self._send(("cancel", job_id))

    async def metrics_families(self) -> list[Metric] | None:
        """The runner process's metric families; ``None`` if it is not up or does not answer
        in time (it is then ``stalled``)."""
        answer = await self._ask("metrics")
        if answer is None:
            return None
        families: list[Metric] = answer[2]
        return families

    async def _ask(self, kind: str) -> tuple[Any, ...] | None:
        if self.state != "up":
            return None
        self._asked += 1
        asked = self._asked
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._waiting[asked] = future
        self._send((kind, asked))
        timeout = self.settings.runner_answer_timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            self._stalled(f"no answer to a {kind} request in {timeout}s")
            return None
        finally:
            self._waiting.pop(asked, None)

    def _answered(self, message: tuple[Any, ...]) -> None:
        """A message from the child: its event loop runs."""
        self._ping_sent = None
        if self.state == "stalled":
            log.warning("the runner process (pid %s) answers again", self.pid)
            self.state = "up"
        future = self._waiting.pop(message[1], None) if len(message) > 1 else None
        if future is not None and not future.done():  # a late answer to an earlier ask is dropped
            future.set_result(message)

    def _stalled(self, why: str) -> None:
        if self.state == "up":
            log.warning("the runner process (pid %s) is stalled: %s", self.pid, why)
            self.state = "stalled"

    async def _ping_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.runner_ping_s)
            self._check_answers(time.monotonic())

    def _check_answers(self, now: float) -> None:
        """Ping the child unless a ping is unanswered; report or end a stall."""
        child = self._child
        if child is None or self.state not in ("up", "stalled"):
            return
        if self._ping_sent is None:  # one ping at a time: a stopped child's pipe never fills
            self._ping_sent = now
            self._asked += 1
            child.send(("ping", self._asked))
            return
        silent = now - self._ping_sent
        if silent > self.settings.runner_answer_timeout_s:
            self._stalled(f"no answer to a ping in {silent:.1f}s")
        kill_s = self.settings.runner_stall_kill_s
        if self.state == "stalled" and kill_s and silent > kill_s and child.killed_for is None:
            log.error("the runner process (pid %s) stalled for %.0fs; killing it", self.pid, silent)
            child.killed_for = f"it stalled for {silent:.0f}s"
            child.process.kill()

    async def _supervise(self) -> None:
        while not self._stopping:
            child = self._child
            assert child is not None
            await child.gone.wait()
            if self._stopping:
                return
            await self._after_death(child)
            await self._restart()

    async def _after_death(self, child: _Child) -> None:
        """Log the death and let ``on_death`` charge the child's jobs."""
        self.state = "down"
        await asyncio.to_thread(child.process.join, STOP_TIMEOUT_S)
        child.control.close()
        lived = time.monotonic() - child.started_at
        quick = lived < self.settings.runner_restart_backoff_max_s
        self._deaths = self._deaths + 1 if quick else 1
        delay = self._delay()
        log.error(
            "the runner process (pid %s) died after %.0fs: %s; restarting it in %.1fs",
            child.process.pid,
            lived,
            child.death(),
            delay,
        )
        if self.on_death is not None:
            try:
                await self.on_death(child.owner, child.death())
            except Exception:
                log.exception("recording the runner's death against its jobs failed")

    def _delay(self) -> float:
        settings = self.settings
        return restart_delay(
            self._deaths, settings.runner_restart_backoff_s, settings.runner_restart_backoff_max_s
        )

    async def _restart(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._delay())
            self.state = "restarting"
            try:
                await self._spawn()
            except Exception:
                log.exception("restarting the runner process failed")
                self.state = "down"
                self._deaths += 1
                continue
            self.restarts += 1
            log.warning("the runner process restarted (pid %s)", self.pid)
            return

    async def stop(self) -> None:
        """Stop supervising, ask the child to stop (it leases running jobs back), then wait for
        it to exit."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.state, child = "stopped", self._child
        if child is None:
            return
        child.send(("stop",))
        await asyncio.to_thread(child.process.join, STOP_TIMEOUT_S)
        if child.process.is_alive():
            log.warning("the runner process did not stop in %ss; killing it", STOP_TIMEOUT_S)
            child.process.kill()
        child.control.close()

    def _send(self, message: tuple[str | int, ...]) -> None:
        """Only to a child that answers: one that is stalled or gone reads nothing, and what
        is sent (a wake-up, a cancel the child also sees at its next lease renewal) can wait."""
        if self._child is not None and self.state == "up":
            self._child.send(message)


# -- the child -----------------------------------------------------------------------------


def worker_main(settings: Settings, control: Connection, owner: str) -> None:
    """The runner process: run jobs (leased to ``owner``) until told to stop or the parent
    dies."""
    _die_with_parent()
    os.nice(settings.runner_niceness)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    logs.configure(settings.log_level, settings.log_format)
    try:
        run_loop(_serve(settings, control, owner))
    except Exception as exc:
        with contextlib.suppress(OSError):
            control.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise


async def _serve(settings: Settings, control: Connection, owner: str) -> None:
    host = ProcessResources.build(settings)
    runner = Background(host, owner)
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
    control: Connection, host: ProcessResources, runner: Background, stopped: asyncio.Event
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
        elif message[0] == "ping":  # answered on the loop: a stalled loop does not answer
            control.send(("pong", message[1]))
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
