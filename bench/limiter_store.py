"""Limiter store benchmark: what the default shared store costs per model call.

``INF_LIMITER_BACKEND=auto`` keeps each alias's limits in the service's database:
the SQLite file, or Postgres. In one process, ``--tasks`` tasks admit calls through the path
every model call takes (``SharedAdmission.enter`` and ``leave`` over the store exactly as
``build_rate_store`` and the resource manager build it with the default settings: fallback
wrapper, budget slices, slot holds), each call a sleep of ``--call-ms``, for ``--seconds``. For each
database (a SQLite file; Postgres on a fresh database when ``TEST_DATABASE_URL`` or
``--postgres-url`` names a server) and each alias:

- ``cap``: the default endpoint, ``max_concurrent`` 16 and no rpm or tpm: a slot lease (held
  for reuse) and, without a rate in force, a budget decision once per slice life (to see a
  shared pause or a learned rate), the calls between counted with the next one;
- ``rpm``: also an ``rpm`` well above the load, so the budget is taken in slices.

Figures: admissions per second, CPU microseconds per admission in this process and in the
machine's ``postgres`` processes, latency p50 / p99 of one admission (``enter`` + ``leave``,
the call's sleep left out), and store operations per admission. ``--call-ms 0`` measures the
most admissions a process can make. Beside a model call of tens of milliseconds or more, the
latency is what a call waits for the limiter; the CPU is what the limiter costs the process.
JSON goes to ``bench/results/limiter_store.json``.

    .venv/bin/python -m bench.limiter_store
    .venv/bin/python -m bench.limiter_store --tasks 16 --seconds 5 --databases sqlite,postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from app.db import migrate
from app.db.session import create_engine, session_factory
from app.engine.resources.config import ResourceConfig
from app.engine.resources.shared import limits_of
from app.engine.resources.sharing import SharedAdmission
from app.engine.resources.slices import SlicedRateStore
from app.services.limiting.backends import build_rate_store, close_rate_store, slice_settings
from app.settings import Settings
from bench.databases import postgres_database
from bench.service_bench import postgres_cpu_s

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ALIASES: dict[str, dict[str, Any]] = {
    "cap": {},
    "rpm": {"rpm": 600_000},
}


def config() -> ResourceConfig:
    endpoints = {
        alias: {"provider": "openai", "base_url": "http://127.0.0.1:9/v1", "model": alias, **extra}
        for alias, extra in ALIASES.items()
    }
    return ResourceConfig.model_validate({"endpoints": endpoints})


async def admit(
    admission: SharedAdmission, until: float, call_s: float, latencies: list[float]
) -> None:
    """Admit calls one after another until ``until`` (loop time), each held ``call_s`` (the
    model call), timing the admission's own part (``enter`` and ``leave``)."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        began = time.perf_counter()
        lease = await admission.enter(tokens=0)
        entered = time.perf_counter()
        await asyncio.sleep(call_s)
        left = time.perf_counter()
        await admission.leave(lease)
        latencies.append(entered - began + time.perf_counter() - left)


async def measure(url: str, alias: str, args: argparse.Namespace) -> dict[str, Any]:
    """One phase: ``args.tasks`` tasks admitting calls of ``alias`` for ``args.seconds``."""
    settings = Settings(database_url=url, limiter_backend="auto")
    engine = create_engine(url)
    resources = config()
    store = build_rate_store(settings, session_factory(engine), resources)
    assert store is not None, "auto shares limits in the database"
    limits = limits_of(resources)
    sliced = SlicedRateStore(store, limits, slice_settings(settings))
    admission = SharedAdmission(sliced, alias, limits[alias], ttl_s=settings.limiter_lease_s)
    latencies: list[float] = []
    call_s = args.call_ms / 1000.0
    await admit(admission, asyncio.get_running_loop().time() + 0.5, call_s, [])  # warm up
    calls_before = sliced.store_calls
    cpu, pg_cpu, began = time.process_time(), postgres_cpu_s(), time.perf_counter()
    until = asyncio.get_running_loop().time() + args.seconds
    tasks = [admit(admission, until, call_s, latencies) for _ in range(args.tasks)]
    await asyncio.gather(*tasks)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    pg_cpu = postgres_cpu_s() - pg_cpu
    await sliced.release_idle()
    await close_rate_store(store)
    await engine.dispose()
    return figures(alias, latencies, wall, cpu, pg_cpu, sliced.store_calls - calls_before)


def figures(
    alias: str, latencies: list[float], wall: float, cpu: float, pg_cpu: float, calls: int
) -> dict[str, Any]:
    count = len(latencies)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "alias": alias,
        "admissions": count,
        "per_s": round(count / wall, 1),
        "cpu_us": round(cpu / count * 1e6, 1),
        "postgres_cpu_us": round(pg_cpu / count * 1e6, 1),
        "p50_ms": round(cuts[49] * 1e3, 3),
        "p99_ms": round(cuts[98] * 1e3, 3),
        "store_ops_per_admission": round(calls / count, 2),
    }


def run_database(name: str, url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    migrate.upgrade(url)
    rows = [asyncio.run(measure(url, alias, args)) for alias in ALIASES]
    return [{"database": name, **row} for row in rows]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    names = args.databases.split(",")
    if "sqlite" in names:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/limits.sqlite"
            rows += run_database("sqlite", url, args)
    if "postgres" in names and args.postgres_url:
        with postgres_database(args.postgres_url, "inf_limiter_bench") as url:
            rows += run_database("postgres", url, args)
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    head = ("database", "alias", "per_s", "cpu_us", "postgres_cpu_us", "p50_ms", "p99_ms")
    print(" | ".join(head) + " | store ops/admission")
    for row in rows:
        print(" | ".join(str(row[key]) for key in head), "|", row["store_ops_per_admission"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.limiter_store", description=__doc__)
    p.add_argument("--postgres-url", default=os.environ.get("TEST_DATABASE_URL"))
    p.add_argument("--databases", default="sqlite,postgres")
    p.add_argument("--tasks", type=int, default=16, help="calls admitted at once")
    p.add_argument("--call-ms", type=float, default=50.0, help="each model call's time")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--out", default=str(RESULTS / "limiter_store.json"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = run(args)
    report(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
