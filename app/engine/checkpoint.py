"""Checkpoints: finished nodes survive a stopped run, and a rerun skips them.

A :class:`CheckpointStore` keeps, per key (one run, or one item of a batch), the graph hash,
a hash of the inputs and the record of every node that succeeded. Resuming refuses a
checkpoint written for another graph or other inputs.

>>> import tempfile
>>> store = FileCheckpointStore(tempfile.mkdtemp())
>>> store.load("run") is None
True
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.engine.errors import CheckpointError
from app.engine.records import NodeRecord, NodeStatus


@dataclass(slots=True)
class Checkpoint:
    """What a store holds for one key."""

    graph_hash: str
    inputs_hash: str
    records: dict[str, NodeRecord] = field(default_factory=dict)

    def to_json(self) -> str:
        records = {node: record.to_dict() for node, record in self.records.items()}
        data = {"graph_hash": self.graph_hash, "inputs_hash": self.inputs_hash, "records": records}
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        records = {node: _restored(raw) for node, raw in data["records"].items()}
        return cls(data["graph_hash"], data["inputs_hash"], records)


def _restored(raw: dict[str, Any]) -> NodeRecord:
    record = NodeRecord.from_dict(raw)
    record.restored = True
    return record


def inputs_hash(inputs: dict[str, Any]) -> str:
    text = json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class CheckpointStore(Protocol):
    """Where checkpoints live. ``save`` may buffer; ``flush`` makes everything durable."""

    def load(self, key: str) -> Checkpoint | None: ...

    def save(self, key: str, checkpoint: Checkpoint, record: NodeRecord) -> None: ...

    async def flush(self) -> None: ...


class FileCheckpointStore:
    """One JSON file per key in a directory, replaced atomically on every finished node."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        return self.directory / f"{safe}.json"

    def load(self, key: str) -> Checkpoint | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            return Checkpoint.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} is unreadable: {exc}") from None

    def save(self, key: str, checkpoint: Checkpoint, record: NodeRecord) -> None:
        checkpoint.records[record.node] = record
        _atomic_write(self._path(key), checkpoint.to_json())

    async def flush(self) -> None:
        return None  # every save is already durable


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CheckpointSession:
    """The checkpoint of one run: restores finished nodes and records new ones."""

    def __init__(
        self, store: CheckpointStore, key: str, graph_hash: str, inputs: dict[str, Any]
    ) -> None:
        self.store = store
        self.key = key
        existing = store.load(key)
        digest = inputs_hash(inputs)
        if existing is not None:
            _check_compatible(existing, key, graph_hash, digest)
        self.checkpoint = existing or Checkpoint(graph_hash, digest)

    def restored(self) -> dict[str, NodeRecord]:
        return {
            n: r for n, r in self.checkpoint.records.items() if r.status is NodeStatus.SUCCEEDED
        }

    def record(self, record: NodeRecord) -> None:
        """Persist a succeeded node; outputs that are not JSON are left to be recomputed."""
        try:
            json.dumps(record.output)
        except (TypeError, ValueError):
            return
        self.store.save(self.key, self.checkpoint, record)


def _check_compatible(existing: Checkpoint, key: str, graph_hash: str, digest: str) -> None:
    if existing.graph_hash != graph_hash:
        raise CheckpointError(
            f"checkpoint {key!r} was written for graph {existing.graph_hash[:12]}, "
            f"not this graph {graph_hash[:12]}; use a new checkpoint location"
        )
    if existing.inputs_hash != digest:
        raise CheckpointError(f"checkpoint {key!r} was written for different inputs")
