"""Span hooks: how a tracing backend (OpenTelemetry, in the service) sees a run's work.

The engine imports no tracing library. A :class:`RunSpans` passed as
``ExecutionSettings(spans=...)`` is asked for a scope around every model and tool node and
around every attempt of a model call. Each scope is entered in the task doing the work, so a
backend that keeps its current span in a context variable (as OpenTelemetry does) has the
node's span current during its attempts, and an attempt's span current while its HTTP request
is made. Nodes that run on the loop (template, get, parse_json, classify, coalesce) are
reported as they end, as to any :class:`~app.engine.Observer`, with their start and end.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from app.engine.llm import LLMRequest
from app.engine.records import LLMUsage, NodeRecord


class CallScope(Protocol):
    """One attempt of a model call, while it runs."""

    def answered(self, usage: LLMUsage) -> None:
        """The attempt got its answer (tokens, cost, the time it queued)."""
        ...


class RunSpans(Protocol):
    """Scopes around a run's nodes and calls; must be quick and must not raise."""

    def node(
        self, run: str, record: NodeRecord, op: str, alias: str | None
    ) -> AbstractContextManager[object]:
        """Around a model or tool node; ``record`` is final when the scope exits."""
        ...

    def attempt(
        self, node: str, alias: str, request: LLMRequest, attempt: int
    ) -> AbstractContextManager[CallScope]:
        """Around attempt number ``attempt`` of a model call (its wait for a slot included);
        an error leaving the scope is the attempt's."""
        ...

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        """Every node's end (an :class:`~app.engine.Observer`): a backend draws the nodes that
        had no scope from their record."""
        ...
