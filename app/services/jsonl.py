"""Read uploaded JSONL line by line, with limits, without holding the file in memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from app.services.errors import Issue, Malformed, PayloadTooLarge

CHUNK = 64 * 1024


class Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


async def jsonl_values(
    source: Readable, max_line_bytes: int, max_lines: int
) -> AsyncIterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line; problems name their line."""
    count = 0
    async for number, line in _lines(source, max_line_bytes):
        if not line.strip():
            continue
        count += 1
        if count > max_lines:
            raise PayloadTooLarge(
                f"more than {max_lines} lines", [Issue("inputs", "too many lines", line=number)]
            )
        yield number, _parse(number, line)


def _parse(number: int, line: bytes) -> Any:
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise Malformed(
            f"line {number} is not valid UTF-8", [Issue("inputs", "not valid UTF-8", line=number)]
        ) from None
    except json.JSONDecodeError as exc:
        raise Malformed(
            f"line {number} is not valid JSON", [Issue("inputs", exc.msg, line=number)]
        ) from None


async def _lines(source: Readable, max_line_bytes: int) -> AsyncIterator[tuple[int, bytes]]:
    buffer, number = b"", 0
    while chunk := await source.read(CHUNK):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            number += 1
            yield number, _checked(line, number, max_line_bytes)
        _check_partial(buffer, number + 1, max_line_bytes)
    if buffer:
        yield number + 1, _checked(buffer, number + 1, max_line_bytes)


def _checked(line: bytes, number: int, max_line_bytes: int) -> bytes:
    _check_partial(line, number, max_line_bytes)
    return line.rstrip(b"\r")


def _check_partial(line: bytes, number: int, max_line_bytes: int) -> None:
    if len(line) > max_line_bytes:
        detail = f"line {number} is longer than {max_line_bytes} bytes"
        raise PayloadTooLarge(detail, [Issue("inputs", "line too long", line=number)])
