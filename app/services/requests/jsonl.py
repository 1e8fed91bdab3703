"""Read uploaded JSONL line by line, with limits, without holding the file in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, Protocol

from app.services.errors import InvalidInput, Issue, Malformed, PayloadTooLarge
from app.services.requests.documents import MAX_DEPTH, parse_json

CHUNK = 64 * 1024
BATCH_BYTES = 256 * 1024


class Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


async def jsonl_values(
    source: Readable,
    max_line_bytes: int,
    max_lines: int,
    max_depth: int = MAX_DEPTH,
    field: str = "inputs",
) -> AsyncIterator[tuple[int, Any]]:
    """(line number, parsed and checked JSON) for each non-blank line; problems name their
    line and ``field`` (see :func:`app.services.requests.documents.parse_json` for what a line
    may not contain).

    Lines are parsed in batches of about :data:`BATCH_BYTES` in a worker thread, off the
    event loop."""
    batch: list[tuple[int, bytes]] = []
    count = size = 0
    async for number, line in _lines(source, max_line_bytes, field):
        if not line.strip():
            continue
        count += 1
        if count > max_lines:
            await asyncio.to_thread(_parse_all, batch, max_depth, field)  # earlier errors first
            raise PayloadTooLarge(
                f"more than {max_lines} lines", [Issue(field, "too many lines", line=number)]
            )
        batch.append((number, line))
        size += len(line)
        if size >= BATCH_BYTES:
            for parsed in await asyncio.to_thread(_parse_all, batch, max_depth, field):
                yield parsed
            batch, size = [], 0
    for parsed in await asyncio.to_thread(_parse_all, batch, max_depth, field):
        yield parsed


def _parse_all(lines: list[tuple[int, bytes]], max_depth: int, field: str) -> list[tuple[int, Any]]:
    return [(number, _parse(number, line, max_depth, field)) for number, line in lines]


def _parse(number: int, line: bytes, max_depth: int, field: str) -> Any:
    try:
        return parse_json(line, field, max_depth)
    except (Malformed, InvalidInput) as exc:
        issues = [replace(issue, line=number) for issue in exc.issues]
        raise type(exc)(f"line {number}: {exc.detail}", issues) from None


async def _lines(
    source: Readable, max_line_bytes: int, field: str
) -> AsyncIterator[tuple[int, bytes]]:
    buffer, number = b"", 0
    while chunk := await source.read(CHUNK):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            number += 1
            yield number, _checked(line, number, max_line_bytes, field)
        _check_partial(buffer, number + 1, max_line_bytes, field)
    if buffer:
        yield number + 1, _checked(buffer, number + 1, max_line_bytes, field)


def _checked(line: bytes, number: int, max_line_bytes: int, field: str) -> bytes:
    _check_partial(line, number, max_line_bytes, field)
    return line.rstrip(b"\r")


def _check_partial(line: bytes, number: int, max_line_bytes: int, field: str) -> None:
    if len(line) > max_line_bytes:
        detail = f"line {number} is longer than {max_line_bytes} bytes"
        raise PayloadTooLarge(detail, [Issue(field, "line too long", line=number)])
