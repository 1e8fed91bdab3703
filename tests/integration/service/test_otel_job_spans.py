"""OpenTelemetry: a job's span tree reaches the SDK's in-memory exporter, under its caller's
``traceparent``, and every provider request carries the traceparent of its attempt's span.

The spans come from a real job run by the runner against the fake server; the process's
tracer provider is the test's (an installed provider is the one the service uses).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.otel_memory import (
    EXPORTER,
    SWITCH,
    ancestors,
    in_trace,
    named,
    parent_of,
    sampling_provider,
)
from tests.support.service import Service

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
ITEMS = 3
GRAPH = {
    "name": "facts-then-judge",
    "inputs": {"doc": {"type": "string"}},
    "nodes": [
        {"id": "facts", "op": "llm", "alias": "fast", "prompt": "Facts of {doc}"},
        {"id": "summary", "op": "template", "text": "Summary: {facts}"},
        {"id": "judge", "op": "llm", "alias": "smart", "prompt": "{summary}", "temperature": 0.2,
         "max_tokens": 50},
    ],
    "outputs": {"verdict": "judge"},
}  # fmt: skip


@pytest.fixture(scope="module")
def provider() -> Iterator[TracerProvider]:
    """The process's tracer provider, exporting to memory, sampling during this module."""
    yield from sampling_provider()


@pytest.fixture
def settings(settings: Settings, provider: TracerProvider) -> Settings:
    return Settings.model_validate({**settings.model_dump(), "otel_traces_exporter": "otlp"})


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


async def run_job(service: Service, headers: dict[str, str] | None = None) -> str:
    await service.client.post("/v1/graphs", json=GRAPH)
    inputs = [{"doc": f"item {i}"} for i in range(ITEMS)]
    body = {"graph_id": GRAPH["name"], "inputs": inputs}
    job = await service.client.post("/v1/jobs", json=body, headers=headers or {})
    assert job.status_code == 202, job.text
    await service.run_jobs()
    return str(job.json()["id"])


async def test_a_job_is_a_tree_of_job_item_node_and_attempt_spans_under_its_caller(
    service: Service, fake_llm: FakeLLM, spans: InMemorySpanExporter
) -> None:
    rule = {"match": "Facts of item 1", "status": 500, "times": 1}  # one retried attempt
    fake_llm.configure(capture=True, rules=[rule])
    caller = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
    job_id = await run_job(service, {"traceparent": caller, "tracestate": "vendor=1"})

    found = in_trace(spans.get_finished_spans(), int(TRACE_ID, 16))
    (job,) = named(found, "job")
    assert ancestors(job, found)[-1] == int(CALLER_SPAN, 16)  # through the request's spans
    (request,) = [s for s in found if s.name == "POST /v1/jobs"]
    assert request.context.span_id in ancestors(job, found)
    expected = {"inf.job.id": job_id, "inf.job.kind": "batch", "inf.status": "completed"}
    assert job.attributes == expected
    items = {span.attributes["inf.item.index"]: span for span in named(found, "item")}
    assert sorted(items) == list(range(ITEMS))
    for index, item in items.items():
        assert parent_of(item) == job.context.span_id
        assert item.attributes["inf.status"] == "succeeded"
        assert item.attributes["inf.tokens.input"] > 0
        assert_nodes(found, item, index, job_id)


def assert_nodes(
    found: tuple[ReadableSpan, ...], item: ReadableSpan, index: int, job_id: str
) -> None:
    below = [s for s in named(found, "node ") if parent_of(s) == item.context.span_id]
    nodes = {span.attributes["inf.node.id"]: span for span in below}
    assert sorted(nodes) == ["facts", "judge", "summary"]
    for node in nodes.values():
        assert node.attributes["inf.job.id"] == job_id
        assert node.attributes["inf.item.index"] == index
        assert node.attributes["inf.status"] == "succeeded"
    assert nodes["summary"].attributes["inf.node.op"] == "template"
    judge = nodes["judge"].attributes
    assert (judge["inf.node.op"], judge["inf.alias"], judge["inf.model"]) == (
        "llm",
        "smart",
        "smart",
    )
    assert judge["inf.tokens.output"] > 0
    assert judge["inf.cost"] >= 0
    assert judge["inf.queued_s"] >= 0
    facts = nodes["facts"]
    attempts = [s for s in found if parent_of(s) == facts.context.span_id]
    assert facts.attributes["inf.attempts"] == len(attempts) == (2 if index == 1 else 1)
    assert_attempts(attempts, index, job_id)
    (call,) = [s for s in found if parent_of(s) == nodes["judge"].context.span_id]
    assert call.attributes["gen_ai.request.temperature"] == 0.2
    assert call.attributes["gen_ai.request.max_tokens"] == 50


def assert_attempts(attempts: list[ReadableSpan], index: int, job_id: str) -> None:
    attempts.sort(key=lambda s: s.attributes["inf.attempt"])
    for number, attempt in enumerate(attempts, start=1):
        attributes = attempt.attributes
        assert attempt.name == "chat fast"
        assert attempt.kind is SpanKind.CLIENT
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.request.model"] == "fast"
        assert (attributes["inf.job.id"], attributes["inf.item.index"]) == (job_id, index)
        assert (attributes["inf.node.id"], attributes["inf.attempt"]) == ("facts", number)
    *failed, answered = attempts
    for attempt in failed:
        assert attempt.status.status_code is StatusCode.ERROR
        assert attempt.attributes["error.type"] == "500"
        assert attempt.attributes["inf.status"] == "TransientLLMError"
    got = answered.attributes
    assert got["gen_ai.response.model"] == "fast"
    assert got["inf.status"] == "succeeded"
    assert got["gen_ai.usage.input_tokens"] > 0
    assert got["gen_ai.usage.output_tokens"] > 0
    assert got["gen_ai.response.finish_reasons"] == ("stop",)
    assert "inf.cost" in got
    assert got["inf.queued_s"] >= 0


async def test_every_provider_request_carries_its_attempts_traceparent(
    service: Service, fake_llm: FakeLLM, spans: InMemorySpanExporter
) -> None:
    fake_llm.configure(capture=True)
    await run_job(service)  # no caller: the job's span starts a trace of its own

    (job,) = named(spans.get_finished_spans(), "job")
    found = in_trace(spans.get_finished_spans(), job.context.trace_id)
    (request,) = [s for s in found if s.name == "POST /v1/jobs"]
    assert request.parent is None  # the request began the trace; the job is under it
    assert request.context.span_id in ancestors(job, found)
    attempts = named(found, "chat ")
    sent = [entry["headers"].get("traceparent") for entry in fake_llm.log()]
    assert len(sent) == len(attempts) == 2 * ITEMS
    expected = {_traceparent(span) for span in attempts}
    assert set(sent) == expected


async def test_a_synchronous_run_is_traced_under_its_request(
    service: Service, fake_llm: FakeLLM, spans: InMemorySpanExporter
) -> None:
    fake_llm.configure(capture=True)
    await service.client.post("/v1/graphs", json=GRAPH)
    caller = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    body = {"graph_id": GRAPH["name"], "inputs": {"doc": "one"}}
    answer = await service.client.post("/v1/runs", json=body, headers=caller)
    assert answer.status_code == 200, answer.text

    found = in_trace(spans.get_finished_spans(), int(TRACE_ID, 16))
    (request,) = [s for s in found if s.name == "POST /v1/runs"]
    nodes = named(found, "node ")
    assert sorted(s.attributes["inf.node.id"] for s in nodes) == ["facts", "judge", "summary"]
    for node in nodes:
        assert request.context.span_id in ancestors(node, found)
    sent = {entry["headers"]["traceparent"] for entry in fake_llm.log()}
    assert sent == {_traceparent(span) for span in named(found, "chat ")}


async def test_a_sampled_out_job_records_nothing_and_still_propagates(
    service: Service, fake_llm: FakeLLM, spans: InMemorySpanExporter
) -> None:
    fake_llm.configure(capture=True)
    SWITCH.on = False  # the sampler keeps no trace
    try:
        await run_job(service)
    finally:
        SWITCH.on = True

    assert spans.get_finished_spans() == ()
    sent = [entry["headers"]["traceparent"] for entry in fake_llm.log()]
    assert len(sent) == 2 * ITEMS
    assert not any(int(header[-2:], 16) & 1 for header in sent)  # unsampled (item's context)
    assert len({header.split("-")[1] for header in sent}) == 1  # one trace: the request's


async def test_probes_and_scrapes_make_no_spans(
    service: Service, spans: InMemorySpanExporter
) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/v1/graphs"):
        await service.client.get(path)

    names = {span.name for span in spans.get_finished_spans()}
    assert "GET /v1/graphs" in names
    assert not {"GET /healthz", "GET /readyz", "GET /metrics"} & names


async def test_a_malformed_traceparent_is_ignored_not_refused(
    service: Service, spans: InMemorySpanExporter
) -> None:
    await run_job(service, {"traceparent": "00-zz-not-a-trace-01"})

    (job,) = named(spans.get_finished_spans(), "job")
    found = in_trace(spans.get_finished_spans(), job.context.trace_id)
    (request,) = [s for s in found if s.name == "POST /v1/jobs"]
    assert request.parent is None  # a trace of its own, the job under its request
    assert request.context.span_id in ancestors(job, found)


def _traceparent(span: ReadableSpan) -> str:
    context: Any = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
