"""One trace across a crash: a job (and an optimization run) whose worker is killed with
SIGKILL mid-run, resumed by another worker, is one trace at an OTLP/HTTP receiver on loopback.

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
import yaml

from tests.e2e.test_optimization_resume import push_task_a, status, submit
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
from tests.support.sim_tasks import fake_server_endpoints

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ITEMS = 120
KILL_AT = 30  # succeeded items before the kill
KILL_AFTER_STEPS = 2  # of the optimization run
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
    wait_for(lambda: _exported_items(receiver), 10, what="the first worker's item spans")
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


def _exported_items(receiver: Collector) -> bool | None:
    """Whether an item span and the attempt spans of its calls reached the receiver."""
    with receiver.lock:
        names = [span.name for _, span in receiver.spans]
    return True if "item" in names and any(n.startswith("chat ") for n in names) else None


def _resumed_job(receiver: Collector) -> bool | None:
    with receiver.lock:
        return True if any(span.name == "job" for _, span in receiver.spans) else None


def test_an_optimization_run_resumed_after_a_kill_continues_its_trace(
    fresh_postgres: str, fake_llm: FakeLLM, running: Servers, receiver: Collector, tmp_path: Path
) -> None:
    fake_llm.configure(latency_ms=20, log=True)
    endpoints = tmp_path / "sim.yaml"
    endpoints.write_text(yaml.safe_dump(fake_server_endpoints(fake_llm.base_url)))
    env = server_env(fresh_postgres, endpoints, **SETTINGS)
    traced = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    api = running.start("api", {**env, "INF_RUNNER_MODE": "none"})
    (first,) = running.start_workers({"first": traced})
    run_id = submit(api, push_task_a(api.client))
    wait_for(lambda: _steps_done(api, run_id), 60, 0.02, what="steps before the kill")
    wait_for(lambda: _named(receiver, "optimization step") or None, 10, what="step spans")
    first.kill()
    before = len(_named(receiver, "optimization step"))
    running.start_workers({"second": traced})
    wait_for(lambda: _named(receiver, "optimization") or None, 120, what="the resumed run's span")

    assert status(api, run_id)["state"] == "succeeded"
    with receiver.lock:
        spans = [span for _, span in receiver.spans]
    assert len({span.trace_id for span in spans}) == 1  # before and after the kill: one trace
    assert len(_named(receiver, "optimization step")) > before > 0
    (run,) = _named(receiver, "optimization")  # the resumed runner's; the first never ended
    resumed_at = {a.key: a.value.int_value for a in run.attributes}[
        "inf.optimization.resumed_at_step"
    ]
    assert resumed_at >= KILL_AFTER_STEPS
    roles = {a.value.string_value for s in spans for a in s.attributes if a.key == "inf.role"}
    assert roles == {"forward", "critic", "optimizer"}


def _steps_done(api: ServerProcess, run_id: str) -> bool | None:
    shown = status(api, run_id)
    assert shown["state"] in ("queued", "running"), shown
    return True if shown["step"] >= KILL_AFTER_STEPS else None


def _named(receiver: Collector, name: str) -> list[Any]:
    with receiver.lock:
        return [span for _, span in receiver.spans if span.name == name]
