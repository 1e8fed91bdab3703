"""Batch API benchmark: a 50,000-line, 200 MB batch file through the service, beside a graph
job of the same calls.

In one invocation, against the fake server (50 ms latency, pinned to core 1), with the
service (``python -m app serve`` as ``bench.service_bench`` runs it: HTTP process and runner
child, pinned to core 0) on a fresh database, its endpoint at ``max_concurrent`` C:

1. **Memory.** The batch file (N lines of ``/v1/chat/completions``, each a system and a user
   message of about ``--line-bytes``) is uploaded with ``POST /v1/files``; the batch is
   created, run, and its output file streamed back with ``GET /v1/files/{id}/content``. The
   HTTP process's resident set (``VmRSS``, and its peak ``VmHWM`` from ``/proc``) is read
   before the upload, after it, after the create (every line checked and stored) and after
   the download: flat means it grows by far less than the file.
2. **Throughput.** The batch's run (create answered -> ``completed``, polled every 100 ms)
   against a graph job of the same calls (one ``llm`` node, the same system and user text,
   the same ``max_tokens``: submitted as a JSONL upload, submit answered -> ``completed``).
   Target: batch wall <= 1.15 x job wall. The runs alternate (batch, job, batch, job ...),
   ``--rounds`` of each; the ratio is of the medians.

JSON goes to ``bench/results/batch_api.json``.

    .venv/bin/python -m bench.batch_api
    .venv/bin/python -m bench.batch_api --lines 50000 --line-bytes 3950 --rounds 2 \\
        --database postgres --postgres-url postgresql+asyncpg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import service_bench
from bench.fake_llm.handle import FakeLLM
from bench.service_bench import RESULTS, ServiceProcess, child_pids, database, service_process

CHAT = "/v1/chat/completions"
SYSTEM = "Be brief."
MAX_TOKENS = 16  # short answers: the output file is the answers, not the prompts again
POLL_S = 0.1
TIMEOUT_S = 1800.0
TARGET_RATIO = 1.15
GRAPH = {
    "name": "batch-twin",
    "inputs": {"system": {"type": "string"}, "prompt": {"type": "string"}},
    "nodes": [{"id": "call", "op": "llm", "alias": "fast", "system": "{system}",
               "prompt": "{prompt}", "max_tokens": MAX_TOKENS}],
    "outputs": {"call": "call"},
}  # fmt: skip


def prompt(index: int, size: int) -> str:
    """The user text of line ``index``, about ``size`` bytes, distinct per line."""
    head = f"Item {index}: summarise this. "
    filler = "lorem ipsum dolor sit amet " * (size // 27 + 1)
    return head + filler[: max(0, size - len(head))]


def batch_lines(count: int, size: int) -> Iterator[bytes]:
    for i in range(count):
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": prompt(i, size)}]  # fmt: skip
        body = {"model": "fast", "messages": messages, "max_tokens": MAX_TOKENS}
        line = {"custom_id": f"req-{i}", "method": "POST", "url": CHAT, "body": body}
        yield json.dumps(line).encode() + b"\n"


def job_lines(count: int, size: int) -> Iterator[bytes]:
    for i in range(count):
        yield json.dumps({"system": SYSTEM, "prompt": prompt(i, size)}).encode() + b"\n"


def write_file(path: Path, lines: Iterator[bytes]) -> int:
    with path.open("wb") as out:
        for line in lines:
            out.write(line)
    return path.stat().st_size


# -- memory --------------------------------------------------------------------------------


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (now) and ``VmHWM`` (peak since start) of a process, in MB."""
    found: dict[str, float] = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = row.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return {"rss_mb": found["VmRSS"], "peak_mb": found["VmHWM"]}


@dataclass
class Memory:
    """The HTTP process's memory at each stage of the batch, and the runner's peak."""

    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    runner_peak_mb: float = 0.0

    def note(self, stage: str, service: ServiceProcess) -> None:
        self.stages[stage] = memory_mb(service.proc.pid)
        for child in child_pids(service.proc.pid):
            self.runner_peak_mb = max(self.runner_peak_mb, memory_mb(child)["peak_mb"])


# -- runs ----------------------------------------------------------------------------------


@dataclass
class BatchRun:
    upload_s: float = 0.0
    create_s: float = 0.0
    wall_s: float = 0.0
    download_s: float = 0.0
    output_bytes: int = 0
    output_lines: int = 0
    completed: int = 0


async def wait_done(client: httpx.AsyncClient, path: str, started: float) -> dict[str, Any]:
    while time.perf_counter() - started < TIMEOUT_S:
        found: dict[str, Any] = (await client.get(path)).raise_for_status().json()
        if found["status"] in ("completed", "failed", "cancelled", "expired"):
            return found
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"{path} did not end in {TIMEOUT_S}s")


async def run_batch(
    client: httpx.AsyncClient, service: ServiceProcess, source: Path, memory: Memory | None
) -> BatchRun:
    """Upload, create, wait for ``completed``, stream the output file; time each step."""
    run = BatchRun()
    started = time.perf_counter()
    with source.open("rb") as handle:
        files = {"file": ("batch.jsonl", handle, "application/jsonl")}
        uploaded = await client.post("/v1/files", data={"purpose": "batch"}, files=files)
    file_id = uploaded.raise_for_status().json()["id"]
    run.upload_s = time.perf_counter() - started
    if memory:
        memory.note("after upload", service)
    started = time.perf_counter()
    body = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
    batch = (await client.post("/v1/batches", json=body)).raise_for_status().json()
    created = time.perf_counter()
    run.create_s = created - started
    if memory:
        memory.note("after create", service)
    final = await wait_done(client, f"/v1/batches/{batch['id']}", created)
    run.wall_s = time.perf_counter() - created
    if final["status"] != "completed":
        raise RuntimeError(f"the batch ended {final['status']}: {final.get('errors')}")
    run.completed = final["request_counts"]["completed"]
    await download(client, final["output_file_id"], run)
    if memory:
        memory.note("after download", service)
    return run


async def download(client: httpx.AsyncClient, file_id: str, run: BatchRun) -> None:
    started = time.perf_counter()
    async with client.stream("GET", f"/v1/files/{file_id}/content") as streamed:
        streamed.raise_for_status()
        async for chunk in streamed.aiter_bytes():
            run.output_bytes += len(chunk)
            run.output_lines += chunk.count(b"\n")
    run.download_s = time.perf_counter() - started


async def run_job(client: httpx.AsyncClient, source: Path) -> float:
    """Submit the graph job of the same calls; its wall, submit answered -> completed."""
    with source.open("rb") as handle:
        files = {"inputs": ("inputs.jsonl", handle, "application/x-ndjson")}
        response = await client.post("/v1/jobs", data={"graph_id": GRAPH["name"]}, files=files)
    job = response.raise_for_status().json()
    submitted = time.perf_counter()
    final = await wait_done(client, f"/v1/jobs/{job['id']}", submitted)
    if final["status"] != "completed" or final["counts"]["failed"]:
        raise RuntimeError(f"the job ended {final['status']}: {final['counts']}")
    return time.perf_counter() - submitted


async def drive(service: ServiceProcess, files: dict[str, Path], rounds: int) -> dict[str, Any]:
    memory = Memory()
    batches: list[BatchRun] = []
    jobs: list[float] = []
    async with httpx.AsyncClient(base_url=service.url, timeout=TIMEOUT_S) as client:
        (await client.post("/v1/graphs", json=GRAPH)).raise_for_status()
        memory.note("before upload", service)
        for round_ in range(rounds):
            batches.append(
                await run_batch(client, service, files["batch"], memory if not round_ else None)
            )
            print(f"batch {round_ + 1}: {batches[-1].wall_s:.1f} s", file=sys.stderr)
            jobs.append(await run_job(client, files["job"]))
            print(f"job {round_ + 1}: {jobs[-1]:.1f} s", file=sys.stderr)
    return {"memory": asdict(memory), "batches": [asdict(b) for b in batches], "jobs_s": jobs}


def service_env(db_url: str, workdir: Path, concurrency: int, fake_url: str) -> dict[str, str]:
    endpoints = workdir / "endpoints.yaml"
    alias = {"provider": "openai-compatible", "model": "m", "base_url": fake_url,
             "max_concurrent": concurrency, "max_retries": 0}  # fmt: skip
    endpoints.write_text(yaml.safe_dump({"endpoints": {"fast": alias}}))
    return {
        "INF_DATABASE_URL": db_url,
        "INF_ENDPOINTS_FILE": str(endpoints),
        "INF_AUTH_MODE": "open",
        "INF_FILES_DIR": str(workdir / "files"),
        "INF_MAX_REQUEST_BYTES": str(400 * 1024 * 1024),  # the job's 200 MB JSONL upload
    }


def figures(
    result: dict[str, Any], args: argparse.Namespace, sizes: dict[str, int]
) -> dict[str, Any]:
    batch_wall = statistics.median(b["wall_s"] for b in result["batches"])
    job_wall = statistics.median(result["jobs_s"])
    stages = result["memory"]["stages"]
    base = stages["before upload"]["rss_mb"]
    peak = max(stage["peak_mb"] for stage in stages.values())
    return {
        "lines": args.lines, "file_bytes": sizes["batch"], "concurrency": args.concurrency,
        "latency_ms": args.latency_ms, "database": args.database,
        "batch_wall_s": batch_wall, "job_wall_s": job_wall,
        "batch_calls_per_s": args.lines / batch_wall, "job_calls_per_s": args.lines / job_wall,
        "ratio": batch_wall / job_wall, "target_ratio": TARGET_RATIO,
        "http_rss_before_mb": base, "http_peak_mb": peak, "http_growth_mb": peak - base,
        **result,
    }  # fmt: skip


def report(found: dict[str, Any]) -> None:
    mb = found["file_bytes"] / 1e6
    first = found["batches"][0]
    print(f"batch file: {found['lines']} lines, {mb:.1f} MB; C={found['concurrency']}, "
          f"{found['latency_ms']:.0f} ms, {found['database']}")  # fmt: skip
    out_mb = first["output_bytes"] / 1e6
    print(f"upload {first['upload_s']:.1f} s, create {first['create_s']:.1f} s, "
          f"output {out_mb:.1f} MB in {first['download_s']:.1f} s")  # fmt: skip
    for stage, values in found["memory"]["stages"].items():
        rss, peak = values["rss_mb"], values["peak_mb"]
        print(f"  HTTP process {stage}: RSS {rss:.0f} MB, peak {peak:.0f} MB")
    print(f"  HTTP process peak growth: {found['http_growth_mb']:.0f} MB for a {mb:.0f} MB file; "
          f"runner peak {found['memory']['runner_peak_mb']:.0f} MB")  # fmt: skip
    verdict = "holds" if found["ratio"] <= TARGET_RATIO else "MISSES"
    print(f"batch {found['batch_wall_s']:.1f} s ({found['batch_calls_per_s']:.0f} calls/s), "
          f"job {found['job_wall_s']:.1f} s ({found['job_calls_per_s']:.0f} calls/s): "
          f"ratio {found['ratio']:.3f} (target <= {TARGET_RATIO}: {verdict})")  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--line-bytes", type=int, default=3_950, help="user text per line")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--service-cpu", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    service_bench.READY_TIMEOUT_S = 300.0  # a loaded machine starts the service slowly
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        files = {"batch": workdir / "batch.jsonl", "job": workdir / "job.jsonl"}
        sizes = {
            "batch": write_file(files["batch"], batch_lines(args.lines, args.line_bytes)),
            "job": write_file(files["job"], job_lines(args.lines, args.line_bytes)),
        }
        fake = FakeLLM(latency_ms=args.latency_ms, log=False, cpu=args.server_cpu)
        with fake, database(args.database, workdir, args.postgres_url) as db:
            env = service_env(db.url, workdir, args.concurrency, fake.base_url)
            log = workdir / "service.log"
            with service_process(env, args.service_cpu, log) as service:
                result = asyncio.run(drive(service, files, args.rounds))
    found = figures(result, args, sizes)
    report(found)
    (RESULTS / "batch_api.json").write_text(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
