"""Task B over HTTP: start the service offline, upload the graph and its datasets, run an
optimization, and print the validation score curve as the run's events arrive.

``make optimize-demo`` runs it. The service gets a temporary SQLite file and the simulated
``task``, ``critic`` and ``optimizer`` endpoints; nothing leaves the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

# examples/optimization/tasks.py: this script's directory is the first on the import path
from optimization.tasks import ANSWER_LOSS, ROOT, row_splits

from app.client import Client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(directory: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INF_DATABASE_URL": f"sqlite+aiosqlite:///{directory}/demo.sqlite"}
    cli = Path(sys.executable).parent / "inf-engine"
    command = [str(cli), "serve", "--open", "--port", str(port)]
    with Path(directory, "service.log").open("ab") as log:  # the child keeps its own descriptor
        service = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return service
        except httpx.TransportError:
            time.sleep(0.2)
    service.kill()
    raise SystemExit("the service did not start within 60 s")


def upload(client: Client) -> dict[str, Any]:
    graph = client.push_graph(ROOT / "task-b" / "graph.json")
    ids = {
        part: client.push_dataset(rows, name=f"task-b-{part}")["id"]
        for part, rows in row_splits("task-b").items()
    }
    return {"graph_id": graph["id"], **ids}


def follow(client: Client, run_id: str) -> None:
    decision = "baseline"
    for event in client.optimization_events(run_id):
        if event.kind in ("accepted", "rejected"):
            decision = f"{event.kind}: {event.data.get('reason', '')}"
        elif event.kind == "validated":
            score, bar = event.data["score"], "#" * round(40 * event.data["score"])
            print(f"step {event.data['step']:>3}  val {score:4.2f}  {bar:<40}  {decision}")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        service = start_service(directory, port)
        try:
            with Client(f"http://127.0.0.1:{port}") as client:
                spec = {
                    **upload(client), "loss": ANSWER_LOSS,
                    "schedule": {"epochs": 3, "batch_size": 5}, "seed": 1,
                    "budget": {"max_calls": 20_000},
                }  # fmt: skip
                run = client.start_optimization(spec)
                follow(client, run["id"])
                final = client.optimization(run["id"])
                print(f"state {final['state']}, stop reason {final['stop_reason']}")
                test = final["test"]
                print(f"test accuracy of the best version: {test['mean']:.2f} "
                      f"[{test['low']:.2f}, {test['high']:.2f}] on {test['n']} items")  # fmt: skip
        finally:
            service.terminate()
            service.wait(30)


if __name__ == "__main__":
    main()
