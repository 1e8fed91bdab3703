"""Refuse oversized request bodies before they are read into memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services.errors import PayloadTooLarge


class BodyLimit:
    """ASGI middleware: a declared ``Content-Length`` over the limit is refused at once; a body
    that streams past it fails its read with :class:`PayloadTooLarge` (mapped to 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, self.max_bytes)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise PayloadTooLarge(f"the body is larger than {self.max_bytes} bytes")
            return message

        return counted


async def _refuse(send: Send, limit: int) -> None:
    body = (
        b'{"type":"urn:inf-engine:problem:payload-too-large","title":"Payload too large",'
        b'"status":413,"detail":"the body is larger than ' + str(limit).encode() + b' bytes"}'
    )
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
