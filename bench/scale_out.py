"""Scale-out benchmark: 1, 2 and 4 ``inf-engine worker`` processes on one Postgres.

Against the fake server at 50 ms, each worker runs one job of one-call items with a small
runner window (``--window`` items in flight), so a lone worker is limited by latency (about
``window / latency`` calls a second). The alias has a shared limit (``--limit-rps``, as
``rpm``) between two and four workers' worth, and optionally ``--max-concurrent``. For each
limiter backend (``local``: each process its own in-memory limiter; ``postgres``: the shared
store; ``redis`` on request) and each worker count, one phase:

1. the workers start on a fresh endpoints file (its model name marks the phase at the
   server), each gets a job through an API process (``serve --no-runner``) and runs it;
2. after ``--warmup-s``, for ``--measure-s``: calls answered by the fake server, the CPU of
   the workers (each supervisor and its runner child, user + system from ``/proc``), the CPU
   of the Postgres backends serving the bench database (from ``pg_stat_activity`` pids), and
   the database round trips (request-answer turns counted by a TCP proxy in this process,
   between the workers and Postgres);
3. the busiest 1-s and 60-s windows at the server, to check the shared limit and the burst.

Figures: calls/s, the ratio to ``n x`` the one-worker rate (linear scaling), the ratio to
the limit, worker CPU ms per call, Postgres CPU ms per call, database round trips per call.
The limiter's cost is the shared backend's worker CPU per call over the local one's, and its
round trips per call the difference of the two (the runner's own writes cancel out). JSON
goes to ``bench/results/scale_out.json``.

    TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.scale_out
    .venv/bin/python -m bench.scale_out --workers 1,2,4 --backends local,postgres,redis \\
        --limit-rps 200 --window 4 --measure-s 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import make_url

from app.settings import Settings
from bench.databases import postgres_database
from bench.fake_llm.handle import FakeLLM
from bench.service_bench import free_port, postgres_cpu_s, process_cpu_s

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
READY_LINE = "inf-engine worker running jobs"
READY_TIMEOUT_S = 240.0
FILLER = "Electric cars charge from the grid while hydrogen cars refuel at a station. " * 2
SCALING_TARGET = 0.9  # within 10 % of linear
CPU_TARGET = 1.05  # the shared limiter adds at most 5 % CPU per call

__all__ = ["RoundTrips", "main"]


# -- round trips -----------------------------------------------------------------------------


class RoundTrips:
    """A TCP proxy to Postgres that counts request-answer turns on every connection.

    A turn starts when the client sends after the server last answered (or first): one
    pipelined Parse/Bind/Execute/Sync is one turn, ``BEGIN``, the statement and ``COMMIT``
    are three.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.turns = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RoundTrips:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        answered = [True]
        await asyncio.gather(
            self._pipe(reader, up_writer, answered, counts=True),
            self._pipe(up_reader, writer, answered, counts=False),
            return_exceptions=True,
        )

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        answered: list[bool],
        counts: bool,
    ) -> None:
        try:
            while chunk := await source.read(65536):
                if counts and answered[0]:
                    self.turns += 1
                answered[0] = not counts
                sink.write(chunk)
                await sink.drain()
        finally:
            with contextlib.suppress(Exception):
                sink.close()


# -- processes -------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> list[int]:
        """The process and its children (a worker's runner)."""
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        found = children.read_text().split() if children.exists() else []
        return [self.popen.pid, *map(int, found)]

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += process_cpu_s(pid)
        return total

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def launch(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Proc:
    log = workdir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "app", *command],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Proc(name, popen, log)


def wait_until(probe: Any, what: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def wait_worker(worker: Proc) -> None:
    def ready() -> bool:
        if worker.popen.poll() is not None:
            raise SystemExit(f"{worker.name} died:\n{worker.log.read_text()[-3000:]}")
        return READY_LINE in worker.log.read_text(errors="replace")

    wait_until(ready, f"{worker.name} to start")


def start_api(env: dict[str, str], workdir: Path) -> tuple[Proc, str]:
    port = free_port()
    api = launch("api", ["serve", "--open", "--no-runner", "--port", str(port)], env, workdir)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if api.popen.poll() is not None:
            raise SystemExit(f"the API died:\n{api.log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        return False

    wait_until(ready, "the API")
    return api, url


# -- the database ----------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database(server_url: str) -> Iterator[str]:
    from app.db import migrate

    with postgres_database(server_url, "inf_scale") as url:
        migrate.upgrade(url)
        yield url


def through(url: str, proxy: RoundTrips) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


def backend_pids(url: str) -> list[int]:
    """The Postgres backends connected to the bench database (read with ``psql``-free SQL)."""

    async def read() -> list[int]:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid()"
                    )
                )
                return [int(pid) for (pid,) in rows]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def backends_cpu_s(pids: list[int]) -> dict[int, float]:
    found: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            found[pid] = process_cpu_s(pid)
    return found


# -- one phase -------------------------------------------------------------------------------


@dataclass
class Phase:
    backend: str
    workers: int
    calls: int = 0
    seconds: float = 0.0
    worker_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    postgres_all_cpu_s: float = 0.0
    round_trips: int = 0
    busiest_1s: float = 0.0
    busiest_60s: float = 0.0
    statuses: dict[str, int] | None = None

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def per_call(self, value: float, scale: float = 1.0) -> float:
        return scale * value / self.calls if self.calls else 0.0


def endpoints(path: Path, base_url: str, model: str, args: argparse.Namespace) -> Path:
    alias: dict[str, Any] = {
        "provider": "openai-compatible",
        "base_url": base_url,
        "model": model,
        "rpm": args.limit_rps * 60,
        "timeout_s": 30,
    }
    if args.max_concurrent:
        alias["max_concurrent"] = args.max_concurrent
    path.write_text(yaml.safe_dump({"endpoints": {"bench": alias}}))
    return path


def graph() -> dict[str, Any]:
    return {
        "name": "scale-out",
        "inputs": {"doc": {"type": "string"}},
        "nodes": [
            {"id": "facts", "op": "llm", "alias": "bench", "system": "Facts.", "prompt": "{doc}"}
        ],
        "outputs": {"facts": "facts"},
    }


def worker_env(db_url: str, path: Path, backend: str, args: argparse.Namespace) -> dict[str, str]:
    return {
        "INF_DATABASE_URL": db_url,
        "INF_ENDPOINTS_FILE": str(path),
        "INF_AUTH_MODE": "open",
        "INF_LIMITER_BACKEND": backend,
        "INF_RUNNER_WINDOW": str(args.window),
        "INF_RUNNER_MAX_JOBS": "1",
        "INF_POLL_S": "0.2",
        "INF_LOG_LEVEL": "WARNING",
        "INF_LIMITER_SLICE_S": str(args.slice_s),
        "INF_LIMITER_SLOT_HOLD_S": str(args.slot_hold_s),
    }


def run_phase(backend: str, count: int, ctx: dict[str, Any], args: argparse.Namespace) -> Phase:
    fake: FakeLLM = ctx["fake"]
    workdir: Path = ctx["workdir"]
    tag = f"{backend}-{count}"
    path = endpoints(workdir / f"{tag}.yaml", fake.base_url, tag, args)
    env = worker_env(through(ctx["db"], ctx["proxy"]), path, backend, args)
    workers = [launch(f"{tag}-w{i}", ["worker"], env, workdir) for i in range(count)]
    try:
        for worker in workers:
            wait_worker(worker)
        jobs = submit_jobs(ctx, count, args)
        phase = measure(Phase(backend, count), workers, ctx, args)
        cancel(ctx["api_url"], jobs)
    finally:
        for worker in workers:
            worker.stop()
    return phase


def submit_jobs(ctx: dict[str, Any], count: int, args: argparse.Namespace) -> list[str]:
    items = int(args.window / (args.latency_ms / 1000) * (args.warmup_s + args.measure_s) * 2)
    inputs = [{"doc": f"[{i}] {FILLER}"} for i in range(items)]
    jobs = []
    with httpx.Client(base_url=ctx["api_url"], timeout=120) as client:
        for _ in range(count):
            body = {"graph_id": ctx["graph_id"], "inputs": inputs}
            response = client.post("/v1/jobs", json=body)
            response.raise_for_status()
            jobs.append(response.json()["id"])
    return jobs


def cancel(api_url: str, jobs: list[str]) -> None:
    with httpx.Client(base_url=api_url, timeout=60) as client:
        for job in jobs:
            client.post(f"/v1/jobs/{job}/cancel")


def measure(
    phase: Phase, workers: list[Proc], ctx: dict[str, Any], args: argparse.Namespace
) -> Phase:
    fake: FakeLLM = ctx["fake"]
    proxy: RoundTrips = ctx["proxy"]
    time.sleep(args.warmup_s)
    fake.reset()
    pids = backend_pids(ctx["db"])
    before = _sample(workers, pids, fake, proxy)
    time.sleep(args.measure_s)
    after = _sample(workers, backend_pids(ctx["db"]), fake, proxy)
    phase.seconds = after["t"] - before["t"]
    phase.calls = after["calls"] - before["calls"]
    phase.worker_cpu_s = after["workers"] - before["workers"]
    phase.postgres_cpu_s = sum(
        cpu - before["backends"].get(pid, 0.0) for pid, cpu in after["backends"].items()
    )
    phase.postgres_all_cpu_s = after["postgres"] - before["postgres"]
    phase.round_trips = after["turns"] - before["turns"]
    phase.busiest_1s = fake.window(1.0)["max_requests_in_window"]
    phase.busiest_60s = fake.window(60.0)["max_requests_in_window"]
    phase.statuses = fake.stats()["by_status"]
    return phase


def _sample(
    workers: list[Proc], pids: list[int], fake: FakeLLM, proxy: RoundTrips
) -> dict[str, Any]:
    return {
        "t": time.monotonic(),
        "calls": int(fake.stats()["requests"]),
        "workers": sum(worker.cpu_s() for worker in workers),
        "backends": backends_cpu_s(pids),
        "postgres": postgres_cpu_s(),
        "turns": proxy.turns,
    }


# -- figures ---------------------------------------------------------------------------------


def figures(phases: list[Phase], args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    for phase in phases:
        one = next(p for p in phases if p.backend == phase.backend and p.workers == 1)
        local = next(
            (p for p in phases if p.backend == "local" and p.workers == phase.workers), None
        )
        ideal = min(one.rate * phase.workers, args.limit_rps)
        row = asdict(phase) | {
            "calls_per_s": round(phase.rate, 1),
            "vs_linear": round(phase.rate / (one.rate * phase.workers), 3),
            "vs_ideal": round(phase.rate / ideal, 3),
            "vs_limit": round(phase.rate / args.limit_rps, 3),
            "worker_cpu_ms_per_call": round(phase.per_call(phase.worker_cpu_s, 1000), 3),
            "postgres_cpu_ms_per_call": round(phase.per_call(phase.postgres_cpu_s, 1000), 3),
            "round_trips_per_call": round(phase.per_call(phase.round_trips), 2),
            "overshoot_bound": overshoot_bound(phase, args),
        }
        if local is not None and local.calls:
            row["cpu_vs_local"] = round(
                phase.per_call(phase.worker_cpu_s) / local.per_call(local.worker_cpu_s), 3
            )
            row["limiter_round_trips_per_call"] = round(
                phase.per_call(phase.round_trips) - local.per_call(local.round_trips), 2
            )
        rows.append(row)
    return {"settings": vars(args), "phases": rows}


def overshoot_bound(phase: Phase, args: argparse.Namespace) -> int:
    """Requests the provider may see beyond the GCRA's bound: one slice per process."""
    if phase.backend == "local":
        return 0
    return phase.workers * max(1, math.floor(args.limit_rps * args.slice_s))


def report(result: dict[str, Any]) -> None:
    head = (
        "backend", "workers", "calls/s", "vs n*1", "vs ideal", "vs limit", "busiest 1s",
        "cpu ms/call", "vs local", "pg ms/call", "db rt/call", "limiter rt/call", "overshoot",
    )  # fmt: skip
    print(" | ".join(head))
    for r in result["phases"]:
        cells = (
            r["backend"], r["workers"], r["calls_per_s"], r["vs_linear"], r["vs_ideal"],
            r["vs_limit"], r["busiest_1s"], r["worker_cpu_ms_per_call"],
            r.get("cpu_vs_local", "-"), r["postgres_cpu_ms_per_call"],
            r["round_trips_per_call"], r.get("limiter_round_trips_per_call", "-"),
            r["overshoot_bound"],
        )  # fmt: skip
        print(" | ".join(map(str, cells)))


def write(result: dict[str, Any], out: str) -> None:
    """The figures so far (written after each phase: a long run keeps what it measured)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__)
    p.add_argument("--postgres-url", default=os.environ.get("TEST_DATABASE_URL"))
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--backends", default="local,postgres")
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--window", type=int, default=4, help="items in flight per worker")
    p.add_argument("--limit-rps", type=float, default=200.0, help="the alias's shared limit")
    p.add_argument("--max-concurrent", type=int, default=0, help="0: no concurrency cap")
    p.add_argument("--slice-s", type=float, default=Settings().limiter_slice_s)
    p.add_argument("--slot-hold-s", type=float, default=Settings().limiter_slot_hold_s)
    p.add_argument("--warmup-s", type=float, default=6.0)
    p.add_argument("--measure-s", type=float, default=20.0)
    p.add_argument("--out", default=str(RESULTS / "scale_out.json"))
    args = p.parse_args(argv)
    if not args.postgres_url:
        p.error("needs --postgres-url or TEST_DATABASE_URL")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    phases: list[Phase] = []
    server = make_url(args.postgres_url)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(args.postgres_url) as db,
        FakeLLM(latency_ms=args.latency_ms) as fake,
    ):
        workdir = Path(tmp)
        proxy = RoundTrips(server.host or "127.0.0.1", server.port or 5432).start()
        api_env = worker_env(
            db, endpoints(workdir / "api.yaml", fake.base_url, "api", args), "local", args
        )
        api, api_url = start_api(api_env, workdir)
        try:
            graph_id = httpx.post(f"{api_url}/v1/graphs", json=graph()).json()["id"]
            ctx = {"fake": fake, "workdir": workdir, "db": db, "proxy": proxy,
                   "api_url": api_url, "graph_id": graph_id}  # fmt: skip
            for count in counts:
                for backend in args.backends.split(","):
                    phases.append(run_phase(backend, count, ctx, args))
                    print(f"{backend} x{count}: {phases[-1].rate:.1f} calls/s", file=sys.stderr)
                    write(figures(phases, args), args.out)
        finally:
            api.stop()
    result = figures(phases, args)
    write(result, args.out)
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
