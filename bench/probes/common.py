"""What every probe shares: a real ``inf-engine serve`` subprocess on a fresh database, HTTP
helpers on the public API, a ``/healthz`` poller in its own process, and the result format.

Everything runs on loopback; every loop is bounded in count and in time; everything a probe
starts is stopped when its ``with`` block ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
TERMINAL = ("completed", "failed", "cancelled")
T = TypeVar("T")


# -- results ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one probe found: PASS/FAIL, a one-line summary and the lines it printed."""

    name: str
    passed: bool = True
    summary: str = ""
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        """Print a line now (probes run for a while) and keep it for the summary."""
        print(line, flush=True)
        self.lines.append(line)

    def check(self, ok: bool, criterion: str) -> bool:
        """One criterion: printed as PASS or FAIL; any FAIL fails the probe."""
        self.say(f"  [{'PASS' if ok else 'FAIL'}] {criterion}")
        self.passed = self.passed and ok
        return ok


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def latency_line(label: str, values_ms: Sequence[float]) -> str:
    """``label: n=.., p50 .. / p99 .. / max .. ms``."""
    if not values_ms:
        return f"{label}: no samples"
    p50, p99 = statistics.median(values_ms), percentile(values_ms, 0.99)
    return (
        f"{label}: n={len(values_ms)}, p50 {p50:.1f} / p99 {p99:.1f} / max {max(values_ms):.1f} ms"
    )


# -- command line ----------------------------------------------------------------------------


def parser(description: str | None) -> argparse.ArgumentParser:
    """The options every probe takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--database-url",
        default=None,
        help="a Postgres server (postgresql+asyncpg://...): a fresh database is created on it "
        "and dropped afterwards; default: a temporary SQLite file",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the server logs directory")
    return p


def main(run: Callable[[argparse.Namespace], Outcome], args: argparse.Namespace) -> int:
    """Run one probe from the command line: exit code 0 when its criteria hold."""
    outcome = run(args)
    print(f"{outcome.name}: {'PASS' if outcome.passed else 'FAIL'} - {outcome.summary}")
    return 0 if outcome.passed else 1


# -- databases -------------------------------------------------------------------------------


@contextlib.contextmanager
def database(server_url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh SQLite file in ``workdir``, or a fresh Postgres database on ``server_url``
    (dropped afterwards); yields its URL."""
    if server_url is None:
        yield f"sqlite+aiosqlite:///{workdir / 'probe.sqlite'}"
        return
    if not server_url.startswith("postgresql"):
        yield server_url  # another URL is used as given
        return
    url = make_url(server_url).set(database=f"inf_probe_{uuid.uuid4().hex[:12]}")
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{url.database}"'))
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run in a transaction, nor while connected to that database.
    admin = make_url(url).set(database="postgres")
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def backend_name(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else make_url(url).get_backend_name()


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    """A temporary directory for the database file, logs and endpoint files."""
    path = Path(tempfile.mkdtemp(prefix="inf-probe-"))
    try:
        yield path
    finally:
        if keep:
            print(f"logs kept in {path}")
        else:
            for child in sorted(path.rglob("*"), reverse=True):
                child.unlink() if not child.is_dir() else child.rmdir()
            path.rmdir()


# -- the service -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def endpoints_file(path: Path, base_url: str, max_concurrent: int = 64) -> Path:
    """An endpoints YAML whose alias ``fast`` calls the fake LLM server at ``base_url``."""
    alias = {
        "provider": "openai-compatible",
        "model": "probe",
        "base_url": base_url,
        "max_concurrent": max_concurrent,
    }
    path.write_text(yaml.safe_dump({"endpoints": {"fast": alias}}))
    return path


@dataclass
class Server:
    """One ``python -m app serve --open`` subprocess and an HTTP client on it."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    client: httpx.Client

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get("/healthz").json()
        return body

    def runner_pid(self) -> int | None:
        """The runner process: the child of the serve process started by multiprocessing."""
        runners = [pid for pid in child_pids(self.proc.pid) if b"spawn_main" in cmdline(pid)]
        return runners[0] if len(runners) == 1 else None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(child) for child in children.read_text().split()]
    return []


def cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


@contextlib.contextmanager
def server(
    database_url: str, directory: Path, endpoints: Path | None = None, **settings: Any
) -> Iterator[Server]:
    """``inf-engine serve`` on a free loopback port with ``INF_*`` settings (``lease_s=3`` is
    ``INF_LEASE_S=3``), ready (``/readyz`` 200) when the block starts, stopped when it ends."""
    port = free_port()
    env = {**os.environ, "INF_DATABASE_URL": database_url, "INF_AUTH_MODE": "open"}
    if endpoints is not None:
        env["INF_ENDPOINTS_FILE"] = str(endpoints)
    env.update({f"INF_{name.upper()}": str(value) for name, value in settings.items()})
    log_path = directory / "server.log"
    command = [sys.executable, "-m", "app", "serve", "--open", "--port", str(port)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    running = Server(proc, url, log_path, httpx.Client(base_url=url, timeout=60.0))
    try:
        _wait_ready(running)
        yield running
    finally:
        running.stop()


def _wait_ready(running: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise RuntimeError(f"the server exited:\n{running.log_tail()}")
        with contextlib.suppress(httpx.TransportError):
            if running.client.get("/readyz").status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready in {READY_TIMEOUT_S}s:\n{running.log_tail()}")


# -- the public API --------------------------------------------------------------------------


def upload_graph(client: httpx.Client, graph: Mapping[str, Any]) -> httpx.Response:
    return client.post("/v1/graphs", json=graph)


def submit_job(client: httpx.Client, graph_id: str, inputs: Sequence[Any]) -> str:
    """Submit as a JSONL upload (as a large batch would be); returns the job id."""
    body = "".join(json.dumps(item) + "\n" for item in inputs).encode()
    files = {"inputs": ("inputs.jsonl", body, "application/x-ndjson")}
    response = client.post("/v1/jobs", data={"graph_id": graph_id}, files=files)
    if response.status_code != 202:
        raise RuntimeError(f"job submission: {response.status_code} {response.text[:500]}")
    return str(response.json()["id"])


def job_status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def wait_terminal(
    client: httpx.Client, job_id: str, timeout_s: float, interval_s: float = 0.25
) -> tuple[dict[str, Any], float]:
    """Poll the job until it is completed, failed or cancelled, or ``timeout_s`` passes;
    returns its last status and the seconds waited."""
    started = time.monotonic()
    while True:
        status = job_status(client, job_id)
        waited = time.monotonic() - started
        if status["status"] in TERMINAL or waited > timeout_s:
            return status, waited
        time.sleep(interval_s)


def results(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every item's result, in input order (the streamed JSONL form)."""
    with client.stream("GET", f"/v1/jobs/{job_id}/results", params={"format": "jsonl"}) as reply:
        reply.raise_for_status()
        return [json.loads(line) for line in reply.iter_lines() if line.strip()]


def item(client: httpx.Client, job_id: str, index: int) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}/items/{index}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def event_kinds(client: httpx.Client, job_id: str, timeout_s: float = 30.0) -> list[str]:
    """The ``event:`` names of a finished job's event stream (it ends after the terminal one)."""
    kinds: list[str] = []
    deadline = time.monotonic() + timeout_s
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout_s) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if line.startswith("event:"):
                kinds.append(line.split(":", 1)[1].strip())
            if time.monotonic() > deadline:
                break
    return kinds


def short(value: Any, chars: int = 160) -> str:
    rendered = value if isinstance(value, str) else json.dumps(value)
    return rendered if len(rendered) <= chars else rendered[:chars] + "..."


# -- /healthz, polled by a separate client ---------------------------------------------------


class HealthPoller:
    """``GET /healthz`` (or ``path``) every ``interval_s`` from its own process (so the probe's
    own work does not delay it), for at most ``max_s``; ``stop()`` returns each poll's latency
    in ms.

    A failed poll (error or non-200) counts as ``max_s`` ms: it must fail the criterion."""

    def __init__(
        self, url: str, interval_s: float = 0.01, max_s: float = 180.0, path: str = "/healthz"
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._ours, theirs = context.Pipe()
        self._proc = context.Process(
            target=_poll_health,
            args=(url, path, interval_s, max_s, self._stop, theirs),
            daemon=True,
        )

    def __enter__(self) -> HealthPoller:
        self._proc.start()
        if not self._ours.poll(30):
            raise RuntimeError("the /healthz poller did not start")
        self._ours.recv()  # "started"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.is_alive():
            self._stop.set()
            self._proc.join(STOP_TIMEOUT_S)
            if self._proc.is_alive():
                self._proc.kill()

    def stop(self) -> list[float]:
        self._stop.set()
        latencies: list[float] = self._ours.recv() if self._ours.poll(STOP_TIMEOUT_S) else []
        self._proc.join(STOP_TIMEOUT_S)
        return latencies


def _poll_health(
    url: str,
    path: str,
    interval_s: float,
    max_s: float,
    stop: Any,
    pipe: multiprocessing.connection.Connection,
) -> None:
    latencies: list[float] = []
    deadline = time.monotonic() + max_s
    with httpx.Client(base_url=url, timeout=max_s) as client:
        client.get(path)  # connects; not counted
        pipe.send("started")
        while not stop.is_set() and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                ok = client.get(path).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - started) * 1000 if ok else max_s * 1000)
            stop.wait(interval_s)
    pipe.send(latencies)


def wait_for(probe: Callable[[], T | None], timeout_s: float, interval_s: float = 0.1) -> T | None:
    """``probe()`` until it returns something not ``None`` or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(interval_s)
    return None
