"""Service processes for end-to-end tests: start ``python -m app serve``, wait, kill, clean up.

Each server writes its output to a log file (never an unread pipe, which would block it once
full) and is told apart at the fake LLM server by the model names of its endpoints file
(``endpoints_for(..., marker)``), so a test knows which process sent every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from sqlalchemy import func, select

from app.db.models import Job, NodeResult
from app.db.session import create_engine
from tests.support.graph_counts import NodeCounts, grouped, stored_counts_query

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
T = TypeVar("T")


class ServerFailed(RuntimeError):
    """A server process did not become ready (its log tail is in the message)."""


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def endpoints_for(path: Path, base_url: str, marker: str, max_concurrent: int = 64) -> Path:
    """An endpoints YAML with aliases ``fast`` and ``smart`` on the fake server, whose model
    names (``<marker>-fast``, ``<marker>-smart``) show at the fake server which process called."""
    alias = {
        "provider": "openai-compatible",
        "base_url": base_url,
        "max_concurrent": max_concurrent,
    }
    config = {
        "endpoints": {name: {**alias, "model": f"{marker}-{name}"} for name in ("fast", "smart")}
    }
    path.write_text(yaml.safe_dump(config))
    return path


def server_env(database_url: str, endpoints: Path, **settings: Any) -> dict[str, str]:
    """``INF_*`` variables for a server without API keys: ``lease_s=3`` -> ``INF_LEASE_S=3``."""
    env = {
        "INF_DATABASE_URL": database_url,
        "INF_ENDPOINTS_FILE": str(endpoints),
        "INF_AUTH_MODE": "open",
    }
    env.update({f"INF_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@dataclass
class ServerProcess:
    """One ``python -m app serve`` subprocess and an HTTP client on it."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    client: httpx.Client = field(init=False)
    _pids: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def pids(self) -> set[int]:
        """The server's process and its children (the job runner), as seen once it was ready:
        after a kill, leases still name them."""
        if not self._pids:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
            found = children.read_text().split() if children.exists() else []
            self._pids = {self.pid, *map(int, found)}
        return self._pids

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash. Returns once the process is gone."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time; closes the client."""
        self.client.close()
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll ``/readyz`` until it answers 200 (database up, runner alive)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise ServerFailed(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if self.client.get("/readyz").status_code == 200:
                    _ = self.pids
                    return
            time.sleep(0.05)
        raise ServerFailed(f"{self.name} not ready within {timeout_s}s:\n{self.log_tail()}")


def start_server(
    name: str, env: Mapping[str, str], log_dir: Path, cpu: int | None = None
) -> ServerProcess:
    """Start ``python -m app serve --open`` on a free loopback port and wait until it is ready."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    command = [sys.executable, "-m", "app", "serve", "--open", "--port", str(port)]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(name, proc, f"http://127.0.0.1:{port}", log_path)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


WORKER_READY = "inf-engine worker running jobs"


def launch_worker(name: str, env: Mapping[str, str], log_dir: Path) -> ServerProcess:
    """Start ``python -m app worker`` without waiting (see ``wait_worker``). It answers no
    HTTP: its ``url`` is empty and its client unused."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(name, proc, "", log_path)


def wait_worker(worker: ServerProcess) -> None:
    """Wait until a launched worker reports its runner running."""
    wait_for(lambda: _reported_ready(worker), READY_TIMEOUT_S, what=f"{worker.name} to start")


def _reported_ready(worker: ServerProcess) -> bool | None:
    if not worker.alive:
        raise ServerFailed(
            f"{worker.name} exited with {worker.proc.returncode}:\n{worker.log_tail()}"
        )
    if WORKER_READY not in worker.log_tail(100_000):
        return None
    _ = worker.pids
    return True


class Servers:
    """Every server a test starts; all of them are stopped when the ``with`` block ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ServerProcess] = []

    def start(self, name: str, env: Mapping[str, str]) -> ServerProcess:
        server = start_server(name, env, self.log_dir)
        self.started.append(server)
        return server

    def start_workers(self, envs: Mapping[str, Mapping[str, str]]) -> list[ServerProcess]:
        """Launch ``python -m app worker`` processes (name -> env) at once, then wait for each."""
        workers = [launch_worker(name, env, self.log_dir) for name, env in envs.items()]
        self.started += workers
        for worker in workers:
            wait_worker(worker)
        return workers

    def stop_all(self) -> None:
        """SIGKILL: the tests need no graceful shutdown, and it is quick and certain."""
        for server in self.started:
            server.client.close()
            server.kill()


@contextlib.contextmanager
def servers(log_dir: Path) -> Iterator[Servers]:
    """``with servers(tmp_path) as running: running.start(...)``; none outlives the block."""
    running = Servers(log_dir)
    try:
        yield running
    finally:
        running.stop_all()


def wait_for(
    probe: Callable[[], T | None], timeout_s: float, interval_s: float = 0.05, what: str = ""
) -> T:
    """Call ``probe`` every ``interval_s`` until it returns something not ``None``; raise
    ``TimeoutError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s}s for {what or probe}")
        time.sleep(interval_s)


# -- jobs as seen from outside: the test graph, its inputs, requests and stored results ----

EXAMPLE_GRAPH = REPO_ROOT / "examples" / "graphs" / "extract-and-compare.json"
NODES = ("facts1", "facts2", "compare")
ITEM_TAG = re.compile(r"\[(\w+)/(\d+)\]")
CLIENT_CLOSED = 499  # the fake server's status for a request whose client went away


def marked_graph(name: str) -> dict[str, Any]:
    """extract-and-compare whose system prompts start with the node id (``facts1: ...``), so
    each request at the fake server names its node; the item is named by its inputs."""
    graph: dict[str, Any] = json.loads(EXAMPLE_GRAPH.read_text())
    graph["name"] = name
    for node in graph["nodes"]:
        node["system"] = f"{node['id']}: {node['system']}"
    return graph


def tagged_inputs(tag: str, count: int) -> list[dict[str, str]]:
    """Inputs unique per ``tag`` (a job) and index: ``[tag/i]`` starts both documents."""
    return [
        {
            "doc1": f"[{tag}/{i}] Document A: electric cars charge from the grid.",
            "doc2": f"[{tag}/{i}] Document B: hydrogen refuels fast.",
        }
        for i in range(count)
    ]


Call = tuple[str, int, str]  # (input tag, item index, node)


def request_call(entry: Mapping[str, Any]) -> Call | None:
    """The (tag, item, node) a logged fake-server request was for; ``None`` if unreadable."""
    system, prompt = entry.get("system") or "", entry.get("prompt") or ""
    node = system.split(":", 1)[0]
    found = ITEM_TAG.search(prompt)
    if node not in NODES or found is None:
        return None
    return found.group(1), int(found.group(2)), node


def request_marker(entry: Mapping[str, Any]) -> str:
    """Which server sent a logged request (see ``endpoints_for``)."""
    return str(entry.get("model") or "").rsplit("-", 1)[0]


def calls_by_marker(log: list[dict[str, Any]]) -> dict[str, list[Call]]:
    """The calls of a fake-server log, grouped by the server that made them."""
    grouped: dict[str, list[Call]] = {}
    for entry in log:
        call = request_call(entry)
        if call is not None:
            grouped.setdefault(request_marker(entry), []).append(call)
    return grouped


def interrupted_calls(log: list[dict[str, Any]], marker: str) -> list[Call]:
    """Calls of one server that were still unanswered when it went away (status 499)."""
    return [
        call
        for entry in log
        if entry.get("status") == CLIENT_CLOSED and request_marker(entry) == marker
        for call in [request_call(entry)]
        if call is not None
    ]


def all_calls(tag: str, count: int) -> set[Call]:
    return {(tag, i, node) for i in range(count) for node in NODES}


class DatabaseProbe:
    """Read-only queries on a service's database from synchronous test code."""

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()
        self._engine = create_engine(url)

    def close(self) -> None:
        self._runner.run(self._engine.dispose())
        self._runner.close()

    def __enter__(self) -> DatabaseProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def node_results(self, job_id: str) -> list[tuple[int, str]]:
        """Every stored (item, node) of a job, duplicates included if there were any."""
        stmt = select(NodeResult.item_index, NodeResult.node_id).where(NodeResult.job_id == job_id)
        return [(index, node) for index, node in self._rows(stmt)]

    def node_result_count(self, job_id: str) -> int:
        stmt = select(func.count()).select_from(NodeResult).where(NodeResult.job_id == job_id)
        return int(self._rows(stmt)[0][0])

    def node_counts(self, job_id: str) -> NodeCounts:
        """A job's stored node results counted by node and status."""
        return grouped(self._rows(stored_counts_query(job_id)))

    def input_tokens(self, job_id: str) -> int:
        """Input tokens of every stored node result of a job."""
        stmt = select(func.sum(NodeResult.input_tokens)).where(NodeResult.job_id == job_id)
        return int(self._rows(stmt)[0][0] or 0)

    def leases(self) -> dict[str, tuple[str, str | None]]:
        """job id -> (status, owner of its lease or ``None``)."""
        stmt = select(Job.id, Job.status, Job.lease_owner)
        return {job_id: (status, owner) for job_id, status, owner in self._rows(stmt)}

    def _rows(self, stmt: Any) -> list[Any]:
        return self._runner.run(self._fetch(stmt))

    async def _fetch(self, stmt: Any) -> list[Any]:
        async with self._engine.connect() as connection:
            return list(await connection.execute(stmt))


def upload_graph(client: httpx.Client, graph: Mapping[str, Any]) -> str:
    response = client.post("/v1/graphs", json=graph)
    assert response.status_code in (200, 201), response.text  # 200: already stored
    return str(response.json()["id"])


def submit_job(client: httpx.Client, graph_id: str, inputs: list[dict[str, str]]) -> str:
    response = client.post("/v1/jobs", json={"graph_id": graph_id, "inputs": inputs})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def job_status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def ended_status(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    """The job's status once it is no longer queued or running (``None`` before): a
    :func:`wait_for` probe."""
    status = job_status(client, job_id)
    return status if status["status"] not in ("queued", "running") else None
