"""OpenTelemetry traces of runs (the ``otel`` extra): a span per job, item, node and attempt,
and the sections a run kind opens (an optimization run, its steps: see docs/observability.md).

The tree of one job::

    job                      inf.job.id, inf.job.kind, inf.status, inf.job.resumed
      item                   inf.item.index, inf.status, inf.tokens.*, inf.cost
        node <id>            inf.node.id, inf.node.op, inf.alias, inf.model, inf.attempts, ...
          chat <model>       one per attempt of a model call (CLIENT): gen_ai.* names
            (the provider request carries this span's traceparent)

Every span carries the job id and, below the item, the item index; the calls of an
optimization's roles (``calling_for``) carry ``inf.role`` and ``inf.optimization.role``. A
resumed job's span is a child of the span its first runner opened (``jobs.trace_root``), so
the run stays one trace. The ``gen_ai.*`` names are
OpenTelemetry's semantic conventions for generative AI (``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``,
``gen_ai.response.finish_reasons``, the ``gen_ai.request.*`` sampling options); what they have
no name for is under ``inf.*`` (cost, queued time, attempt, status, alias).

The provider is the process's: one already installed (an embedding application's, or the
``opentelemetry-instrument`` wrapper's), else one built here from the ``OTEL_*`` settings with a
batching processor and the OTLP/HTTP (or console) exporter.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.db.repositories.results import ItemRow
from app.engine import LLMRequest, LLMUsage, NodeRecord, NodeStatus, ResourceConfig
from app.engine.errors import LLMCallError, error_kind
from app.engine.optimization.roles import Role, current_role
from app.lifecycle import ItemStatus, JobStatus
from app.llm.propagation import set_injector
from app.settings import Settings

_job: ContextVar[str | None] = ContextVar("inf_otel_job", default=None)
_item: ContextVar[int | None] = ContextVar("inf_otel_item", default=None)
_live: ContextVar[str | None] = ContextVar("inf_otel_live_node", default=None)
_lock = threading.Lock()
# gen_ai.provider.name of each provider (the semantic conventions' well-known values).
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "openai-compatible": "openai",
    "simulated": "inf_engine.simulated",
}
# inf.role of an optimization run's calls: what each does (inf.optimization.role: its budget role).
ROLE_NAMES = {
    Role.TASK: "forward",
    Role.VALIDATION: "forward",
    Role.BACKWARD: "critic",
    Role.OPTIMIZER: "optimizer",
    Role.JUDGE: "judge",
}


def tracing(settings: Settings, exporter: str, resources: ResourceConfig) -> OtelTracing:
    """The backend for this process; trace headers go on every provider request from now on."""
    provider = _provider(settings, exporter)
    set_injector(propagate.inject)
    names = {alias: e.provider for alias, e in resources.endpoints.items()}
    return OtelTracing(provider.get_tracer("inf-engine"), provider, names)


def _provider(settings: Settings, exporter: str) -> TracerProvider:
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
        resource = Resource.create({SERVICE_NAME: settings.otel_service_name})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(_exporter(settings, exporter)))
        trace.set_tracer_provider(provider)
        return provider


def _exporter(settings: Settings, exporter: str) -> SpanExporter:
    if exporter == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.otel_traces_url)


class OtelTracing:
    """Job and item spans for the durable-run core; node and attempt spans for the engine."""

    def __init__(self, tracer: Tracer, provider: TracerProvider, providers: Mapping[str, str]):
        self.tracer = tracer
        self.provider = provider
        self._spans = OtelSpans(tracer, providers)

    @property
    def spans(self) -> OtelSpans:
        return self._spans

    @contextmanager
    def job(
        self, job_id: str, kind: str, carrier: Mapping[str, str] | None, root: str | None
    ) -> Iterator[_JobScope]:
        token = _job.set(job_id)
        attributes: dict[str, Any] = {"inf.job.id": job_id, "inf.job.kind": kind}
        if root is not None:
            attributes["inf.job.resumed"] = True
        try:
            parent = _job_parent(carrier, root)
            with self.tracer.start_as_current_span("job", parent, attributes=attributes) as span:
                yield _JobScope(span)
        finally:
            _job.reset(token)

    @contextmanager
    def section(self, name: str, attributes: Mapping[str, Any]) -> Iterator[_SectionScope]:
        with self.tracer.start_as_current_span(name, attributes={**_where(), **attributes}) as span:
            yield _SectionScope(span)

    @contextmanager
    def item(self, index: int) -> Iterator[_ItemScope]:
        token = _item.set(index)
        try:
            with self.tracer.start_as_current_span("item", attributes=_where()) as span:
                yield _ItemScope(span)
        finally:
            _item.reset(token)

    async def flush(self) -> None:
        await asyncio.to_thread(self.provider.force_flush)

    def carrier(self) -> dict[str, str] | None:
        headers: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(headers)
        return headers if "traceparent" in headers else None


def _job_parent(carrier: Mapping[str, str] | None, root: str | None) -> Context:
    """A resumed job's span is a child of its first runner's (``root``), so its trace goes on;
    a first run's is a child of its submitter's context, else a trace of its own."""
    if root is not None:
        state = {"tracestate": carrier["tracestate"]} if carrier and "tracestate" in carrier else {}
        carrier = {"traceparent": root, **state}
    return TraceContextTextMapPropagator().extract(carrier) if carrier else Context()


class _JobScope:
    def __init__(self, span: Span) -> None:
        self.span = span

    @property
    def traceparent(self) -> str | None:
        context = self.span.get_span_context()
        if not context.is_valid:
            return None
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    def ended(self, status: str | None) -> None:
        self.span.set_attribute("inf.status", status or "abandoned")
        if status == JobStatus.FAILED:
            self.span.set_status(Status(StatusCode.ERROR, "the job failed"))


class _ItemScope:
    def __init__(self, span: Span) -> None:
        self.span = span

    def ended(self, row: ItemRow) -> None:
        self.span.set_attributes(
            {
                "inf.status": row.status,
                "inf.tokens.input": row.input_tokens,
                "inf.tokens.output": row.output_tokens,
                "inf.cost": row.cost,
            }
        )
        if row.status == ItemStatus.FAILED:
            self.span.set_status(Status(StatusCode.ERROR, (row.error or "")[:500]))


class _SectionScope:
    def __init__(self, span: Span) -> None:
        self.span = span

    def ended(self, attributes: Mapping[str, Any], error: str | None = None) -> None:
        self.span.set_attributes(attributes)
        if error is not None:
            self.span.set_status(Status(StatusCode.ERROR, error[:500]))


class OtelSpans:
    """The engine's :class:`~app.engine.execution.spans.RunSpans` on OpenTelemetry."""

    def __init__(self, tracer: Tracer, providers: Mapping[str, str]) -> None:
        self.tracer = tracer
        self.providers = providers

    @contextmanager
    def node(self, run: str, record: NodeRecord, op: str, alias: str | None) -> Iterator[object]:
        token = _live.set(record.node)
        if _sampled_out():
            try:
                yield None
            finally:
                _live.reset(token)
            return
        attributes = _node_attributes(run, record.node, op, alias)
        try:
            with self.tracer.start_as_current_span(
                f"node {record.node}", attributes=attributes, record_exception=False
            ) as span:
                yield span
                _ended(span, record)
        finally:
            _live.reset(token)

    @contextmanager
    def attempt(
        self, node: str, alias: str, request: LLMRequest, attempt: int
    ) -> Iterator[_Call | _NoCall]:
        if _sampled_out():
            yield _NO_CALL
            return
        attributes = {
            **_where(),
            **_request_attributes(request),
            "gen_ai.provider.name": PROVIDER_NAMES.get(self.providers.get(alias, ""), "openai"),
            "inf.node.id": node,
            "inf.node.op": "llm",
            "inf.alias": alias,
            "inf.attempt": attempt,
        }
        name = f"chat {request.model}"
        with self.tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                yield _Call(span)
            except BaseException as exc:
                span.set_attributes(_failure(exc))
                raise

    def node_finished(self, run: str, record: NodeRecord, op: str, alias: str | None) -> None:
        """A node that ran on the loop: its span, drawn from its record's times."""
        if record.restored or record.started_at is None or _live.get() == record.node:
            return
        if _sampled_out():
            return
        span = self.tracer.start_span(
            f"node {record.node}",
            attributes=_node_attributes(run, record.node, op, alias),
            start_time=_wall_ns(record.started_at),
        )
        _ended(span, record)
        span.end(end_time=_wall_ns(record.ended_at or record.started_at))


class _Call:
    def __init__(self, span: Span) -> None:
        self.span = span

    def answered(self, usage: LLMUsage) -> None:
        self.span.set_attributes(
            {
                "gen_ai.response.model": usage.model,
                "gen_ai.usage.input_tokens": usage.input_tokens,
                "gen_ai.usage.output_tokens": usage.output_tokens,
                "gen_ai.response.finish_reasons": [usage.finish_reason or "unknown"],
                "inf.cost": usage.cost,
                "inf.queued_s": usage.queued_s,
                "inf.status": NodeStatus.SUCCEEDED.value,
            }
        )


class _NoCall:
    def answered(self, usage: LLMUsage) -> None:
        return None


_NO_CALL = _NoCall()


def _sampled_out() -> bool:
    """Whether the current span belongs to a trace the sampler left out: its nodes and calls
    are then not spanned at all (as a parent-based sampler, the default, would decide), and
    provider requests carry the item's unsampled context."""
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled


def _failure(exc: BaseException) -> dict[str, Any]:
    """``error.type``: the HTTP status of a provider's error answer, else the error's kind."""
    kind = error_kind(exc) if isinstance(exc, Exception) else NodeStatus.CANCELLED.value
    status = exc.status_code if isinstance(exc, LLMCallError) else None
    return {"error.type": str(status) if status else kind, "inf.status": kind}


def _where() -> dict[str, Any]:
    """The job id, item index and optimization role of the current task, as attributes."""
    where: dict[str, Any] = {}
    if (job := _job.get()) is not None:
        where["inf.job.id"] = job
    if (item := _item.get()) is not None:
        where["inf.item.index"] = item
    if (role := current_role()) is not None:
        where["inf.role"] = ROLE_NAMES[role]
        where["inf.optimization.role"] = role.value
    return where


def _node_attributes(run: str, node: str, op: str, alias: str | None) -> dict[str, Any]:
    attributes = {**_where(), "inf.node.id": node, "inf.node.op": op}
    if "inf.item.index" not in attributes:
        attributes["inf.run"] = run
    if alias is not None:
        attributes["inf.alias"] = alias
    return attributes


def _request_attributes(request: LLMRequest) -> dict[str, Any]:
    options = {
        "gen_ai.request.temperature": request.temperature,
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.request.seed": request.seed,
        "gen_ai.request.top_p": request.top_p,
        "gen_ai.request.choice.count": request.n,
    }
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": request.model,
        **{name: value for name, value in options.items() if value is not None},
    }


def _ended(span: Span, record: NodeRecord) -> None:
    """A node span's outcome, from its final record."""
    attributes: dict[str, Any] = {
        "inf.status": record.status.value,
        "inf.attempts": record.attempts,
    }
    usage = record.usage
    if usage is not None:
        attributes.update(
            {
                "inf.model": usage.model,
                "inf.tokens.input": usage.input_tokens,
                "inf.tokens.output": usage.output_tokens,
                "inf.cost": usage.cost,
                "inf.queued_s": usage.queued_s,
            }
        )
    span.set_attributes(attributes)
    if record.status is NodeStatus.FAILED:
        span.set_attribute("error.type", record.error_type or "error")
        span.set_status(Status(StatusCode.ERROR, (record.error or "")[:500]))


def _wall_ns(moment: float) -> int:
    """A time of the engine's clock (``time.monotonic``) as Unix nanoseconds."""
    return time.time_ns() - int((time.monotonic() - moment) * 1e9)
