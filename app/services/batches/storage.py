"""Uploaded files on disk: ``<files_dir>/<tenant id>/<file id>``, written and read in chunks.

>>> # size, lines = await write_upload(path, source, max_bytes)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 256 * 1024


class TooLarge(Exception):
    """The upload passed its byte limit; nothing is kept."""


@dataclass(frozen=True, slots=True)
class Written:
    """What an upload stored: its size, and its lines (a last line without a newline counts)."""

    size: int
    lines: int


def file_path(root: Path, tenant_id: str, file_id: str) -> Path:
    """Where the tenant's file lives (ids are made by the service, never by a client)."""
    return root / tenant_id / file_id


async def write_upload(target: Path, source: BinaryIO, max_bytes: int) -> Written:
    """Copy ``source`` to ``target`` chunk by chunk off the event loop; :class:`TooLarge`
    (and no file) past ``max_bytes``."""
    try:
        return await asyncio.to_thread(_copy, target, source, max_bytes)
    except BaseException:
        target.with_suffix(".part").unlink(missing_ok=True)
        raise


def _copy(target: Path, source: BinaryIO, max_bytes: int) -> Written:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    size = lines = 0
    last = b"\n"
    with partial.open("wb") as out:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"the file is larger than {max_bytes} bytes")
            lines += chunk.count(b"\n")
            last = chunk[-1:]
            out.write(chunk)
    os.replace(partial, target)
    return Written(size, lines + (last != b"\n"))


async def read_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes, a chunk at a time, each read off the event loop."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
    finally:
        handle.close()


async def read_lines(path: Path, count: int) -> AsyncIterator[list[bytes]]:
    """The file's lines, ``count`` at a time, each batch read off the event loop."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while batch := await asyncio.to_thread(_lines, handle, count):
            yield batch
    finally:
        handle.close()


def _lines(handle: BinaryIO, count: int) -> list[bytes]:
    batch: list[bytes] = []
    while len(batch) < count and (line := handle.readline()):
        batch.append(line)
    return batch


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
