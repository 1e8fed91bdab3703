"""The process's OpenTelemetry tracer provider for in-process span tests: spans go to one
in-memory exporter, sampled only while a test module that uses it runs.

The provider is set once per process (the SDK allows no second), so every module that reads
spans shares this one; the service takes the installed provider as its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from app.llm.propagation import set_injector


class Switch(Sampler):
    """Samples while ``on``: outside the span tests the provider makes only non-recording
    spans, so other tests' requests cost next to nothing."""

    def __init__(self) -> None:
        self.on = False

    def should_sample(
        self, parent: Any, trace_id: int, name: str, kind: Any = None, attributes: Any = None,
        links: Any = None, trace_state: Any = None,
    ) -> SamplingResult:  # fmt: skip
        decision = Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP
        return SamplingResult(decision, attributes if self.on else None, trace_state)

    def get_description(self) -> str:
        return "switch"


SWITCH = Switch()
EXPORTER = InMemorySpanExporter()
_installed: list[TracerProvider] = []


def sampling_provider() -> Iterator[TracerProvider]:
    """The process's provider, exporting to :data:`EXPORTER`, sampling until the generator
    resumes (a module-scoped fixture's body)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        current = TracerProvider(sampler=SWITCH)
        trace.set_tracer_provider(current)
    if current not in _installed:  # one processor, however many modules use it
        current.add_span_processor(SimpleSpanProcessor(EXPORTER))
        _installed.append(current)
    SWITCH.on = True
    try:
        yield current
    finally:
        SWITCH.on = False
        set_injector(None)


def named(found: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in found if span.name.startswith(prefix)]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def in_trace(found: tuple[ReadableSpan, ...], trace_id: int) -> tuple[ReadableSpan, ...]:
    return tuple(span for span in found if span.context.trace_id == trace_id)


def ancestors(span: ReadableSpan, found: tuple[ReadableSpan, ...]) -> list[int]:
    """The span ids above ``span``, nearest first (the last may be a remote caller's)."""
    by_id = {s.context.span_id: s for s in found}
    chain: list[int] = []
    while (parent := parent_of(span)) is not None:
        chain.append(parent)
        if parent not in by_id:
            break
        span = by_id[parent]
    return chain
