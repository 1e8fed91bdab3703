"""The HTTP server's own limits, below the ASGI app: header size, header time, connections.

uvicorn's httptools parser accepts request headers of any size and gives a connection that
has not sent a whole request head all the time it wants (its keep-alive timeout only starts
after a response). ``limited_protocol`` closes both holes: a request line and headers over
``http_max_header_bytes`` get ``431``; a connection that does not deliver them within
``http_header_timeout_s`` gets ``408`` (or is closed if it sent nothing).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.api.problems import problem_document
from app.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config`` that enforce the settings."""
    return {
        "http": limited_protocol(settings.http_max_header_bytes, settings.http_header_timeout_s),
        "limit_concurrency": settings.http_max_connections,
        "timeout_keep_alive": settings.http_keep_alive_s,
        "timeout_graceful_shutdown": settings.http_shutdown_timeout_s,
        "forwarded_allow_ips": settings.http_forwarded_allow_ips,
    }


def limited_protocol(limit_bytes: int, timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with these header limits."""

    class Limited(LimitedHttpToolsProtocol):
        max_header_bytes = limit_bytes
        header_timeout_s = timeout_s

    return Limited


def problem_response(slug: str, detail: str) -> bytes:
    """A whole ``application/problem+json`` response that closes the connection (its reason
    phrase is the problem's title)."""
    document = problem_document(slug, detail)
    body = json.dumps(document)
    head = (
        f"HTTP/1.1 {document['status']} {document['title']}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return (head + body).encode()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes and time a request head takes, and refuses one that takes too much.

    Bytes are counted per received chunk while a head is incomplete, so a head is refused once
    it is over the limit and still unfinished: memory stays within the limit plus one read.
    """

    max_header_bytes = 64 * 1024
    header_timeout_s = 15.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # waiting for (the rest of) a request line and headers
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._arm_head_timer()  # the next request on a kept-alive connection begins
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_header_bytes:
            detail = f"the request line and headers exceed {self.max_header_bytes} bytes"
            self._refuse("headers-too-large", detail)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._idle:  # a response is still being written: time the head after it
            self._arm_head_timer()
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        detail = f"the request line and headers took longer than {self.header_timeout_s:g} s"
        self._refuse("request-timeout", detail)

    @property
    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _refuse(self, slug: str, detail: str) -> None:
        if self.transport.is_closing():
            return
        self._cancel_head_timer()
        if self._idle:  # else a response is being written: do not interleave another one
            self.transport.write(problem_response(slug, detail))
        self.transport.close()
        self.logger.warning("refused a request from %s: %s", self.client, detail)
