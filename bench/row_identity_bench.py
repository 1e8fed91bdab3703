"""What row identities cost a JSONL job upload: the same N rows submitted plain and with a
``custom_id`` and ``metadata`` each, timed from the first byte sent to the 202.

A third upload, "padded", is plain rows as long as the identified ones, so the second ratio
leaves out what any longer line costs to read. An identified row is split into its inputs and
its identity, which is checked, and it writes two more columns and an entry in the unique
``(job_id, custom_id)`` index (which is also how a repeat across insert batches is found).
The ratios are the price of that. The service runs in this process (no runner: only the
upload is measured), on SQLite, or Postgres with ``--postgres-url``.

    .venv/bin/python -m bench.row_identity_bench --items 50000 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.api.app import create_app
from app.settings import Settings

KINDS = ("plain", "padded", "identified")
GRAPH = {
    "name": "bench-identity",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": "t", "op": "template", "text": "{text}"}],
    "outputs": {"out": "t"},
}


def identified_row(i: int) -> dict[str, Any]:
    text = f"row {i}: electric cars charge from the grid"
    return {"text": text, "custom_id": f"request-{i:08d}", "metadata": {"n": str(i), "s": "dev"}}


def padded_row(i: int) -> dict[str, Any]:
    """A plain row as long as the identified one (its text takes the identity's bytes)."""
    row = identified_row(i)
    extra = len(json.dumps(row)) - len(json.dumps({"text": row["text"]}))
    return {"text": row["text"] + " " * extra}


def jsonl(items: int, kind: str) -> bytes:
    def line(i: int) -> dict[str, Any]:
        if kind == "identified":
            return identified_row(i)
        if kind == "padded":
            return padded_row(i)
        return {"text": identified_row(i)["text"]}

    return "".join(json.dumps(line(i)) + "\n" for i in range(items)).encode()


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the benchmark keeps its signals
        pass


async def upload_s(client: httpx.AsyncClient, body: bytes) -> float:
    files = {"inputs": ("rows.jsonl", body, "application/x-ndjson")}
    started = time.perf_counter()
    response = await client.post("/v1/jobs", data={"graph_id": GRAPH["name"]}, files=files)
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.text
    return elapsed


async def measure(settings: Settings, items: int, repeats: int) -> dict[str, list[float]]:
    server = _Server(uvicorn.Config(create_app(settings), port=0, log_level="warning"))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn signals its start with a flag only
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    bodies = {kind: jsonl(items, kind) for kind in KINDS}
    times: dict[str, list[float]] = {name: [] for name in bodies}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            assert (await client.post("/v1/graphs", json=GRAPH)).status_code in (200, 201)
            for _ in range(repeats):  # alternated, so drift hits both alike
                for name, body in bodies.items():
                    times[name].append(await upload_s(client, body))
    finally:
        server.should_exit = True
        await task
    return times


def settings_for(url: str) -> Settings:
    return Settings(
        database_url=url, auth_mode="open", runner_enabled=False, max_request_bytes=1 << 30
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=None, help="an empty Postgres database")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        url = args.postgres_url or f"sqlite+aiosqlite:///{Path(workdir) / 'bench.sqlite'}"
        times = asyncio.run(measure(settings_for(url), args.items, args.repeats))
    median = {kind: statistics.median(times[kind]) for kind in KINDS}
    database = "postgres" if args.postgres_url else "sqlite"
    print(f"{args.items} rows on {database}, median of {args.repeats}:")
    for kind in KINDS:
        print(f"  {kind:<11} {median[kind]:7.2f} s  ({args.items / median[kind]:,.0f} rows/s)")
    print(f"  identified / plain (same text):   {median['identified'] / median['plain']:.2f}x")
    print(f"  identified / padded (same bytes): {median['identified'] / median['padded']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
