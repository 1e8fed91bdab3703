"""One trace across a crash: a job whose worker is killed with SIGKILL mid-job, resumed by
another worker, is one trace at an OTLP/HTTP receiver on loopback.

The API process does not trace (no ``OTEL_*``) and the job is submitted without a
``traceparent``, so nothing but the trace root the first worker stored with the job ties the
two runs together: the spans the first worker exported before it died and those of the worker
that finished the job share one trace id, and the resumed job's span is a child of the first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_otel_export import Collector
from tests.support.fake_llm import FakeLLM
from tests.support.processes import (
    ServerProcess,
    Servers,
    endpoints_for,
    job_status,
    marked_graph,
    server_env,
    submit_job,
    tagged_inputs,
    upload_graph,
    wait_for,
)

pytestmark = pytest.mark.postgres

ITEMS = 120
KILL_AT = 30  # succeeded items before the kill
SETTINGS = {
    "auto_migrate": "false",
    "lease_s": 5.0,
    "heartbeat_s": 0.5,
    "poll_s": 0.2,
    "flush_interval_s": 0.02,
}


@pytest.fixture
def receiver() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_job_resumed_after_a_kill_continues_its_trace(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, receiver: Collector, tmp_path: Path
) -> None:
    fake_llm.configure(latency_ms=30, log=True)

    def env(marker: str, traced: bool, **extra: Any) -> dict[str, str]:
        endpoints = endpoints_for(tmp_path / f"{marker}.yaml", fake_llm.base_url, marker, 8)
        found = server_env(fresh_postgres, endpoints, **SETTINGS, **extra)
        if traced:
            found.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="50")
        return found

    api = running.start("api", env("api", False, runner_mode="none"))
    (first,) = running.start_workers({"first": env("first", True)})
    job_id = submit_job(
        api.client, upload_graph(api.client, marked_graph("traced")), tagged_inputs("t", ITEMS)
    )
    wait_for(lambda: _succeeded(api, job_id, KILL_AT), 60, 0.02, what="items before the kill")
    wait_for(lambda: _calls(receiver, "first") or None, 10, what="the first worker's spans")
    first.kill()
    running.start_workers({"second": env("second", True)})
    wait_for(lambda: _succeeded(api, job_id, ITEMS), 90, what="the resumed job to end")
    wait_for(lambda: _resumed_job(receiver), 30, what="the resumed job's span")

    with receiver.lock:
        spans = [span for _, span in receiver.spans]
    assert job_status(api.client, job_id)["status"] == "completed"
    before, after = _calls(receiver, "first"), _calls(receiver, "second")
    assert before
    assert after
    assert len({span.trace_id for span in spans}) == 1  # before and after the kill: one trace
    (resumed,) = [span for span in spans if span.name == "job"]  # the first never ended
    attributes = {a.key: a.value for a in resumed.attributes}
    assert attributes["inf.job.resumed"].bool_value
    first_job = {span.parent_span_id for span in spans if span.name == "item"} - {
        span.span_id for span in spans
    }
    assert first_job == {resumed.parent_span_id}  # the first worker's items hang on it too


def _succeeded(api: ServerProcess, job_id: str, count: int) -> bool | None:
    return True if job_status(api.client, job_id)["counts"]["succeeded"] >= count else None


def _calls(receiver: Collector, marker: str) -> list[Any]:
    """The attempt spans of calls made by the worker ``marker`` (its models' names)."""
    with receiver.lock:
        return [span for _, span in receiver.spans if span.name.startswith(f"chat {marker}-")]


def _resumed_job(receiver: Collector) -> bool | None:
    with receiver.lock:
        return True if any(span.name == "job" for _, span in receiver.spans) else None
