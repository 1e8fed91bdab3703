"""Evaluations over HTTP: a graph version (or two, paired) scored on a dataset by the job
runner, the simulated task and judge models on the fake server. The result is what the
engine's ``summarize`` and ``paired`` give for the same scores; bad requests name their field
and write nothing; another tenant sees nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import delete, select, update

from app.db.models import Job, JobItem, NodeResult
from app.engine import ResourceConfig, ResourceManager, load_graph
from app.engine.optimization import Example, VerifierLoss, verifier
from app.engine.optimization.evaluate import Scored, score_examples, summarize
from app.engine.optimization.roles import Role
from app.engine.optimization.stats import paired
from app.lifecycle import ItemStatus, JobStatus
from app.settings import Settings
from examples.optimization.tasks import graph_json, rows_of
from tests.support.fake_llm import FakeLLM
from tests.support.polling import until
from tests.support.service import Service
from tests.support.sse import read_events

NDJSON = {"content-type": "application/x-ndjson"}
RULES = (
    "Turn spelled-out numbers into digits first. Count only items of the category the "
    "question asks about. End your reply with a final line of the form 'Answer: N'."
)
ANSWER = {"verifiers": [{"op": "answer_equals"}]}
SEED = 7


@pytest.fixture
def endpoints(tmp_path: Path, fake_llm: FakeLLM) -> Path:
    """``fast``, and the simulated ``task`` and ``judge`` models, on the fake server; ``slow``
    is ``task`` one call at a time."""
    alias = {"provider": "openai-compatible", "base_url": fake_llm.base_url, "max_retries": 0}
    models = {"fast": "fast", "task": "sim-task", "judge": "sim-judge"}
    config = {"endpoints": {name: {**alias, "model": model} for name, model in models.items()}}
    config["endpoints"]["slow"] = {**alias, "model": "sim-task", "max_concurrent": 1}
    path = tmp_path / "evaluation-endpoints.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def settings(settings: Settings, endpoints: Path) -> Settings:
    return Settings.model_validate({**settings.model_dump(), "endpoints_file": endpoints})


def task_a_graph(instructions: str | None = None) -> dict[str, Any]:
    graph = graph_json("task-a")
    if instructions is not None:
        graph["parameters"]["instructions"]["value"] = instructions
    return graph


def task_a_items(count: int) -> list[dict[str, Any]]:
    return rows_of("task-a")[:count]


async def push_graph(client: httpx.AsyncClient, graph: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/graphs", json=graph)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def push_dataset(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> str:
    body = b"".join(json.dumps(item).encode() + b"\n" for item in items)
    response = await client.post("/v1/datasets", params={"name": "a"}, content=body, headers=NDJSON)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


async def evaluate_over_http(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    started = await service.client.post("/v1/evaluations", json=body)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    await service.run_jobs()
    done = await service.client.get(f"/v1/evaluations/{started.json()['id']}")
    assert done.status_code == 200
    return dict(done.json())


async def engine_scores(
    endpoints: Path, graph: dict[str, Any], items: list[dict[str, Any]]
) -> list[Scored]:
    """The same examples scored by the engine alone, on the same endpoints."""
    examples = [Example(item["input"], item["expected"], n) for n, item in enumerate(items)]
    manager = ResourceManager(ResourceConfig.from_yaml(endpoints))
    try:
        return await score_examples(
            load_graph(graph), examples, VerifierLoss(verifier("answer_equals")),
            role=Role.VALIDATION, resources=manager,
        )  # fmt: skip
    finally:
        await manager.aclose()


def seed_that_matters(scored: list[Scored]) -> int:
    """A seed whose bootstrap interval differs from seed 0's on these scores, so the result
    shows that the spec's seed is the one used."""
    default = summarize(scored, seed=0)
    for seed in range(1, 100):
        found = summarize(scored, seed=seed)
        if (found.low, found.high) != (default.low, default.high):
            return seed
    raise AssertionError("every seed gives the same interval on these scores")


def summary_of(shown: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(shown[key] for key in ("mean", "n", "failures", "low", "high"))


async def test_one_version_gives_the_engines_summary_of_the_same_scores(
    service: Service, endpoints: Path
) -> None:
    graph = task_a_graph()
    await push_graph(service.client, graph)
    items = task_a_items(24)
    broken = {"input": {"wrong": "key"}, "expected": "1"}  # cannot run: scores 0, a failure
    dataset = await push_dataset(service.client, [*items, broken])
    scored = await engine_scores(endpoints, graph, items)
    scored.append(Scored(Example(broken["input"], "1", len(items)), 0.0, None, "bad input"))
    seed = seed_that_matters(scored)
    body = {"graph_id": graph["name"], "dataset": dataset, "loss": ANSWER, "seed": seed}

    shown = await evaluate_over_http(service, body)

    expected = summarize(scored, seed=seed)
    assert 0.0 < expected.mean < 1.0  # the seed prompt gets some right, not all
    assert shown["status"] == "completed"
    assert shown["counts"]["total"] == len(items) + 1
    assert shown["counts"]["failed"] == 1
    [version] = shown["result"]["versions"]
    assert version["version"] == 1
    assert summary_of(version) == (
        expected.mean, expected.n, expected.failures, expected.low, expected.high,
    )  # fmt: skip
    assert shown["result"]["paired"] is None


async def test_two_versions_give_the_paired_delta_of_b_minus_a(
    service: Service, endpoints: Path
) -> None:
    seed_graph, ruled = task_a_graph(), task_a_graph(RULES)
    await push_graph(service.client, seed_graph)
    await push_graph(service.client, ruled)
    items = task_a_items(20)
    dataset = await push_dataset(service.client, items)
    body = {"graph_id": seed_graph["name"], "versions": [1, 2], "dataset": dataset,
            "loss": ANSWER, "seed": SEED}  # fmt: skip

    shown = await evaluate_over_http(service, body)

    a = summarize(await engine_scores(endpoints, seed_graph, items), seed=SEED)
    b = summarize(await engine_scores(endpoints, ruled, items), seed=SEED)
    delta = paired(a.scores, b.scores, seed=SEED)
    assert delta[0] > 0  # the stated rules help
    assert shown["counts"]["total"] == 2 * len(items)
    assert [v["version"] for v in shown["result"]["versions"]] == [1, 2]
    assert [summary_of(v) for v in shown["result"]["versions"]] == [
        (r.mean, r.n, r.failures, r.low, r.high) for r in (a, b)
    ]
    assert tuple(shown["result"]["paired"].values()) == delta


async def test_a_judge_and_a_verifier_combine_by_weight(
    service: Service, fake_llm: FakeLLM
) -> None:
    graph = task_a_graph(RULES)
    await push_graph(service.client, graph)
    dataset = await push_dataset(service.client, task_a_items(6))
    loss = {"verifiers": [{"op": "answer_equals", "weight": 3}],
            "judge": {"alias": "judge", "rubric": "Is the count right?"}}  # fmt: skip
    body = {"graph_id": graph["name"], "dataset": dataset, "loss": loss}

    shown = await evaluate_over_http(service, body)

    [version] = shown["result"]["versions"]
    assert (version["n"], version["failures"]) == (6, 0)
    assert 0.0 <= version["low"] <= version["mean"] <= version["high"] <= 1.0
    usage, judged = shown["usage"], [e for e in fake_llm.log() if e["model"] == "sim-judge"]
    assert (usage["roles"]["task"]["calls"], usage["roles"]["judge"]["calls"]) == (6, len(judged))
    assert usage["roles"]["judge"]["input_tokens"] > 0
    for name in ("input_tokens", "output_tokens"):  # the judge's tokens are in the totals
        assert usage[name] == sum(role[name] for role in usage["roles"].values())


async def test_events_stream_to_the_end_and_cancel_stops_a_queued_evaluation(
    service: Service,
) -> None:
    graph = task_a_graph()
    await push_graph(service.client, graph)
    dataset = await push_dataset(service.client, task_a_items(3))
    body = {"graph_id": graph["name"], "dataset": dataset, "loss": ANSWER}
    first = (await service.client.post("/v1/evaluations", json=body)).json()
    second = (await service.client.post("/v1/evaluations", json=body)).json()
    cancelled = await service.client.post(f"/v1/evaluations/{second['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    await service.run_jobs()

    headers = dict(service.client.headers)
    events = await read_events(service.client, first["id"], headers, resource="evaluations")
    kinds = [event.kind for event in events]
    assert (kinds[0], kinds[-1]) == ("job_submitted", "job_completed")
    assert "job_started" in kinds
    after = (await service.client.get(f"/v1/evaluations/{second['id']}")).json()
    assert (after["status"], after["result"]) == ("cancelled", None)
    listed = (await service.client.get("/v1/evaluations")).json()["items"]
    assert [e["id"] for e in listed] == [second["id"], first["id"]]


async def test_cancel_mid_run_ends_cancelled_with_a_partial_result(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=50)
    graph = task_a_graph()
    graph["nodes"][0]["alias"] = "slow"  # one item at a time
    await push_graph(service.client, graph)
    dataset = await push_dataset(service.client, task_a_items(12))
    body = {"graph_id": graph["name"], "dataset": dataset, "loss": ANSWER}
    path = (
        f"/v1/evaluations/{(await service.client.post('/v1/evaluations', json=body)).json()['id']}"
    )
    runner = asyncio.create_task(service.run_jobs())

    async def three_scored() -> bool:
        return int((await service.client.get(path)).json()["counts"]["succeeded"]) >= 3

    await until(three_scored)

    cancelled = await service.client.post(f"{path}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    await asyncio.wait_for(runner, 60)
    calls, shown = len(fake_llm.log()), (await service.client.get(path)).json()
    await asyncio.sleep(0.3)

    assert len(fake_llm.log()) == calls  # nothing is called once the evaluation has stopped
    assert shown["status"] == "cancelled"
    scored = shown["counts"]["succeeded"] + shown["counts"]["failed"]
    assert 3 <= scored < 12
    [version] = shown["result"]["versions"]
    assert (shown["result"]["partial"], version["n"]) == (True, scored)
    events = await read_events(
        service.client, shown["id"], dict(service.client.headers), resource="evaluations"
    )
    assert events[-1].kind == "job_cancelled"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dataset": "no-such-dataset"}, "dataset"),
        ({"graph_id": "no-such-graph"}, "graph_id"),
        ({"version": 9}, "version"),
        ({"versions": [1, 9]}, "versions[1]"),
        ({"versions": [1, 1]}, "versions"),
        ({"loss": {"judge": {"alias": "nobody", "rubric": "r"}}}, "loss.judge.alias"),
        ({"loss": {"verifiers": [{"op": "exact", "output": "nope"}]}}, "loss.verifiers[0].output"),
        ({"loss": {"verifiers": [{"op": "eval"}]}}, "loss.verifiers[0].op"),
        ({"loss": {"verifiers": [{"op": "regex"}]}}, "loss.verifiers[0].pattern"),
        ({"loss": {}}, "loss"),
        ({"seed": "1"}, "seed"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_a_bad_request_names_its_field_and_writes_nothing(
    service: Service, change: dict[str, Any], field: str
) -> None:
    graph = task_a_graph()
    await push_graph(service.client, graph)
    dataset = await push_dataset(service.client, task_a_items(2))
    body = {"graph_id": graph["name"], "dataset": dataset, "loss": ANSWER, **change}

    response = await service.client.post("/v1/evaluations", json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [error["field"] for error in response.json()["errors"]]
    assert (await service.client.get("/v1/evaluations")).json()["items"] == []
    assert (await service.client.get("/v1/jobs")).json()["items"] == []


async def test_another_tenant_gets_404(service: Service, other_tenant: httpx.AsyncClient) -> None:
    graph = task_a_graph()
    await push_graph(service.client, graph)
    dataset = await push_dataset(service.client, task_a_items(2))
    body = {"graph_id": graph["name"], "dataset": dataset, "loss": ANSWER}
    mine = (await service.client.post("/v1/evaluations", json=body)).json()["id"]

    for method, path in [("GET", ""), ("GET", "/events"), ("POST", "/cancel")]:
        response = await other_tenant.request(method, f"/v1/evaluations/{mine}{path}")
        assert response.status_code == 404, (method, path)
    assert (await other_tenant.get("/v1/evaluations")).json()["items"] == []
    their_dataset = await push_dataset(other_tenant, task_a_items(2))
    theirs = await other_tenant.post(
        "/v1/evaluations", json={**body, "dataset": their_dataset}
    )  # my graph is not theirs
    assert [e["field"] for e in theirs.json()["errors"]] == ["graph_id"]


async def test_a_batch_job_is_not_an_evaluation(service: Service) -> None:
    graph = task_a_graph()
    await push_graph(service.client, graph)
    job = await service.client.post(
        "/v1/jobs", json={"graph_id": graph["name"], "inputs": [{"question": "q"}]}
    )
    assert (await service.client.get(f"/v1/evaluations/{job.json()['id']}")).status_code == 404


async def lose_the_end_of(
    service: Service, job_id: str, items: list[int], nodes: list[int]
) -> None:
    """What a runner killed mid-run leaves: the rows of ``items`` never landed (they are open
    again, the job is queued with no lease), nor the node rows of ``nodes``."""
    async with service.runtime.sessions() as session:
        where = (JobItem.job_id == job_id, JobItem.item_index.in_(items))
        ended = list(await session.scalars(select(JobItem.status).where(*where)))
        await session.execute(
            update(JobItem).where(*where).values(status=ItemStatus.PENDING, output=None, error=None)
        )
        await session.execute(
            delete(NodeResult).where(NodeResult.job_id == job_id, NodeResult.item_index.in_(nodes))
        )
        await session.execute(
            update(Job).where(Job.id == job_id).values(
                status=JobStatus.QUEUED, finished_at=None, lease_owner=None,
                succeeded=Job.succeeded - ended.count(ItemStatus.SUCCEEDED),
                failed=Job.failed - ended.count(ItemStatus.FAILED),
            )
        )  # fmt: skip
        await session.commit()


async def test_a_resumed_evaluation_runs_only_what_was_not_stored(
    service: Service, fake_llm: FakeLLM
) -> None:
    graph = task_a_graph()
    await push_graph(service.client, graph)
    dataset = await push_dataset(service.client, task_a_items(4))
    body = {"graph_id": graph["name"], "dataset": dataset, "loss": ANSWER, "seed": SEED}
    first = await evaluate_over_http(service, body)
    calls = len(fake_llm.log())
    assert calls == 4

    await lose_the_end_of(service, first["id"], items=[0, 1], nodes=[1])
    await service.run_jobs()

    again = (await service.client.get(f"/v1/evaluations/{first['id']}")).json()
    assert len(fake_llm.log()) == calls + 1  # item 0's node was stored: only item 1 runs again
    assert (again["status"], again["result"]) == ("completed", first["result"])
