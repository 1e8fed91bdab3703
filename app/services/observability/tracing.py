"""Whether and how this process traces its runs, without importing a tracing library.

:func:`run_tracing` gives the OpenTelemetry backend (:mod:`.otel`, the ``otel`` extra) when
the ``OTEL_*`` settings ask for traces, else ``None``: with tracing off nothing is imported and
the runner, the engine and the provider clients take no tracing path at all. A job submitted
with a W3C ``traceparent`` header keeps it (:func:`trace_carrier`), so that whichever process
runs the job makes the job's span a child of the caller's (of the request's span, when the
HTTP process traces too: FastAPI makes one per request, under the caller's ``traceparent``).
A run's first traced span is kept with the job (``jobs.trace_root``) and a runner that resumes
the run opens its span under it (:func:`job_scope`): one trace across a crash.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

from app.engine.execution.spans import RunSpans
from app.settings import Settings

if TYPE_CHECKING:
    from app.db.models import Job
    from app.db.repositories.results import ItemRow
    from app.engine import ResourceConfig

log = logging.getLogger(__name__)
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
MAX_TRACESTATE = 512


class JobScope(Protocol):
    """A job's span while the job runs."""

    @property
    def traceparent(self) -> str | None:
        """The span's W3C ``traceparent``: the trace root a resumed run continues."""
        ...

    def ended(self, status: str | None) -> None:
        """The run ended with ``status`` (``None``: abandoned to another runner)."""
        ...


class ItemScope(Protocol):
    """An item's span while the item runs."""

    def ended(self, row: ItemRow) -> None:
        """The item ended as ``row`` says (status, tokens, cost)."""
        ...


class SectionScope(Protocol):
    """A span around one part of a run's work (an optimization run, one of its steps)."""

    def ended(self, attributes: Mapping[str, Any], error: str | None = None) -> None:
        """The part ended with these attributes; ``error`` marks it failed."""
        ...


class RunTracing(Protocol):
    """What the durable-run core and the run kinds use of a tracing backend."""

    @property
    def spans(self) -> RunSpans:
        """The engine's hooks (``ExecutionSettings(spans=...)``)."""
        ...

    def job(
        self, job_id: str, kind: str, carrier: Mapping[str, str] | None, root: str | None
    ) -> AbstractContextManager[JobScope]:
        """The job's span, current while it runs; ``carrier`` holds its caller's context and
        ``root`` the ``traceparent`` of the span an earlier runner opened for it (the parent
        of a resumed run's span, so the run keeps one trace)."""
        ...

    def section(
        self, name: str, attributes: Mapping[str, Any]
    ) -> AbstractContextManager[SectionScope]:
        """A span named ``name``, current while the block runs (a child of the current one)."""
        ...

    def item(self, index: int) -> AbstractContextManager[ItemScope]:
        """An item's span, current while it runs (a child of the current job's)."""
        ...

    async def flush(self) -> None:
        """Export every ended span now (before the process stops or goes idle)."""
        ...

    def carrier(self) -> dict[str, str] | None:
        """The current trace context as W3C headers (``None`` outside any span)."""
        ...


class _NoScope:
    traceparent = None

    def ended(self, *_: Any) -> None:
        return None


NO_SCOPE = _NoScope()


def run_tracing(settings: Settings, resources: ResourceConfig) -> RunTracing | None:
    """The process's tracing backend, or ``None`` when tracing is off (or cannot be had)."""
    exporter = settings.otel_exporter
    if exporter is None:
        return None
    try:
        from app.services.observability import otel
    except ImportError as exc:
        log.warning("OTEL_* asks for traces but the otel extra is not installed: %s", exc)
        return None
    return otel.tracing(settings, exporter, resources)


def engine_spans(tracing: RunTracing | None) -> RunSpans | None:
    """What ``ExecutionSettings(spans=...)`` takes: the backend's engine hooks, or ``None``."""
    return tracing.spans if tracing is not None else None


def job_scope(tracing: RunTracing | None, job: Job) -> AbstractContextManager[JobScope]:
    """The job's scope (a no-op without tracing); its caller's context is in its ``spec``,
    the span its first runner opened in ``trace_root``."""
    if tracing is None:
        return nullcontext(NO_SCOPE)
    carrier = job.spec.get("trace") if isinstance(job.spec, dict) else None
    carrier = carrier if isinstance(carrier, dict) else None
    return tracing.job(job.id, job.kind, carrier, job.trace_root)


def section_scope(
    tracing: RunTracing | None, name: str, attributes: Mapping[str, Any]
) -> AbstractContextManager[SectionScope]:
    """A span around part of a run's work (a no-op without tracing)."""
    return nullcontext(NO_SCOPE) if tracing is None else tracing.section(name, attributes)


def item_scope(tracing: RunTracing | None, index: int) -> AbstractContextManager[ItemScope]:
    """The item's scope (a no-op without tracing)."""
    return nullcontext(NO_SCOPE) if tracing is None else tracing.item(index)


def submitted_context(
    tracing: RunTracing | None, headers: Mapping[str, str]
) -> dict[str, str] | None:
    """The trace context to keep with a job a request submits: the request's own span (FastAPI
    traces every request, a child of the caller's ``traceparent``) when this process traces,
    else the caller's headers as they came."""
    if tracing is not None and (current := tracing.carrier()) is not None:
        return current
    return trace_carrier(headers)


def trace_carrier(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The W3C trace context of a request (``traceparent`` and ``tracestate``), to keep with
    the job it submits; ``None`` when it has none or a malformed one (which W3C says to
    ignore, not to refuse)."""
    parent = headers.get("traceparent", "").strip().lower()
    if not TRACEPARENT.match(parent) or parent.startswith("ff"):
        return None
    carrier = {"traceparent": parent}
    state = headers.get("tracestate", "").strip()
    if state and len(state) <= MAX_TRACESTATE:
        carrier["tracestate"] = state
    return carrier
