"""The real service in a background thread, and a loopback proxy that breaks an event stream.

The client is synchronous, so the service cannot share the test's thread: uvicorn serves
``create_app(settings)`` on its own event loop in a thread, with the job runner inline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from app.api.app import create_app
from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.processes import wait_for
from tests.support.service import endpoints_file

MAX_CONCURRENT = 4
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
EVENT_START = b"\nid: "  # every event's first field (no response header is named "id")


ECHO_GRAPH: dict[str, Any] = {
    "name": "echo",
    "inputs": {"text": {"type": "string"}},
    "nodes": [
        {"id": "answer", "op": "llm", "alias": "fast", "system": "Echo.", "prompt": "{text}"}
    ],
    "outputs": {"answer": "answer"},
}


def service_settings(tmp_path: Path, fake_llm: FakeLLM, **overrides: Any) -> Settings:
    """SQLite in ``tmp_path``, no API keys, the runner inline, the endpoints on the fake
    server; progress events and event polls a few times a second."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'service.sqlite'}",
        "auth_mode": "open",
        "endpoints_file": endpoints_file(
            tmp_path, fake_llm.base_url, max_concurrent=MAX_CONCURRENT
        ),
        "runner_mode": "inline",
        "poll_s": 0.2,
        "flush_interval_s": 0.01,
        "progress_interval_s": 0.2,
        "events_poll_s": 0.05,
        **overrides,
    }
    return Settings(**values)


class _ThreadServer(uvicorn.Server):
    """Uvicorn without signal handlers, which only the main thread may install."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def serve_in_thread(settings: Settings) -> Iterator[str]:
    """Serve the app on 127.0.0.1 (an ephemeral port) in a thread; yields its base URL."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = _ThreadServer(config)
    thread = threading.Thread(target=server.run, name="service", daemon=True)
    thread.start()
    try:
        wait_for(lambda: _started(server, thread), START_TIMEOUT_S, what="the service to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)


def _started(server: uvicorn.Server, thread: threading.Thread) -> bool | None:
    if not thread.is_alive():
        raise RuntimeError("the service stopped during start-up (see the log above)")
    return True if server.started else None


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``port``.

    The first connection that asks for an event stream is cut after ``events`` whole events,
    in the middle of the next one (as a network failure would cut it); every other
    connection passes through. ``heads`` holds each connection's first request head.
    """

    def __init__(self, port: int, events: int) -> None:
        self.port = port
        self.events = events
        self.heads: list[str] = []
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> CuttingProxy:
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                _shutdown(sock)
        for thread in list(self._threads):
            thread.join(STOP_TIMEOUT_S)
        self._listener.close()

    def _spawn(self, target: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return thread

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            self._spawn(self._connection, conn)

    def _connection(self, downstream: socket.socket) -> None:
        with downstream, socket.create_connection(("127.0.0.1", self.port)) as upstream:
            with self._lock:
                self._sockets += [downstream, upstream]
            head = _read_head(downstream)
            self.heads.append(head.decode("latin-1"))
            upstream.sendall(head)
            to_server = self._spawn(_pump, downstream, upstream)
            if b"/events" in head.split(b"\r\n", 1)[0] and not self.cut.is_set():
                self.cut.set()
                self._cut_stream(upstream, downstream)
            else:
                _pump(upstream, downstream)
            to_server.join(STOP_TIMEOUT_S)

    def _cut_stream(self, upstream: socket.socket, downstream: socket.socket) -> None:
        """Forward the answer until ``events`` events have passed, then the first bytes of the
        next one, and break both connections."""
        received = b""
        with contextlib.suppress(OSError):
            while chunk := upstream.recv(65536):
                sent = len(received)
                received += chunk
                cut = _nth(received, EVENT_START, self.events + 1)
                if cut is not None:
                    downstream.sendall(received[sent : max(sent, cut + len(EVENT_START) + 1)])
                    break
                downstream.sendall(chunk)
        _shutdown(downstream)
        _shutdown(upstream)


def _read_head(conn: socket.socket) -> bytes:
    """The request bytes up to the end of the head (what arrived of a body comes along)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _nth(data: bytes, marker: bytes, n: int) -> int | None:
    """Where the ``n``-th ``marker`` starts in ``data``, or ``None``."""
    position = -1
    for _ in range(n):
        position = data.find(marker, position + 1)
        if position < 0:
            return None
    return position


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
