"""Optimization runs over HTTP: Task A trained on the simulated ``task``, ``critic`` and
``optimizer`` models of the fake server by the job runner. A run ends with the test accuracy
the simulator's analytic table gives for the rules it found, creates inactive versions that
promote and rollback move between, and never shows a test item to the critic or optimizer;
budgets cut runs, a failing critic stalls them with its error; bad requests name their field
and write nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.polling import until
from tests.support.service import Service
from tests.support.sim_tasks import (
    ANSWER_LOSS,
    dataset_bodies,
    fake_server_endpoints,
    graph_json,
    row_splits,
    run_request,
)
from tests.support.sse import read_events

NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def endpoints(tmp_path: Path, fake_llm: FakeLLM) -> Path:
    config = fake_server_endpoints(fake_llm.base_url, {"broken-critic": "sim-critic:fail"})
    for endpoint in config["endpoints"].values():
        endpoint.update(input_price_per_million=1.0, output_price_per_million=2.0)
    path = tmp_path / "optimization-endpoints.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def settings(settings: Settings, endpoints: Path) -> Settings:
    data = {**settings.model_dump(), "endpoints_file": endpoints, "max_dataset_items": 300}
    return Settings.model_validate(data)


async def task_a(client: httpx.AsyncClient, first: int | None = None) -> dict[str, str]:
    """Task A's graph and its train (40), val (60) and test (120) datasets, or the ``first``
    items of each."""
    graph = graph_json("task-a")
    response = await client.post("/v1/graphs", json=graph)
    assert response.status_code in (200, 201), response.text
    ids = {}
    for name, body in dataset_bodies("task-a", first).items():
        params = {"name": name}
        pushed = await client.post("/v1/datasets", params=params, content=body, headers=NDJSON)
        assert pushed.status_code in (200, 201), pushed.text
        ids[name] = str(pushed.json()["id"])
    return {"graph_id": graph["name"], **ids}


async def small_task_a(client: httpx.AsyncClient) -> dict[str, str]:
    """Task A with a train, val and test split of 10 items each."""
    return await task_a(client, first=10)


def request(data: dict[str, str], **overrides: Any) -> dict[str, Any]:
    return run_request(data, seed=3, **overrides)


async def optimize(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    started = await service.client.post("/v1/optimizations", json=body)
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "queued"
    await service.run_jobs()
    done = await service.client.get(f"/v1/optimizations/{started.json()['id']}")
    assert done.status_code == 200, done.text
    return dict(done.json())


async def jobs_stored(service: Service) -> int:
    """Runs and batch jobs stored (``/v1/jobs`` lists batch jobs only)."""
    total = 0
    for path in ("/v1/optimizations", "/v1/jobs"):
        total += len((await service.client.get(path)).json()["items"])
    return total


async def test_task_a_ends_succeeded_with_an_accepted_inactive_version(
    service: Service, fake_llm: FakeLLM
) -> None:
    data = await task_a(service.client)
    run = await optimize(service, request(data))
    assert (run["state"], run["stop_reason"], run["error"]) == ("succeeded", "max_epochs", None)
    assert run["test"]["n"] == 120
    assert run["test"]["mean"] >= 0.90
    accepted = [step for step in run["steps"] if step["accepted"]]
    assert accepted
    assert all(step["version"] is not None for step in accepted)
    assert run["best"]["version"] == accepted[-1]["version"] > 1
    assert run["best"]["low"] <= run["best"]["score"] <= run["best"]["high"]
    assert run["roles"]["task"]["calls"] == 40
    versions = (await service.client.get(f"/v1/graphs/{data['graph_id']}/versions")).json()
    made = {v["version"]: v for v in versions["items"] if v["run_id"] == run["id"]}
    assert sorted(made) == [step["version"] for step in accepted]
    assert not any(v["active"] for v in made.values())
    first = made[accepted[0]["version"]]
    assert (first["parent_version"], first["run_step"]) == (1, accepted[0]["step"])
    assert "instructions" in first["diff"]
    test = row_splits("task-a")["test"]
    canaries = [line["input"]["question"].rsplit("(ref ", 1)[1] for line in test]
    shown = [e for e in fake_llm.log() if e["model"] in ("sim-critic", "sim-optimizer")]
    assert shown
    assert not any(c in (e["system"] or "") + (e["prompt"] or "") for e in shown for c in canaries)


async def val_mean(service: Service, data: dict[str, str], version: int, loss: Any) -> float:
    """The mean score ``loss`` gives graph version ``version`` on the val dataset."""
    body = {"graph_id": data["graph_id"], "version": version, "dataset": data["val"], "loss": loss}
    started = await service.client.post("/v1/evaluations", json=body)
    assert started.status_code == 202, started.text
    await service.run_jobs()
    done = await service.client.get(f"/v1/evaluations/{started.json()['id']}")
    [found] = done.json()["result"]["versions"]
    return float(found["mean"])


async def test_the_best_score_is_the_selection_metrics_not_the_losss(service: Service) -> None:
    data = await task_a(service.client)
    half = {"verifiers": [{"op": "answer_equals"}, {"op": "regex", "pattern": "^never$"}]}
    run = await optimize(service, request(data, selection_metric=half))
    assert run["state"] == "succeeded"
    assert any(step["accepted"] for step in run["steps"])
    best = run["best"]["version"]
    by_metric = await val_mean(service, data, best, half)
    by_loss = await val_mean(service, data, best, ANSWER_LOSS)
    assert run["best"]["score"] == by_metric == pytest.approx(by_loss / 2)
    assert by_metric < by_loss


async def test_promote_makes_jobs_use_the_trained_version_and_rollback_restores(
    service: Service,
) -> None:
    data = await task_a(service.client)
    run = await optimize(service, request(data))
    best = run["best"]["version"]
    graph = f"/v1/graphs/{data['graph_id']}"
    promoted = await service.client.post(f"{graph}/promote", json={"version": best})
    assert promoted.status_code == 200, promoted.text
    job = await service.client.post(
        "/v1/jobs",
        json={"graph_id": data["graph_id"], "inputs": [{"question": "I have two cats."}]},
    )
    assert job.json()["graph_version"] == best
    rolled = await service.client.post(f"{graph}/rollback")
    assert rolled.json()["active_version"] == 1


async def test_dry_run_answers_the_projection_and_stores_nothing(service: Service) -> None:
    data = await task_a(service.client)
    response = await service.client.post("/v1/optimizations", json=request(data, dry_run=True))
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["steps"] == 8
    assert shown["roles"]["task"]["calls"] == 40
    assert shown["roles"]["validation"]["calls"] == 60 * 9 + 120
    assert await jobs_stored(service) == 0


async def test_the_live_projection_starts_at_the_dry_run_and_ends_at_the_calls_made(
    service: Service,
) -> None:
    data = await task_a(service.client)
    dry = (await service.client.post("/v1/optimizations", json=request(data, dry_run=True))).json()
    started = await service.client.post("/v1/optimizations", json=request(data))
    queued = started.json()["projection"]
    assert queued["calls"] == {
        "spent": 0, "projected_total": dry["total"]["calls"], "upper_bound": dry["total"]["calls"]
    }  # fmt: skip
    await service.run_jobs()
    run = (await service.client.get(f"/v1/optimizations/{started.json()['id']}")).json()
    assert run["state"] == "succeeded"
    made = {role: int(usage["calls"]) for role, usage in run["roles"].items()}
    ended = run["projection"]
    assert ended["calls"]["projected_total"] == ended["calls"]["spent"] == sum(made.values())
    assert ended["calls"]["upper_bound"] == sum(made.values()) < dry["total"]["calls"]
    assert {role: o["projected_total"] for role, o in ended["by_role"].items()} == made
    assert ended["steps"] == {"finished": 8, "left": 0, "proposed": ended["steps"]["proposed"]}
    assert 0 < ended["steps"]["proposed"] < 8


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"parameters": ["nope"]}, "parameters[0]"),
        ({"val": "no-such-dataset"}, "val"),
        ({"optimizer": {"critic": "nobody"}}, "optimizer.critic"),
        ({"budget": {"max_calls": "many"}}, "budget.max_calls"),
        ({"budget": {"max_calls": 10}}, "budget.max_calls"),
    ],
)
async def test_bad_requests_name_the_field_and_store_nothing(
    service: Service, change: dict[str, Any], field: str
) -> None:
    data = await task_a(service.client)
    response = await service.client.post("/v1/optimizations", json=request(data, **change))
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await jobs_stored(service) == 0


def spent(roles: dict[str, dict[str, float]], what: str) -> float:
    if what == "tokens":
        return sum(usage["input_tokens"] + usage["output_tokens"] for usage in roles.values())
    return sum(usage[what] for usage in roles.values())


# Each cap is below what the run spends uncapped (10 epochs of 2 steps: 242 calls, about
# 56,000 tokens, 0.06 at the endpoints' prices; 100 of the calls and 0.042 the critic's) and
# pays for a baseline, three steps and the test split.
@pytest.mark.parametrize(
    ("budget", "cap", "what", "limit"),
    [
        ({"max_calls": 150}, "max_calls", "calls", 150),
        ({"max_tokens": 45_000}, "max_tokens", "tokens", 45_000),
        ({"max_cost": 0.03}, "max_cost", "cost", 0.03),
        ({"roles": {"backward": {"max_calls": 50}}}, "backward.max_calls", "calls", 50),
        ({"roles": {"task": {"max_tokens": 6_000}}}, "task.max_tokens", "tokens", 6_000),
        ({"roles": {"backward": {"max_cost": 0.02}}}, "backward.max_cost", "cost", 0.02),
    ],
)
async def test_each_cap_stops_the_run_at_the_cap_test_split_included(
    service: Service, fake_llm: FakeLLM, budget: dict[str, Any], cap: str, what: str,
    limit: float,
) -> None:  # fmt: skip
    data = await small_task_a(service.client)
    schedule = {"epochs": 10, "batch_size": 5}
    run = await optimize(service, request(data, budget=budget, schedule=schedule))
    assert (run["state"], run["stop_reason"]) == ("succeeded", "budget_exhausted")
    assert run["error"].startswith(f"{cap}:")
    assert run["test"]["n"] == 10  # tested, within what the budget kept for it
    role = cap.split(".")[0] if "." in cap else None
    roles = run["roles"] if role is None else {role: run["roles"][role]}
    assert spent(roles, what) <= limit
    if role is None and what == "calls":
        assert len(fake_llm.log()) == spent(run["roles"], "calls") <= limit


async def test_the_wall_cap_stops_a_step_in_flight_at_the_deadline(
    service: Service, fake_llm: FakeLLM
) -> None:
    data = await small_task_a(service.client)
    fake_llm.configure(rules=[{"match": "You improve one text parameter", "delay_ms": 6_000}])
    body = request(data, budget={"max_wall_seconds": 1}, schedule={"epochs": 10, "batch_size": 5})
    started = time.monotonic()
    run = await optimize(service, body)
    assert time.monotonic() - started < 1 + 3  # not the 6 s of the optimizer's call
    assert (run["state"], run["stop_reason"]) == ("succeeded", "budget_exhausted")
    assert run["error"].startswith("max_wall_s:")
    assert run["test"]["n"] == 10
    assert run["roles"]["optimizer"]["output_tokens"] == 0  # cut before it answered


async def test_a_failing_critic_stalls_the_run_with_its_error(service: Service) -> None:
    data = await task_a(service.client)
    run = await optimize(service, request(data, optimizer={"critic": "broken-critic"}))
    assert (run["state"], run["stop_reason"]) == ("failed", "stalled")
    assert "broken-critic" in run["error"]
    assert "HTTP 500" in run["error"]
    assert not any(step["accepted"] for step in run["steps"])


async def test_events_resume_after_last_event_id_once_each(service: Service) -> None:
    data = await task_a(service.client)
    run = await optimize(service, request(data))
    headers = dict(service.client.headers)
    every = await read_events(service.client, run["id"], headers, resource="optimizations")
    kinds = [event.kind for event in every]
    for kind in ("run_started", "step_started", "proposal", "accepted", "validated", "budget",
                 "finished", "version_created", "tested", "job_completed"):  # fmt: skip
        assert kind in kinds
    middle = every[len(every) // 2].id
    rest = await read_events(
        service.client,
        run["id"],
        {**headers, "Last-Event-ID": str(middle)},
        resource="optimizations",
    )
    assert [e.id for e in rest] == [e.id for e in every if e.id > middle]


async def test_metrics_count_runs_by_state_and_calls_by_role(service: Service) -> None:
    data = await task_a(service.client)
    run = await optimize(service, request(data))
    stalled = await optimize(service, request(data, optimizer={"critic": "broken-critic"}))
    text = (await service.client.get("/metrics")).text
    assert 'inf_optimization_runs{state="succeeded"} 1.0' in text
    assert 'inf_optimization_runs{state="failed"} 1.0' in text
    assert 'inf_optimization_runs{state="running"} 0.0' in text
    task_calls = run["roles"]["task"]["calls"] + stalled["roles"]["task"]["calls"]
    assert f'inf_optimization_calls_total{{role="task"}} {float(task_calls)}' in text


async def test_a_cancelled_run_ends_cancelled_without_running(service: Service) -> None:
    data = await task_a(service.client)
    started = await service.client.post("/v1/optimizations", json=request(data))
    run_id = started.json()["id"]
    cancelled = await service.client.post(f"/v1/optimizations/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    await service.run_jobs()
    run = (await service.client.get(f"/v1/optimizations/{run_id}")).json()
    assert (run["state"], run["step"], run["steps"]) == ("cancelled", 0, [])
    batch = await service.client.get(f"/v1/evaluations/{run_id}")
    assert batch.status_code == 404  # a run is not another kind's


async def test_a_run_cancelled_mid_run_keeps_its_finished_steps_and_calls_no_more(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=40)  # every call takes a while: the cancel lands mid-step
    data = await task_a(service.client)
    started = await service.client.post("/v1/optimizations", json=request(data))
    path = f"/v1/optimizations/{started.json()['id']}"
    runner = asyncio.create_task(service.run_jobs())

    async def stepped() -> bool:
        return len((await service.client.get(path)).json()["steps"]) >= 1

    await until(stepped)
    cancelled = await service.client.post(f"{path}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    await asyncio.wait_for(runner, 60)
    calls, run = len(fake_llm.log()), (await service.client.get(path)).json()
    await asyncio.sleep(0.5)

    assert len(fake_llm.log()) == calls  # nothing is called once the run has stopped
    assert (await service.client.get(path)).json() == run
    assert run["state"] == "cancelled"
    assert 1 <= len(run["steps"]) < 8  # Task A's one epoch has 8 steps
    assert run["step"] == len(run["steps"])
    assert run["best"]["score"] is not None
    assert run["roles"]["validation"]["calls"] >= 60  # the baseline, at least
    headers = dict(service.client.headers)
    events = await read_events(service.client, run["id"], headers, resource="optimizations")
    assert events[-1].kind == "job_cancelled"
    counted = sum(int(usage["calls"]) for usage in run["roles"].values())
    assert calls > counted  # the cancel came mid-step: that step's calls are in no finished step


async def test_jobs_lists_batch_jobs_only_and_points_a_run_to_its_own_path(
    service: Service,
) -> None:
    data = await task_a(service.client)
    batch = await service.client.post(
        "/v1/jobs", json={"graph_id": data["graph_id"], "inputs": [{"question": "Two cats."}]}
    )
    run = await service.client.post("/v1/optimizations", json=request(data))
    evaluation = await service.client.post(
        "/v1/evaluations",
        json={"graph_id": data["graph_id"], "dataset": data["val"], "loss": ANSWER_LOSS},
    )
    assert (batch.status_code, run.status_code, evaluation.status_code) == (202, 202, 202)

    listed = (await service.client.get("/v1/jobs")).json()["items"]
    assert [job["id"] for job in listed] == [batch.json()["id"]]
    assert (await service.client.get(f"/v1/jobs/{batch.json()['id']}")).status_code == 200
    for resource, found in (("optimizations", run), ("evaluations", evaluation)):
        run_id = found.json()["id"]
        shown = await service.client.get(f"/v1/jobs/{run_id}")
        assert shown.status_code == 404, shown.text
        assert f"/v1/{resource}/{run_id}" in shown.json()["detail"]
