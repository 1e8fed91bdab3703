"""OpenTelemetry over OTLP/HTTP: a real ``serve`` process, configured by the standard OTEL_*
variables only, posts its job's spans to a collector on loopback.

The collector is a plain ``http.server`` that parses each request as an OTLP
``ExportTraceServiceRequest`` (protobuf, from the ``opentelemetry-proto`` package) and keeps the
spans. The job's spans (from the runner process) and the request's (from the HTTP process)
arrive in the caller's trace, under the service name of ``OTEL_SERVICE_NAME``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.db import migrated_sqlite
from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    Servers,
    endpoints_for,
    job_status,
    server_env,
    upload_graph,
    wait_for,
)

pytestmark = pytest.mark.slow

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
SERVICE = "inf-engine-e2e"
ITEMS = 4
GRAPH = {
    "name": "one-call",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": "answer", "op": "llm", "alias": "fast", "prompt": "{text}"}],
    "outputs": {"answer": "answer"},
}


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: every span posted to ``/v1/traces``, with its service."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.spans: list[tuple[str, Any]] = []  # (service.name, Span message)
        self.paths: set[str] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def keep(self, path: str, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            self.paths.add(path)
            for resource_spans in request.resource_spans:
                service = _attributes(resource_spans.resource.attributes).get("service.name", "")
                for scope_spans in resource_spans.scope_spans:
                    self.spans += [(service, span) for span in scope_spans.spans]


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)  # a malformed body raises: the test sees no spans
        self.server.keep(self.path, request)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_jobs_spans_reach_an_otlp_receiver_on_loopback(
    collector: Collector, fake_llm: FakeLLM, running: Servers, tmp_path: Path
) -> None:
    fake_llm.configure(latency_ms=10)
    endpoints = endpoints_for(tmp_path / "endpoints.yaml", fake_llm.base_url, "otel")
    database = migrated_sqlite(tmp_path / "otel.sqlite")  # here: the server only has to start
    env = server_env(database, endpoints, auto_migrate="false")
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_SERVICE_NAME=SERVICE,
        OTEL_BSP_SCHEDULE_DELAY="100",  # the SDK's batch interval (ms)
    )
    server = running.start("traced", env)
    upload_graph(server.client, GRAPH)
    inputs = [{"text": f"item {i}"} for i in range(ITEMS)]
    caller = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    body = {"graph_id": "one-call", "inputs": inputs}
    job_id = server.client.post("/v1/jobs", json=body, headers=caller).json()["id"]
    wait_for(lambda: _done(server.client, job_id), 60, what="the job to end")

    spans = wait_for(lambda: _job_spans(collector), 30, what="the job's spans at the receiver")

    assert collector.paths == {"/v1/traces"}
    assert {service for service, _ in spans} == {SERVICE}
    by_name: dict[str, list[Any]] = {}
    for _, span in spans:
        by_name.setdefault(span.name, []).append(span)
    (job,) = by_name["job"]
    assert _attributes(job.attributes)["inf.job.id"] == job_id
    assert len(by_name["item"]) == len(by_name["node answer"]) == ITEMS
    calls = by_name["chat otel-fast"]
    assert len(calls) == ITEMS
    call = _attributes(calls[0].attributes)
    assert call["gen_ai.operation.name"] == "chat"
    assert call["gen_ai.usage.input_tokens"] > 0
    assert call["inf.job.id"] == job_id
    (request,) = by_name["POST /v1/jobs"]  # the HTTP process's span of the submission
    assert request.parent_span_id.hex() == CALLER_SPAN


def _done(client: Any, job_id: str) -> bool | None:
    return True if job_status(client, job_id)["status"] == "completed" else None


def _job_spans(collector: Collector) -> list[tuple[str, Any]] | None:
    """The spans of the caller's trace, once the job's and its request's are in."""
    with collector.lock:
        spans = [(name, s) for name, s in collector.spans if s.trace_id.hex() == TRACE_ID]
    names = [span.name for _, span in spans]
    if "job" not in names or names.count("chat otel-fast") < ITEMS:
        return None
    return spans if "POST /v1/jobs" in names else None


def _attributes(attributes: Any) -> dict[str, Any]:
    values = {}
    for attribute in attributes:
        value = attribute.value
        kind = value.WhichOneof("value")
        values[attribute.key] = getattr(value, kind) if kind else None
    return values
