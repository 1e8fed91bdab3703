"""How fast the dashboard's pages answer with a full database: 100,000 jobs over three tenants,
four graphs, every status and a year of time, and one job of 100,000 items with a stored
result for each of its three nodes (300,000 node records) and the per-node state counts the
result writer keeps beside them.

The database is fresh (a SQLite file, or its own Postgres database made on the server
``--database-url`` or ``TEST_DATABASE_URL`` names, dropped afterwards), migrated, then seeded
with bulk inserts (SQLAlchemy core, thousands of rows a statement). The service runs in this
process under uvicorn with API keys on; the client logs in to the dashboard with a key (its
session cookie) and calls the API with the same key as a bearer token. Each page is requested
``--requests`` times after a warm-up; the report gives p50 and p95 in ms, whether p95 is within
``--bound-ms``, and how many SQL statements one request of it runs (an engine event listener),
which stays fixed whatever the database holds: no N+1.

"graph svg" is what the job page's live stream sends as its ``graph`` event: the job's graph
and per-node state counts read (``requests.dashboard.job_graph``) and drawn
(``dashboard.graph_svg``), timed in-process through the service's own read sessions.

    .venv/bin/python -m bench.dashboard_bench
    .venv/bin/python -m bench.dashboard_bench --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import os
import random
import re
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.api.app import create_app
from app.dashboard.graph_svg import graph_svg
from app.db import migrate
from app.db.models import GraphVersion, Job, JobItem, JobNodeCount, NodeResult, Tenant
from app.db.repositories import tenants
from app.services.requests import dashboard
from app.settings import Settings
from bench.databases import postgres_database

JOBS = 100_000
ITEMS = 100_000
CHUNK = 5_000
NODES = ("draft", "check", "final")
STATUSES = ("completed",) * 14 + ("failed", "cancelled", "queued", "running")
TENANT_SHARE = (0.8, 0.1, 0.1)  # the benched tenant ("bench") holds 80,000 of the jobs
START = datetime(2026, 1, 1, tzinfo=UTC)


def graph(name: str) -> dict[str, Any]:
    nodes = [{"id": "draft", "op": "template", "text": "{text}"}]
    nodes += [{"id": "check", "op": "template", "text": "{draft}"}]
    nodes += [{"id": "final", "op": "template", "text": "{check}"}]
    return {"name": name, "inputs": {"text": {"type": "string"}}, "nodes": nodes,
            "outputs": {"out": "final"}}  # fmt: skip


# -- the database ------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server_url: str | None, workdir: Path) -> Iterator[str]:
    """A migrated fresh SQLite file, or a fresh Postgres database (dropped afterwards)."""
    if server_url is None:
        url = f"sqlite+aiosqlite:///{workdir / 'dashboard.sqlite'}"
        migrate.upgrade(url)
        yield url
        return
    with postgres_database(server_url, "inf_dash") as url:
        migrate.upgrade(url)
        yield url


async def make_tenants(url: str) -> tuple[list[str], str]:
    """Three tenants (the first is benched) and an API key of the first."""
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            ids = [str(uuid.uuid4()) for _ in TENANT_SHARE]
            for n, tenant_id in enumerate(ids):
                session.add(Tenant(id=tenant_id, name=f"bench-{n}"))
            await session.flush()
            _, secret = await tenants.create_api_key(session, ids[0], "dashboard bench")
            await session.commit()
    finally:
        await engine.dispose()
    return ids, secret


def job_rows(tenant_ids: list[str], versions: dict[str, list[str]], count: int) -> list[dict]:  # type: ignore[type-arg]
    """``count`` finished-looking jobs spread over tenants, graphs, statuses and a year."""
    rng = random.Random(14)
    rows = []
    for n in range(count):
        tenant = rng.choices(tenant_ids, TENANT_SHARE)[0]
        created = START + timedelta(seconds=n * 315 + rng.randrange(300))
        status = rng.choice(STATUSES)
        rows.append(
            {"id": str(uuid.UUID(int=rng.getrandbits(128))), "tenant_id": tenant,
             "graph_version_id": rng.choice(versions[tenant]), "kind": "batch",
             "status": status, "item_count": 10, "succeeded": 10 if status == "completed" else 0,
             "created_at": created, "started_at": created,
             "finished_at": created + timedelta(seconds=30)}
        )  # fmt: skip
    return rows


def item_rows(job_id: str, at: datetime, count: int) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    """The big job's items (1 in 100 failed at its last node) and their node records."""
    items, nodes = [], []
    for i in range(count):
        failed = i % 100 == 7
        items.append(
            {"job_id": job_id, "item_index": i, "input": {"text": f"row {i}"},
             "status": "failed" if failed else "succeeded",
             "output": None if failed else {"out": f"row {i}"},
             "error": "final: boom" if failed else None, "finished_at": at}
        )  # fmt: skip
        for n, node in enumerate(NODES):
            bad = failed and n == len(NODES) - 1
            nodes.append(
                {"job_id": job_id, "item_index": i, "node_id": node,
                 "status": "failed" if bad else "succeeded",
                 "output": None if bad else f"row {i}", "error": "boom" if bad else None,
                 "attempts": 1, "duration_s": 0.001, "started_s": 0.0, "ended_s": 0.001,
                 "finished_at": at}
            )  # fmt: skip
    return items, nodes


def node_counts(nodes: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """The per-node state counts the result writer keeps beside the node records."""
    counted = Counter((n["job_id"], n["node_id"], n["status"]) for n in nodes)
    return [
        {"job_id": job_id, "node_id": node_id, "status": status, "n": n}
        for (job_id, node_id, status), n in counted.items()
    ]


async def bulk(url: str, table: Any, rows: list[dict]) -> None:  # type: ignore[type-arg]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for start in range(0, len(rows), CHUNK):
                await connection.execute(insert(table), rows[start : start + CHUNK])
    finally:
        await engine.dispose()


async def versions_by_tenant(url: str, tenant_ids: list[str]) -> dict[str, list[str]]:
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            stmt = text(
                "SELECT g.tenant_id, v.id FROM graph_versions v JOIN graphs g ON g.id = v.graph_id"
            )
            found: dict[str, list[str]] = {t: [] for t in tenant_ids}
            for tenant_id, version_id in await session.execute(stmt):
                found[tenant_id].append(version_id)
    finally:
        await engine.dispose()
    return found


async def seed(url: str, tenant_ids: list[str], jobs: int, items: int) -> str:
    """The jobs and the big job (the benched tenant's newest); its id."""
    versions = await versions_by_tenant(url, tenant_ids)
    rows = job_rows(tenant_ids, versions, jobs - 1)
    at = START + timedelta(days=400)
    big = {**rows[0], "id": str(uuid.uuid4()), "tenant_id": tenant_ids[0],
           "graph_version_id": versions[tenant_ids[0]][0], "status": "completed",
           "item_count": items, "succeeded": items - items // 100, "failed": items // 100,
           "created_at": at, "started_at": at, "finished_at": at}  # fmt: skip
    await bulk(url, Job.__table__, [*rows, big])
    item_list, node_list = item_rows(big["id"], at, items)
    await bulk(url, JobItem.__table__, item_list)
    await bulk(url, NodeResult.__table__, node_list)
    await bulk(url, JobNodeCount.__table__, node_counts(node_list))
    if url.startswith("postgresql"):
        await _vacuum(url)
    return str(big["id"])


async def _vacuum(url: str) -> None:
    """What autovacuum does to a settled database: statistics, and the visibility map that lets
    a count read a covering index alone."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()


# -- the service -------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the benchmark keeps its signals
        pass


class StatementCount:
    """Counts the SQL statements any engine of this process runs."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: object) -> None:
        self.count += 1


@contextlib.asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """The service on a free port: its URL and its app (for its runtime)."""
    app = create_app(settings)
    server = _Server(uvicorn.Config(app, port=0, log_level="warning"))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn signals its start with a flag only
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task


# -- the measurement ---------------------------------------------------------------------------


async def timed(
    call: Callable[[], Awaitable[None]], n: int, counter: StatementCount
) -> tuple[list[float], int]:
    """``n`` timed calls after three warm-ups; the times (ms) and statements of one call."""
    for _ in range(3):
        await call()
    before = counter.count
    await call()
    statements = counter.count - before
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times, statements


def getter(client: httpx.AsyncClient, path: str, **headers: str) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])

    return call


async def deep_cursor(client: httpx.AsyncClient, pages: int) -> str:
    """The jobs list's path ``pages`` pages deep (following each page's cursor)."""
    path = "/ui/jobs"
    for _ in range(pages):
        response = await client.get(path, headers={"HX-Request": "true"})
        found = re.search(r'href="(/ui/jobs\?[^"]*)" rel="next"', response.text)
        assert found is not None, "the jobs list has no next page"
        path = html.unescape(found.group(1))
    return path


async def run(url: str, args: argparse.Namespace) -> list[tuple[str, list[float], int]]:
    tenant_ids, secret = await make_tenants(url)
    settings = Settings(database_url=url, auth_mode="keys", runner_enabled=False)
    counter = StatementCount()
    async with service(settings) as (base, app):
        bearer = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            for n in range(4):
                response = await client.post("/v1/graphs", json=graph(f"g{n}"), headers=bearer)
                assert response.status_code in (200, 201), response.text
            await _other_graphs(url, tenant_ids)
            started = time.perf_counter()
            big = await seed(url, tenant_ids, args.jobs, args.items)
            print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
            await _log_in(client, secret)
            pages = await _pages(client, app, tenant_ids[0], big, bearer, args.items)
            return [(name, *await timed(call, args.requests, counter)) for name, call in pages]


LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _log_in(client: httpx.AsyncClient, secret: str) -> None:
    """Sign in as a browser does: the form first (its token and login cookie), then the post."""
    form = await client.get("/ui/login")
    found = LOGIN_TOKEN.search(form.text)
    assert found is not None, form.text
    body = {"api_key": secret, "next": "/ui/jobs", "csrf_token": found.group(1)}
    login = await client.post("/ui/login", data=body)
    assert login.status_code == 303, login.text


async def _other_graphs(url: str, tenant_ids: list[str]) -> None:
    """The other tenants get a copy of each of the benched tenant's graph versions."""
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            stmt = text("SELECT id, name, created_at FROM graphs")
            graphs = list(await session.execute(stmt))
            versions = list(await session.scalars(select(GraphVersion)))
            for tenant_id in tenant_ids[1:]:
                for graph_id, name, created in graphs:
                    new_graph = str(uuid.uuid4())
                    await session.execute(
                        text("INSERT INTO graphs (id, tenant_id, name, created_at) "
                             "VALUES (:i, :t, :n, :c)"),
                        {"i": new_graph, "t": tenant_id, "n": name, "c": created},
                    )  # fmt: skip
                    for v in (v for v in versions if v.graph_id == graph_id):
                        session.add(GraphVersion(graph_id=new_graph, version=v.version,
                                                 hash=v.hash, definition=v.definition))  # fmt: skip
            await session.commit()
    finally:
        await engine.dispose()


async def _pages(
    client: httpx.AsyncClient,
    app: Any,
    tenant_id: str,
    big: str,
    bearer: dict[str, str],
    items: int,
) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    deep = await deep_cursor(client, 40)
    item = items // 2 + 7
    runtime = app.state.runtime

    async def svg() -> None:
        async with runtime.reads() as session:
            definition, counts = await dashboard.job_graph(session, tenant_id, big)
        assert counts["draft"]["succeeded"] == items, counts  # the first node of every item
        assert "<svg" in graph_svg(definition, counts)

    return [
        ("jobs list", getter(client, "/ui/jobs")),
        ("jobs list, status=failed", getter(client, "/ui/jobs?status=failed")),
        ("jobs list, graph=g2", getter(client, "/ui/jobs?graph=g2")),
        ("jobs list, failed + g2", getter(client, "/ui/jobs?status=failed&graph=g2")),
        ("jobs list, 40 pages deep", getter(client, deep)),
        ("big job page", getter(client, f"/ui/jobs/{big}")),
        ("big job progress", getter(client, f"/ui/jobs/{big}/progress")),
        ("big job graph svg", svg),
        ("item page", getter(client, f"/ui/jobs/{big}/items/{item}")),
        ("API GET /v1/jobs", getter(client, "/v1/jobs", **bearer)),
        ("API GET /v1/jobs/{id}", getter(client, f"/v1/jobs/{big}", **bearer)),
    ]


def report(database: str, rows: list[tuple[str, list[float], int]], bound: float) -> None:
    print(f"\n{database}: p50 / p95 ms, statements per request (bound: p95 <= {bound:g} ms)")
    for name, times, statements in rows:
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        verdict = "ok" if p95 <= bound else "OVER"
        print(f"  {name:<26} {p50:7.1f} {p95:7.1f}  {statements:3d} SQL  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per page")
    parser.add_argument("--bound-ms", type=float, default=100.0)
    parser.add_argument("--database-url", default=None, help="a Postgres server (else SQLite)")
    parser.add_argument(
        "--keep-sqlite",
        type=Path,
        default=None,
        help="a directory to keep the SQLite file in (for EXPLAIN)",
    )
    args = parser.parse_args(argv)
    server = args.database_url
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database(server, args.keep_sqlite or Path(tmp)) as url,
    ):
        rows = asyncio.run(run(url, args))
    report("postgres" if server else "sqlite", rows, args.bound_ms)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
