"""The HTTP server's limits, probed with raw sockets against ``python -m app serve``.

A huge request head is refused instead of being read to the end, and connections that never
finish a request head are closed after ``INF_HTTP_HEADER_TIMEOUT_S`` however many there are.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support.db import sqlite_url
from tests.support.fake_llm import FakeLLM
from tests.support.processes import ServerProcess, endpoints_for, server_env, servers

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 2
CLOSE_DEADLINE_S = 60.0  # generous: the server closes them after HEADER_TIMEOUT_S
SLOW_CONNECTIONS = 300
HUGE_HEADER_BYTES = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def server(
    fake_llm_server: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for the module: its header timeout is short, it runs no jobs."""
    directory = tmp_path_factory.mktemp("limits")
    endpoints = endpoints_for(directory / "endpoints.yaml", fake_llm_server.base_url, "limits")
    env = server_env(
        sqlite_url(directory / "service.sqlite"),
        endpoints,
        http_header_timeout_s=HEADER_TIMEOUT_S,
        runner_enabled="false",
    )
    with servers(directory) as running:
        yield running.start("limits", env)


def address(server: ServerProcess) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


@contextlib.contextmanager
def connections(server: ServerProcess, count: int) -> Iterator[list[socket.socket]]:
    opened = [socket.create_connection(address(server), timeout=30) for _ in range(count)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def answer(sock: socket.socket) -> bytes:
    """What the server sent until it closed (a reset counts as a close)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def send_huge_head(sock: socket.socket) -> int:
    """Send a request whose one header is 40 MB; how many bytes the server took."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nX-Padding: ")
    sent, chunk = 0, b"a" * 65536
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        while sent < HUGE_HEADER_BYTES:
            sock.sendall(chunk)
            sent += len(chunk)
        sock.sendall(b"\r\n\r\n")
    return sent


def closed_within(socks: list[socket.socket], deadline_s: float) -> int:
    """How many of ``socks`` the server closed (after any answer) before the deadline."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed, end = 0, time.monotonic() + deadline_s
    while closed < len(socks) and time.monotonic() < end:
        for key, _ in selector.select(timeout=1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                selector.unregister(sock)
                closed += 1
    selector.close()
    return closed


def test_a_40_mb_header_is_refused(server: ServerProcess) -> None:
    with connections(server, 1) as (sock,):
        sent = send_huge_head(sock)
        received = answer(sock)

    assert sent < HUGE_HEADER_BYTES  # the server stopped reading long before the end
    assert not received.startswith(b"HTTP/1.1 200")
    if received:  # the answer may be lost to the reset of the unread rest
        assert received.startswith(b"HTTP/1.1 431 ")
        assert b"urn:inf-engine:problem:headers-too-large" in received
    assert server.client.get("/healthz").status_code == 200


def test_an_unfinished_request_head_gets_408(server: ServerProcess) -> None:
    with connections(server, 1) as (sock,):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: pro")
        received = answer(sock)

    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"urn:inf-engine:problem:request-timeout" in received


def test_hundreds_of_slow_connections_are_closed(server: ServerProcess) -> None:
    with connections(server, SLOW_CONNECTIONS) as socks:
        for index, sock in enumerate(socks):
            if index % 2:  # half send part of a head, half send nothing at all
                sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        closed = closed_within(socks, CLOSE_DEADLINE_S)

    assert closed == SLOW_CONNECTIONS
    assert server.client.get("/healthz").status_code == 200


def test_a_head_sent_a_byte_at_a_time_is_cut_off(server: ServerProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\n" + b"X-Drip: " + b"a" * 1000 + b"\r\n\r\n"
    with connections(server, 1) as (sock,):
        sock.settimeout(0.2)
        received, end = b"", time.monotonic() + CLOSE_DEADLINE_S
        for byte in head:
            if time.monotonic() > end:
                break
            with contextlib.suppress(TimeoutError):
                received += sock.recv(65536)  # waits up to 0.2 s: the drip's pace
            if received:
                break
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(bytes([byte]))

    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_large_body_and_kept_alive_requests_are_served(server: ServerProcess) -> None:
    body = b'{"name": "' + b"x" * 500_000 + b'"}'  # far more than the head limit, in one send
    request = (
        b"POST /v1/graphs HTTP/1.1\r\nHost: probe\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with connections(server, 1) as (sock,):
        sock.sendall(request + body + b"GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n")
        sock.settimeout(30)
        received = b""
        while received.count(b"HTTP/1.1 ") < 2 and (chunk := sock.recv(65536)):
            received += chunk

    assert received.startswith(b"HTTP/1.1 422 ")  # judged by the app, not refused as a head
    assert b"HTTP/1.1 200 OK" in received
