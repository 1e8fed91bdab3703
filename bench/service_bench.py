"""Service benchmark: one extract-and-compare job through the HTTP API, beside the engine alone.

In one invocation, against the fake server (50 ms latency, pinned to core 1):

1. the engine-only benchmark of the same workload (``bench.engine_bench``'s engine client:
   three calls per item, two on the critical path, ``max_concurrent`` C), pinned to core 0;
2. for each database (a SQLite file; Postgres on a fresh database when ``TEST_DATABASE_URL``
   or ``--postgres-url`` names a server), the service in a subprocess pinned to core 0 with
   the endpoint at ``max_concurrent`` C: the graph is uploaded, an N-item job submitted as a
   JSONL upload, and ``GET /v1/jobs/{id}`` polled every 25 ms (each poll timed) until the
   job completes. Each poll also samples the fake server's calls in flight; every second the
   service's own ``/metrics`` give the result writer's queue and the rows it has written.

The service subprocess is ``create_app(Settings())`` under ``uvicorn.run`` exactly as
``python -m app serve`` runs it (its job runner in a child process, pinned to the same core),
plus one read-only route, ``GET /_bench/stats``, with the HTTP event loop's lag.

Figures per database: wall time (submit -> completed, as the client sees it), the ideal bound
``max(ceil(3N / C), 2) x latency``, efficiency (ideal / wall), the service's CPU seconds per
model call (HTTP and runner processes, user + system from ``/proc``), node results stored per
second, poll latency p50 / p99, the result writer's queue (the most rows it ever held, from
``inf_result_queue_peak_rows``: a short queue means writes never held the job back) and
ratios to the engine-only run. Targets: wall <= 1.25 x engine-only on Postgres, poll p99
<= 20 ms. JSON goes to ``bench/results/service_bench.json``.

The polling client runs at raised priority (nice -10, when allowed): on a 2-core machine it
shares a core with the fake server, and its own wait for that core is not the service's
latency. A real client polls from another machine.

    .venv/bin/python -m bench.service_bench
    .venv/bin/python -m bench.service_bench --items 10000 --concurrency 256 \\
        --databases sqlite,postgres --postgres-url postgresql+asyncpg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request

from bench.databases import postgres_database
from bench.engine_bench import COMPARE, EXTRACT, Measurement, documents, run_client_process
from bench.fake_llm.handle import FakeLLM

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# 40 polls a second: about 300 during a job, so the p99 is a percentile and not the slowest
# of ~80 polls, and the service serves as many status requests as 40 dashboards would.
POLL_INTERVAL_S = 0.025
METRICS_INTERVAL_S = 1.0
READY_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 600.0
TERMINAL = ("completed", "failed", "cancelled")
TARGET_WALL_VS_ENGINE = 1.25  # on Postgres
TARGET_POLL_P99_MS = 20.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

GRAPH = {
    "name": "bench-extract-and-compare",
    "description": "bench.engine_bench's workload: two extractions, then one comparison.",
    "inputs": {"doc1": {"type": "string"}, "doc2": {"type": "string"}},
    "nodes": [
        {"id": "facts1", "op": "llm", "alias": "fast", "system": EXTRACT, "prompt": "{doc1}"},
        {"id": "facts2", "op": "llm", "alias": "fast", "system": EXTRACT, "prompt": "{doc2}"},
        {
            "id": "compare",
            "op": "llm",
            "alias": "fast",
            "system": COMPARE,
            "prompt": "Compare:\n{facts1}\n\nvs:\n{facts2}",
        },
    ],
    "outputs": {"comparison": "compare"},
}


# -- the service subprocess ----------------------------------------------------------------


def serve(port: int, cpu: int, profile: str | None = None) -> None:
    """``python -m app serve`` (settings from ``INF_*``) plus ``GET /_bench/stats``; with
    ``profile``, under cProfile, written to that path by ``POST /_bench/profile``."""
    os.sched_setaffinity(0, {cpu})
    from app.api.app import create_app
    from app.api.app import serve as serve_app
    from app.settings import Settings

    settings = Settings(port=port)
    app = create_app(settings)
    app.add_api_route("/_bench/stats", bench_stats, methods=["GET"], include_in_schema=False)
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        app.add_api_route("/_bench/profile", dump_profile(profiler, profile), methods=["POST"])
        profiler.enable()
    serve_app(settings, app)


def dump_profile(profiler: cProfile.Profile, path: str) -> Any:
    """A route that writes the profile so far to ``path`` (a graceful exit is not relied on)."""

    async def dump() -> dict[str, str]:
        profiler.disable()
        profiler.dump_stats(path)
        profiler.enable()
        return {"written": path}

    return dump


class LoopLag:
    """How late a 10 ms sleep wakes up on the service's event loop, sampled from the first
    ``/_bench/stats`` request on: the wait any request's every ``await`` may see."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags_ms.append((time.perf_counter() - started - 0.01) * 1000)

    def summary(self) -> dict[str, float]:
        lags = self.lags_ms or [0.0]
        return {"p50": statistics.median(lags), "p99": percentile(lags, 0.99), "max": max(lags)}


LOOP_LAG = LoopLag()


async def bench_stats(request: Request) -> dict[str, Any]:
    """``GET /_bench/stats``: the result writer's statistics and queue, and the HTTP loop's lag."""
    LOOP_LAG.start()
    return {"loop_lag_ms": LOOP_LAG.summary()}


@dataclass
class ServiceProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def cpu_s(self) -> float:
        """The HTTP process and its runner child together."""
        return sum(process_cpu_s(pid) for pid in (self.proc.pid, *child_pids(self.proc.pid)))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a short grace period."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def service_process(
    env: dict[str, str], cpu: int, log_path: Path, profile: Path | None = None
) -> Iterator[ServiceProcess]:
    """The service on a free loopback port, pinned to ``cpu``; stopped when the block ends."""
    port = free_port()
    command = [sys.executable, "-m", "bench.service_bench", "--serve", str(port), "--cpu", str(cpu)]
    if profile is not None:
        command += ["--profile-to", str(profile)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    service = ServiceProcess(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_ready(service)
        yield service
    finally:
        service.stop()


def wait_ready(service: ServiceProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(base_url=service.url) as client:
        while time.monotonic() < deadline:
            if service.proc.poll() is not None:
                raise RuntimeError(f"the service exited:\n{service.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"the service was not ready in {READY_TIMEOUT_S}s")


@contextlib.contextmanager
def raised_priority(niceness: int = -10) -> Iterator[None]:
    """This thread at a higher priority (where permitted): the polling client stands for a
    client on another machine, whose wait for a CPU is not the service's latency."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except PermissionError:
        print("could not raise the poller's priority; poll latency includes its waits")
    try:
        yield
    finally:
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, 0, 0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (the service's runner process)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


def postgres_cpu_s() -> float:
    """CPU seconds of every ``postgres`` process on this machine (the database's share)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            content = stat.read_text()
            if content.split("(", 1)[1].startswith("postgres)"):
                total += process_cpu_s(int(stat.parent.name))
    return total


# -- databases -----------------------------------------------------------------------------


@dataclass
class Database:
    name: str
    url: str


@contextlib.contextmanager
def database(name: str, workdir: Path, postgres_server: str | None) -> Iterator[Database]:
    """A fresh SQLite file, or a fresh Postgres database (dropped afterwards)."""
    if name == "sqlite":
        yield Database(name, f"sqlite+aiosqlite:///{workdir / 'bench.sqlite'}")
        return
    if postgres_server is None:
        raise SystemExit("postgres needs TEST_DATABASE_URL or --postgres-url")
    with postgres_database(postgres_server, "inf_bench") as url:
        yield Database(name, url)


# -- one service run -----------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the submission started
    poll_ms: float
    succeeded: int
    in_flight: int  # calls the fake server is holding
    queued_rows: int | None = None  # the result writer's queue (every second)
    written_rows: int | None = None  # rows written by result batches so far (every second)


@dataclass
class Run:
    database: str
    items: int
    concurrency: int
    latency_s: float
    submit_s: float = 0.0
    wall_s: float = 0.0
    server_wall_s: float = 0.0
    calls: int = 0
    failed_items: int = 0
    service_cpu_s: float = 0.0
    database_cpu_s: float | None = None
    loop_lag_ms: dict[str, float] = field(default_factory=dict)
    queue_peak_rows: int = 0
    samples: list[Sample] = field(default_factory=list)


def jsonl(items: int) -> bytes:
    lines = (
        json.dumps(dict(zip(("doc1", "doc2"), documents(i), strict=True))) for i in range(items)
    )
    return ("\n".join(lines) + "\n").encode()


def service_env(db: Database, endpoints: Path) -> dict[str, str]:
    return {
        "INF_DATABASE_URL": db.url,
        "INF_ENDPOINTS_FILE": str(endpoints),
        "INF_AUTH_MODE": "open",
    }


def endpoints_yaml(path: Path, base_url: str, concurrency: int) -> Path:
    alias = {
        "provider": "openai-compatible",
        "model": "m",
        "base_url": base_url,
        "max_concurrent": concurrency,
    }
    path.write_text(yaml.safe_dump({"endpoints": {"fast": alias}}))
    return path


def run_service(db: Database, fake: FakeLLM, args: argparse.Namespace, workdir: Path) -> Run:
    endpoints = endpoints_yaml(workdir / "endpoints.yaml", fake.base_url, args.concurrency)
    log_path = workdir / f"service-{db.name}.log"
    profile = RESULTS / f"service_bench_{db.name}.prof" if args.profile else None
    env = service_env(db, endpoints)
    with service_process(env, args.client_cpu, log_path, profile) as service:
        fake.reset()
        run = Run(db.name, args.items, args.concurrency, args.latency_ms / 1000)
        with raised_priority():
            asyncio.run(drive(service, db, fake.root_url, run))
        run.calls = int(fake.stats()["requests"])
        if profile is not None:
            httpx.post(f"{service.url}/_bench/profile", timeout=60).raise_for_status()
            print(f"profile of the service: {profile}", file=sys.stderr)
    return run


async def drive(service: ServiceProcess, db: Database, fake_url: str, run: Run) -> None:
    """Upload, submit, poll until done; fill ``run``."""
    async with (
        httpx.AsyncClient(base_url=service.url, timeout=120) as client,
        httpx.AsyncClient(base_url=fake_url, timeout=10) as fake,
    ):
        response = await client.post("/v1/graphs", json=GRAPH)
        response.raise_for_status()
        graph_id = response.json()["id"]
        await client.get("/_bench/stats")  # starts sampling the HTTP loop's lag
        cpu_before, db_cpu_before = service.cpu_s(), _db_cpu(db)
        started = time.perf_counter()
        job = await submit(client, graph_id, run.items)
        run.submit_s = time.perf_counter() - started
        final = await watch(client, fake, job["id"], started, run)
        run.wall_s = run.samples[-1].t
        run.service_cpu_s = service.cpu_s() - cpu_before
        if db_cpu_before is not None:
            run.database_cpu_s = postgres_cpu_s() - db_cpu_before
        run.loop_lag_ms = (await client.get("/_bench/stats")).json()["loop_lag_ms"]
        run.queue_peak_rows = int((await writer_figures(client))["inf_result_queue_peak_rows"])
    run.server_wall_s = (_when(final["finished_at"]) - _when(final["created_at"])).total_seconds()
    run.failed_items = final["counts"]["failed"]
    if final["status"] != "completed":
        raise RuntimeError(f"the job ended {final['status']}: {final.get('error')}")


def _db_cpu(db: Database) -> float | None:
    return postgres_cpu_s() if db.name == "postgres" else None


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def submit(client: httpx.AsyncClient, graph_id: str, items: int) -> dict[str, Any]:
    files = {"inputs": ("inputs.jsonl", jsonl(items), "application/x-ndjson")}
    response = await client.post("/v1/jobs", data={"graph_id": graph_id}, files=files)
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


WRITER_FAMILIES = (
    "inf_result_queue_rows",
    "inf_result_queue_peak_rows",
    "inf_checkpoint_rows_total",
)


async def writer_figures(client: httpx.AsyncClient) -> dict[str, float]:
    """The result writer's queue, its peak and the rows written, from the service's /metrics."""
    text = (await client.get("/metrics")).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in WRITER_FAMILIES:
                found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return found


async def watch(
    client: httpx.AsyncClient, fake: httpx.AsyncClient, job_id: str, started: float, run: Run
) -> dict[str, Any]:
    """Poll the job every ``POLL_INTERVAL_S`` (timing each status request) until it ends; read
    the writer's figures every ``METRICS_INTERVAL_S``."""
    deadline, next_metrics = started + JOB_TIMEOUT_S, started
    while time.perf_counter() < deadline:
        tick = time.perf_counter()
        status = (await client.get(f"/v1/jobs/{job_id}")).json()
        polled = time.perf_counter()
        stats = (await fake.get("/_stats")).json()
        sample = Sample(polled - started, (polled - tick) * 1000, status["counts"]["succeeded"],
                        stats["in_flight"])  # fmt: skip
        if polled >= next_metrics:
            figures = await writer_figures(client)
            sample.queued_rows = int(figures["inf_result_queue_rows"])
            sample.written_rows = int(figures["inf_checkpoint_rows_total"])
            next_metrics = polled + METRICS_INTERVAL_S
        run.samples.append(sample)
        if status["status"] in TERMINAL:
            return dict(status)
        await asyncio.sleep(max(0.0, POLL_INTERVAL_S - (time.perf_counter() - tick)))
    raise TimeoutError(f"the job did not finish in {JOB_TIMEOUT_S}s")


# -- figures -------------------------------------------------------------------------------


def ideal_bound(items: int, concurrency: int, latency_s: float) -> float:
    return max(math.ceil(3 * items / concurrency), 2) * latency_s


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def peak_rate(samples: list[Sample]) -> float:
    """The highest rate of rows written (node results, items, events) between two successive
    metrics samples."""
    timed = [(s.t, s.written_rows) for s in samples if s.written_rows is not None]
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(timed) if b[0] > a[0]]
    return max(rates, default=0.0)


def engine_only(fake: FakeLLM, args: argparse.Namespace) -> dict[str, Any]:
    """``bench.engine_bench``'s engine client on the same workload, sampling calls in flight."""
    with ThreadPoolExecutor(1) as pool:
        measuring = pool.submit(
            run_client_process, "engine", fake.base_url, args, args.items, args.concurrency
        )
        in_flight = []
        while not measuring.done():
            in_flight.append(fake.stats()["in_flight"])
            time.sleep(POLL_INTERVAL_S)
        measured: Measurement = measuring.result()
    fake.reset()
    return {
        **asdict(measured),
        "ideal_s": measured.ideal_s,
        "efficiency": measured.efficiency,
        "cpu_ms_per_call": measured.cpu_ms_per_call,
        "llm_in_flight_mean": busy_mean(in_flight),
    }


def busy_mean(in_flight: list[int]) -> float:
    """Mean calls in flight at the fake server over the samples while it was busy."""
    return statistics.mean([n for n in in_flight if n] or [0])


def figures(run: Run, engine: dict[str, Any]) -> dict[str, Any]:
    ideal = ideal_bound(run.items, run.concurrency, run.latency_s)
    polls = [s.poll_ms for s in run.samples]
    cpu_ms = 1000 * run.service_cpu_s / max(1, run.calls)
    return {
        "database": run.database,
        "items": run.items,
        "concurrency": run.concurrency,
        "latency_s": run.latency_s,
        "calls": run.calls,
        "failed_items": run.failed_items,
        "submit_s": run.submit_s,
        "wall_s": run.wall_s,
        "server_wall_s": run.server_wall_s,
        "ideal_s": ideal,
        "efficiency": ideal / run.wall_s,
        "service_cpu_s": run.service_cpu_s,
        "cpu_ms_per_call": cpu_ms,
        "database_cpu_s": run.database_cpu_s,
        "nodes_per_s": 3 * run.items / run.wall_s,
        "peak_rows_written_per_s": peak_rate(run.samples),
        "polls": len(polls),
        "poll_p50_ms": statistics.median(polls),
        "poll_p99_ms": percentile(polls, 0.99),
        "poll_max_ms": max(polls),
        "writer_queue_peak_rows": run.queue_peak_rows,
        "writer_queue_max_sampled": max(
            (s.queued_rows for s in run.samples if s.queued_rows is not None), default=0
        ),
        "loop_lag_ms": run.loop_lag_ms,
        "llm_in_flight_mean": busy_mean([s.in_flight for s in run.samples]),
        "wall_vs_engine": run.wall_s / engine["wall_s"],
        "cpu_per_call_vs_engine": cpu_ms / engine["cpu_ms_per_call"],
        "samples": [asdict(s) for s in run.samples],
    }


HEAD = "{:<16} {:>7} {:>7} {:>9} {:>8} {:>9} {:>14} {:>7} {:>8} {:>7}"


def report(engine: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    print(
        f"\n{engine['items']:,} items x 3 calls, latency {engine['latency_s'] * 1000:.0f} ms, "
        f"max_concurrent {engine['concurrency']}, ideal bound {engine['ideal_s']:.2f} s"
    )
    print(HEAD.format(*HEADINGS))
    print(
        HEAD.format(
            "engine-only",
            f"{engine['wall_s']:.2f}",
            f"{engine['efficiency']:.3f}",
            f"{engine['cpu_ms_per_call']:.3f}",
            f"{engine['llm_in_flight_mean']:.0f}",
            *"----",
            "1.00",
        )
    )
    for r in runs:
        print(HEAD.format(*_row(r)))
    for r in runs:
        print(_details(r))


HEAD = "{:<16} {:>7} {:>7} {:>9} {:>7} {:>8} {:>14} {:>8} {:>9} {:>7}"
HEADINGS = (
    "run", "wall s", "effic.", "cpu ms/c", "in fl.", "nodes/s",
    "poll p50/p99", "loop p99", "queue pk", "x eng.",
)  # fmt: skip


def _row(r: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"service/{r['database']}",
        f"{r['wall_s']:.2f}",
        f"{r['efficiency']:.3f}",
        f"{r['cpu_ms_per_call']:.3f}",
        f"{r['llm_in_flight_mean']:.0f}",
        f"{r['nodes_per_s']:,.0f}",
        f"{r['poll_p50_ms']:.1f}/{r['poll_p99_ms']:.1f}",
        f"{r['loop_lag_ms'].get('p99', 0.0):.1f}",
        str(r["writer_queue_peak_rows"]),
        f"{r['wall_vs_engine']:.2f}",
    )


def _details(r: dict[str, Any]) -> str:
    checks = [
        f"poll p99 {r['poll_p99_ms']:.1f} ms (target <= {TARGET_POLL_P99_MS:.0f}), "
        f"max {r['poll_max_ms']:.1f} ms over {r['polls']} polls"
    ]
    if r["database"] == "postgres":
        checks.append(f"wall {r['wall_vs_engine']:.2f}x engine-only (target <= 1.25)")
    extra = f", database CPU {r['database_cpu_s']:.2f} s" if r["database_cpu_s"] else ""
    return (
        f"{r['database']}: "
        + "; ".join(checks)
        + f"; submit {r['submit_s']:.2f} s; service CPU {r['service_cpu_s']:.2f} s{extra}; "
        f"result writer: at most {r['writer_queue_peak_rows']} rows queued "
        f"(of {5 * r['items']:,} queued over the job), "
        f"{r['peak_rows_written_per_s']:,.0f} rows/s at peak"
    )


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument(
        "--concurrency", type=int, default=256, help="the endpoint's max_concurrent"
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--server-cpu", type=int, default=1, help="the fake server's core")
    parser.add_argument("--client-cpu", type=int, default=0, help="the engine's / service's core")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the service under cProfile; stats to bench/results/service_bench_<db>.prof",
    )
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    # The service runs its HTTP process and job runner on uvloop; so does the engine-only run.
    parser.set_defaults(loop="uvloop")
    return parser.parse_args(argv)


def selected_databases(args: argparse.Namespace) -> list[str]:
    names = [name.strip() for name in args.databases.split(",") if name.strip()]
    if "postgres" in names and args.postgres_url is None:
        print("postgres skipped: set TEST_DATABASE_URL or --postgres-url", file=sys.stderr)
        names.remove("postgres")
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.cpu, args.profile_to)
        return 0
    os.sched_setaffinity(0, {args.server_cpu})  # this process only polls: off the client's core
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    with FakeLLM(latency_ms=args.latency_ms, log=False, cpu=args.server_cpu) as fake:
        engine = engine_only(fake, args)
        for name in selected_databases(args):
            with (
                tempfile.TemporaryDirectory() as tmp,
                database(name, Path(tmp), args.postgres_url) as db,
            ):
                runs.append(figures(run_service(db, fake, args, Path(tmp)), engine))
    report(engine, runs)
    result = {"engine": engine, "services": runs}
    if args.profile:
        print("profiled run (slowed down by cProfile): figures not written", file=sys.stderr)
    else:
        (RESULTS / "service_bench.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
