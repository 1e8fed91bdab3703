"""Hooks for code that watches runs (profiler, service metrics, progress)."""

from __future__ import annotations

from typing import Protocol

from app.engine.records import NodeRecord


class Observer(Protocol):
    """Called when a node reaches a final state; must be quick and must not raise."""

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None: ...
