"""OpenTelemetry of optimization runs and evaluations: a run submitted with a ``traceparent``
is traced in the caller's trace, as a run span with one span per trainer step (and the test),
and every model call of the trainer's own roles is a node and an attempt span with
``inf.role`` (forward, critic, optimizer, judge) and the attempt's ``gen_ai.*`` usage.

The runs are real: Task A on the simulated models of the fake server, run by the runner; the
spans reach the SDK's in-memory exporter through the process's tracer provider.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.otel_memory import (
    EXPORTER,
    ancestors,
    in_trace,
    named,
    parent_of,
    sampling_provider,
)
from tests.support.service import Service
from tests.support.sim_tasks import dataset_bodies, fake_server_endpoints, graph_json, run_request

TRACE_ID = "5af7651916cd43dd8448eb211c80319d"
CALLER_SPAN = "c7ad6b7169203332"
CALLER = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
RUNNER_SPANS = ("job", "item", "optimization", "node ", "chat ")
NDJSON = {"content-type": "application/x-ndjson"}
JUDGED = {"verifiers": [{"op": "answer_equals"}],
          "judge": {"alias": "judge", "rubric": "Is the count right?"}}  # fmt: skip
MODELS = {"forward": "sim-task", "critic": "sim-critic", "optimizer": "sim-optimizer",
          "judge": "sim-judge"}  # fmt: skip


@pytest.fixture(scope="module")
def provider() -> Iterator[TracerProvider]:
    yield from sampling_provider()


@pytest.fixture
def endpoints(tmp_path: Path, fake_llm: FakeLLM) -> Path:
    config = fake_server_endpoints(fake_llm.base_url, {"judge": "sim-judge"})
    for endpoint in config["endpoints"].values():
        endpoint.update(input_price_per_million=1.0, output_price_per_million=2.0)
    path = tmp_path / "traced-optimization-endpoints.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def settings(settings: Settings, endpoints: Path, provider: TracerProvider) -> Settings:
    data = {**settings.model_dump(), "endpoints_file": endpoints, "otel_traces_exporter": "otlp"}
    return Settings.model_validate(data)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


async def small_task_a(client: httpx.AsyncClient) -> dict[str, str]:
    """Task A's graph and train, val and test datasets of 10 items each."""
    graph = graph_json("task-a")
    assert (await client.post("/v1/graphs", json=graph)).status_code in (200, 201)
    ids = {}
    for name, body in dataset_bodies("task-a", 10).items():
        pushed = await client.post(
            "/v1/datasets", params={"name": name}, content=body, headers=NDJSON
        )
        assert pushed.status_code in (200, 201), pushed.text
        ids[name] = str(pushed.json()["id"])
    return {"graph_id": graph["name"], **ids}


async def submitted(service: Service, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` posted to ``path`` with the caller's traceparent, run to its end."""
    started = await service.client.post(path, json=body, headers=CALLER)
    assert started.status_code == 202, started.text
    await service.run_jobs()
    return dict((await service.client.get(f"{path}/{started.json()['id']}")).json())


def child(found: tuple[ReadableSpan, ...], parent: ReadableSpan, name: str) -> list[ReadableSpan]:
    return [s for s in found if s.name == name and parent_of(s) == parent.context.span_id]


def run_spans(spans: InMemorySpanExporter | tuple[ReadableSpan, ...]) -> set[int]:
    """The ids of the runner's spans (not those of the HTTP requests that set the run up)."""
    found = spans.get_finished_spans() if isinstance(spans, InMemorySpanExporter) else spans
    return {s.context.span_id for s in found if s.name.startswith(RUNNER_SPANS)}


def calls_by_role(found: tuple[ReadableSpan, ...]) -> Counter[str]:
    return Counter(str(span.attributes["inf.role"]) for span in named(found, "chat "))


def requests_by_role(fake_llm: FakeLLM) -> Counter[str]:
    roles = {model: role for role, model in MODELS.items()}
    return Counter(roles[entry["model"]] for entry in fake_llm.log())


async def test_an_optimization_run_is_traced_as_run_steps_and_role_calls_under_its_caller(
    service: Service, fake_llm: FakeLLM, spans: InMemorySpanExporter
) -> None:
    fake_llm.configure(capture=True)
    data = await small_task_a(service.client)
    run = await submitted(service, "/v1/optimizations", run_request(data, seed=3, loss=JUDGED))
    assert run["state"] == "succeeded", run

    found = in_trace(spans.get_finished_spans(), int(TRACE_ID, 16))
    assert run_spans(spans) == run_spans(found)  # the runner's are all in the caller's trace
    (request,) = [s for s in found if s.name == "POST /v1/optimizations"]
    assert parent_of(request) == int(CALLER_SPAN, 16)
    (job,) = named(found, "job")
    assert request.context.span_id in ancestors(job, found)
    assert job.attributes["inf.job.kind"] == "optimization"
    (item,) = child(found, job, "item")
    (opt,) = child(found, item, "optimization")
    assert_run(opt, run, data["graph_id"])
    steps = child(found, opt, "optimization step")
    assert_steps(steps, run)
    (test,) = child(found, opt, "optimization test")
    assert test.attributes["inf.optimization.test_score"] == run["test"]["mean"]
    assert_role_calls(found, [*steps, test], fake_llm)


def assert_run(opt: ReadableSpan, run: dict[str, Any], graph_id: str) -> None:
    got = opt.attributes
    assert (got["inf.job.id"], got["inf.graph.id"], got["inf.graph.version"]) == (
        run["id"], graph_id, 1,
    )  # fmt: skip
    assert (got["inf.status"], got["inf.optimization.stop_reason"]) == ("succeeded", "max_epochs")
    assert got["inf.optimization.resumed_at_step"] == 0
    assert got["inf.optimization.best_score"] == run["best"]["score"]
    assert got["inf.tokens.input"] > 0
    assert got["inf.cost"] > 0


def assert_steps(steps: list[ReadableSpan], run: dict[str, Any]) -> None:
    by_number = {span.attributes["inf.optimization.step"]: span for span in steps}
    numbers = [step["step"] for step in run["steps"]]
    assert sorted(by_number) == [0, *numbers, len(numbers) + 1]
    (end,) = [s for s in steps if s.attributes["inf.optimization.phase"] == "end"]
    assert end.attributes["inf.optimization.step"] == len(numbers) + 1  # found no batch left
    assert (end.attributes["inf.optimization.stop_reason"], end.attributes["inf.calls"]) == (
        "max_epochs", 0,
    )  # fmt: skip
    assert by_number[0].attributes["inf.optimization.phase"] == "baseline"
    assert by_number[0].attributes["inf.calls"] > 0
    for step in run["steps"]:
        got = by_number[step["step"]].attributes
        assert got["inf.optimization.phase"] == "train"
        assert got["inf.optimization.accepted"] == step["accepted"]
        assert got["inf.optimization.proposals"] == len(step["proposals"])
        assert got["inf.calls"] == sum(step["calls"].values()) > 0
        assert got["inf.tokens.input"] > 0


def assert_role_calls(
    found: tuple[ReadableSpan, ...], sections: list[ReadableSpan], fake_llm: FakeLLM
) -> None:
    """Every request the fake server got is one attempt span with its role, under a step
    (or the test), below its node's span; critic, optimizer and judge calls among them."""
    assert calls_by_role(found) == requests_by_role(fake_llm)
    assert set(calls_by_role(found)) == set(MODELS)
    ids = {section.context.span_id for section in sections}
    for call in named(found, "chat "):
        got = call.attributes
        assert ids & set(ancestors(call, found)), call.name
        assert got["gen_ai.request.model"] == MODELS[str(got["inf.role"])]
        assert got["gen_ai.operation.name"] == "chat"
        assert got["gen_ai.usage.input_tokens"] > 0
        assert got["gen_ai.usage.output_tokens"] > 0
        assert got["inf.cost"] > 0
        (node,) = [s for s in found if s.context.span_id == parent_of(call)]
        assert node.attributes["inf.role"] == got["inf.role"]
        assert node.attributes["inf.alias"] == got["inf.alias"]
        assert node.attributes["inf.model"] == got["gen_ai.response.model"]
        assert node.attributes["inf.tokens.input"] == got["gen_ai.usage.input_tokens"]
    budget_roles = {s.attributes["inf.optimization.role"] for s in named(found, "chat ")}
    assert budget_roles == {"task", "validation", "backward", "optimizer", "judge"}


async def test_an_evaluation_is_traced_under_its_caller_with_judge_calls_by_role(
    service: Service, fake_llm: FakeLLM, spans: InMemorySpanExporter
) -> None:
    fake_llm.configure(capture=True)
    data = await small_task_a(service.client)
    body = {"graph_id": data["graph_id"], "dataset": data["test"], "loss": JUDGED}
    shown = await submitted(service, "/v1/evaluations", body)
    assert shown["status"] == "completed", shown

    found = in_trace(spans.get_finished_spans(), int(TRACE_ID, 16))
    assert run_spans(spans) == run_spans(found)
    (request,) = [s for s in found if s.name == "POST /v1/evaluations"]
    assert parent_of(request) == int(CALLER_SPAN, 16)
    (job,) = named(found, "job")
    assert request.context.span_id in ancestors(job, found)
    assert calls_by_role(found) == requests_by_role(fake_llm)
    assert set(calls_by_role(found)) == {"forward", "judge"}
    items = {s.context.span_id for s in child(found, job, "item")}
    assert len(items) == 10
    for call in named(found, "chat "):
        assert items & set(ancestors(call, found))
