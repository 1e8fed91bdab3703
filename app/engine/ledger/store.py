"""Where ledger entries live: the store protocol, a directory of JSON files, and memory.

The service's store is in the database (``app.services.ledger``), scoped to one tenant.

>>> import asyncio, tempfile
>>> store = FileLedgerStore(tempfile.mkdtemp())
>>> asyncio.run(store.get("v1:00")) is None
True
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Protocol

from app.engine.errors import ConfigError
from app.engine.ledger.entries import LedgerEntry

NEAREST_SCAN = 200
"""How many of a node's most recent entries strict replay compares with a missing request."""


class LedgerStore(Protocol):
    """A ledger: answers by key. ``put`` keeps the first answer stored under a key."""

    async def get(self, key: str) -> LedgerEntry | None:
        """The entry recorded under ``key``, if any."""
        ...

    async def put(self, entry: LedgerEntry) -> None:
        """Record ``entry`` unless its key already has one."""
        ...

    async def recorded(self, node: str, limit: int = NEAREST_SCAN) -> list[LedgerEntry]:
        """The most recent entries node ``node`` recorded, newest first."""
        ...


class MemoryLedgerStore:
    """A ledger in a dict, for one process (tests, notebooks)."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}

    async def get(self, key: str) -> LedgerEntry | None:
        return self.entries.get(key)

    async def put(self, entry: LedgerEntry) -> None:
        self.entries.setdefault(entry.key, entry)

    async def recorded(self, node: str, limit: int = NEAREST_SCAN) -> list[LedgerEntry]:
        found = [e for e in self.entries.values() if e.node == node]
        return sorted(found, key=lambda e: e.created_at, reverse=True)[:limit]


class FileLedgerStore:
    """One JSON file per key, ``directory/<2 hex digits of the hash>/<key>.json``, written
    atomically: a lookup opens one file. Finding a node's entries (strict replay's nearest
    request, on a miss only) reads them all."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def get(self, key: str) -> LedgerEntry | None:
        return await asyncio.to_thread(self._get, key)

    async def put(self, entry: LedgerEntry) -> None:
        await asyncio.to_thread(self._put, entry)

    async def recorded(self, node: str, limit: int = NEAREST_SCAN) -> list[LedgerEntry]:
        return await asyncio.to_thread(self._recorded, node, limit)

    def _path(self, key: str) -> Path:
        digest = key.rpartition(":")[2]
        return self.directory / _safe(digest[:2]) / f"{_safe(key)}.json"

    def _get(self, key: str) -> LedgerEntry | None:
        path = self._path(key)
        return self._read(path) if path.exists() else None

    def _put(self, entry: LedgerEntry) -> None:
        path = self._path(entry.key)
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            _atomic_write(path, json.dumps(entry.to_dict(), ensure_ascii=False))

    def _recorded(self, node: str, limit: int) -> list[LedgerEntry]:
        entries = (self._read(path) for path in self.directory.glob("*/*.json"))
        found = [e for e in entries if e.node == node]
        return sorted(found, key=lambda e: e.created_at, reverse=True)[:limit]

    def _read(self, path: Path) -> LedgerEntry:
        try:
            return LedgerEntry.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"ledger file {path} is unreadable: {exc}") from None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
