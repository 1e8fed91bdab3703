"""Batch jobs over HTTP against the fake LLM server, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from app.db.repositories import events as events_repo
from app.db.repositories import jobs as jobs_repo
from app.db.session import create_engine, session_factory
from app.lifecycle import TERMINAL_EVENTS, TERMINAL_JOB_STATUSES
from app.services.runner.dispatcher import RunDispatcher
from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.graphs import ECHO_GRAPH
from tests.support.service import Service, loopback_webhooks


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The race test's hook is on loopback, which the operator opens here."""
    return loopback_webhooks(settings)


def documents(n: int, tag: str = "") -> list[dict[str, str]]:
    return [
        {"doc1": f"A{i}{tag}: electric cars.", "doc2": f"B{i}{tag}: hydrogen cars."}
        for i in range(n)
    ]


async def submit(service: Service, graph: str, inputs: list[Any], **extra: Any) -> dict[str, Any]:
    response = await service.client.post(
        "/v1/jobs", json={"graph_id": graph, "inputs": inputs, **extra}
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def status(service: Service, job_id: str) -> dict[str, Any]:
    return dict((await service.client.get(f"/v1/jobs/{job_id}")).json())


async def until_succeeded(service: Service, job_id: str, count: int, timeout_s: float = 10) -> None:
    """Poll the job's status until ``count`` items succeeded."""
    async with asyncio.timeout(timeout_s):
        while True:
            if (await status(service, job_id))["counts"]["succeeded"] >= count:
                return
            await asyncio.sleep(0.05)


async def test_upload_job_results_in_input_order(
    service: Service, fake_llm: FakeLLM, example_graph: dict[str, Any]
) -> None:
    await service.client.post("/v1/graphs", json=example_graph)
    job = await submit(service, "extract-and-compare", documents(30))
    assert (job["status"], job["counts"]["total"], job["counts"]["pending"]) == ("queued", 30, 30)

    await service.run_jobs()

    done = await status(service, job["id"])
    assert done["status"] == "completed"
    assert done["counts"] == {
        "total": 30,
        "pending": 0,
        "running": 0,
        "waiting": 0,
        "succeeded": 30,
        "failed": 0,
        "cancelled": 0,
    }
    assert done["usage"]["input_tokens"] > 0
    page = (await service.client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 20})).json()
    assert [item["index"] for item in page["items"]] == list(range(20))
    rest = (
        await service.client.get(f"/v1/jobs/{job['id']}/results", params={"after": page["next"]})
    ).json()
    assert [item["index"] for item in rest["items"]] == list(range(20, 30))
    assert rest["next"] is None
    assert len(fake_llm.log()) == 90

    item = (await service.client.get(f"/v1/jobs/{job['id']}/items/7")).json()
    nodes = {node["node"]: node for node in item["nodes"]}
    assert item["input"] == documents(30)[7]
    assert (
        nodes["facts1"]["output"] in item["output"]["comparison"]
        or nodes["compare"]["status"] == "succeeded"
    )
    assert item["output"] == {"comparison": nodes["compare"]["output"]}


async def test_jsonl_upload_of_ten_thousand_lines(service: Service, fake_llm: FakeLLM) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    lines = "".join(json.dumps({"text": f"line {i}"}) + "\n" for i in range(10_000))
    files = {"inputs": ("inputs.jsonl", lines.encode(), "application/x-ndjson")}
    response = await service.client.post("/v1/jobs", data={"graph_id": "echo"}, files=files)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["counts"]["total"] == 10_000

    await service.run_jobs()

    assert (await status(service, job_id))["counts"]["succeeded"] == 10_000
    download = await service.client.get(f"/v1/jobs/{job_id}/results", params={"format": "jsonl"})
    rows = [json.loads(line) for line in download.text.splitlines()]
    assert [row["index"] for row in rows] == list(range(10_000))
    assert rows[1234]["output"]["answer"].endswith("line 1234")
    assert len(fake_llm.log()) == 10_000


async def test_per_item_failures_are_counted_and_the_job_completes(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(rules=[{"match": "poison", "status": 400}])
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    inputs = [{"text": "poison" if i % 5 == 0 else f"fine {i}"} for i in range(20)]
    job = await submit(service, "echo", inputs)
    await service.run_jobs()
    done = await status(service, job["id"])
    assert done["status"] == "completed"
    assert (done["counts"]["succeeded"], done["counts"]["failed"]) == (16, 4)
    failed = (await service.client.get(f"/v1/jobs/{job['id']}/items/5")).json()
    assert failed["status"] == "failed"
    assert "answer: PermanentLLMError" in failed["error"]


FLAG_GRAPH = {
    "name": "flagged",
    "inputs": {"flag": {"type": "any"}},
    "nodes": [
        {
            "id": "shout",
            "op": "template",
            "text": "{flag}!",
            "when": {"ref": "flag", "equals": True},
        }
    ],
    "outputs": {"out": "shout"},
}


async def test_a_condition_that_is_not_a_boolean_fails_its_item(service: Service) -> None:
    await service.client.post("/v1/graphs", json=FLAG_GRAPH)
    job = await submit(service, "flagged", [{"flag": True}, {"flag": "yes"}, {"flag": False}])
    await service.run_jobs()
    items = [(await service.client.get(f"/v1/jobs/{job['id']}/items/{i}")).json() for i in range(3)]
    assert [item["status"] for item in items] == ["succeeded", "failed", "succeeded"]
    assert "shout: BranchError: condition 'flag' must be a JSON boolean" in items[1]["error"]
    assert 'got "yes"' in items[1]["error"]


async def test_cancel_stops_dispatch_and_keeps_partial_results(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=100)
    service.runtime.settings.runner_window = 4
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    job = await submit(service, "echo", [{"text": f"t{i}"} for i in range(200)])
    runner = asyncio.ensure_future(service.run_jobs())
    await until_succeeded(service, job["id"], 8)

    cancelled = await service.client.post(f"/v1/jobs/{job['id']}/cancel")
    cancelled_at = fake_llm.stats()["requests"]
    await asyncio.wait_for(runner, 10)
    await asyncio.sleep(1.0)

    assert cancelled.json()["status"] == "cancelled"
    # at most the window was already in flight
    assert fake_llm.stats()["requests"] <= cancelled_at + 4
    final = await status(service, job["id"])
    counts = final["counts"]
    assert final["status"] == "cancelled"
    assert counts["succeeded"] >= 8
    assert counts["succeeded"] + counts["cancelled"] + counts["failed"] == 200
    assert counts["running"] == counts["pending"] == 0
    results = (
        await service.client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 1000})
    ).json()["items"]
    assert (
        sum(r["status"] == "succeeded" and r["output"] is not None for r in results)
        == counts["succeeded"]
    )


async def test_job_of_another_tenant_is_invisible(
    service: Service, other_tenant: Any, example_graph: dict[str, Any]
) -> None:
    await service.client.post("/v1/graphs", json=example_graph)
    job = await submit(service, "extract-and-compare", documents(2))
    await service.run_jobs()
    base = f"/v1/jobs/{job['id']}"
    for method, path in [
        ("GET", base),
        ("GET", f"{base}/results"),
        ("GET", f"{base}/results?format=jsonl"),
        ("GET", f"{base}/items/0"),
        ("POST", f"{base}/cancel"),
        ("GET", "/v1/graphs/extract-and-compare"),
        ("GET", "/v1/graphs/extract-and-compare/versions"),
    ]:
        response = await other_tenant.request(method, path)
        assert response.status_code == 404, (method, path, response.status_code)
    assert (await other_tenant.get("/v1/jobs")).json()["items"] == []
    assert (await other_tenant.get("/v1/graphs")).json()["items"] == []
    submitted = await other_tenant.post(
        "/v1/jobs", json={"graph_id": "extract-and-compare", "inputs": documents(1)}
    )
    assert submitted.status_code == 404
    assert (await status(service, job["id"]))["status"] == "completed"


async def test_requests_without_a_valid_key_are_refused(service: Service) -> None:
    for headers in ({}, {"Authorization": "Bearer ie_nope"}, {"Authorization": "Basic abc"}):
        response = await service.client.get(
            "/v1/jobs", headers=headers | {"Authorization": headers.get("Authorization", "")}
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


async def test_job_listing_names_each_jobs_graph_and_pages_newest_first(
    service: Service, example_graph: dict[str, Any]
) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    await service.client.post("/v1/graphs", json=example_graph)
    made = [
        (await submit(service, "echo", [{"text": "a"}]))["id"],
        (await submit(service, "extract-and-compare", documents(1)))["id"],
        (await submit(service, "echo", [{"text": "b"}]))["id"],
    ]
    await service.client.post(f"/v1/jobs/{made[0]}/cancel")

    first = (await service.client.get("/v1/jobs", params={"limit": 2})).json()
    rest = await service.client.get("/v1/jobs", params={"limit": 2, "before": first["next"]})
    cancelled = (await service.client.get("/v1/jobs", params={"status": "cancelled"})).json()

    listed = first["items"] + rest.json()["items"]
    assert [job["id"] for job in listed] == made[::-1]
    graphs = {job["id"]: (job["graph_version"], job["graph_id"]) for job in listed}
    names = {
        graph["id"]: graph["name"]
        for graph in (await service.client.get("/v1/graphs")).json()["items"]
    }
    assert {job_id: names[graph] for job_id, (_, graph) in graphs.items()} == {
        made[0]: "echo",
        made[1]: "extract-and-compare",
        made[2]: "echo",
    }
    assert {version for version, _ in graphs.values()} == {1}
    assert [job["id"] for job in cancelled["items"]] == [made[0]]


# -- leases, stalls and cancellation races -------------------------------------------------


async def job_events(service: Service, job_id: str) -> list[str]:
    """The kinds of every stored event of the job, oldest first."""
    async with service.runtime.sessions() as session:
        stored = await events_repo.events_after(session, job_id, 0, 100_000)
    return [event.kind for event in stored]


def terminal(kinds: list[str]) -> list[str]:
    return [kind for kind in kinds if kind in TERMINAL_EVENTS]


async def until_ended(service: Service, job_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """Poll the job's status until it has ended."""
    async with asyncio.timeout(timeout_s):
        while True:
            if (found := await status(service, job_id))["status"] in TERMINAL_JOB_STATUSES:
                return found
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def background_runner(service: Service) -> AsyncIterator[RunDispatcher]:
    """The runner as in production (claim loop and heartbeats), on the test's event loop."""
    runner = RunDispatcher(service.runtime)
    service.runtime.runner = runner
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()
        service.runtime.runner = None


async def test_a_stall_longer_than_the_lease_does_not_run_the_job_twice(
    service: Service, fake_llm: FakeLLM
) -> None:
    settings = service.runtime.settings
    settings.lease_s, settings.heartbeat_s, settings.poll_s = 2.0, 1.0, 0.05
    settings.runner_window = 4
    fake_llm.configure(latency_ms=50, log=True)
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    job = await submit(service, "echo", [{"text": f"t{i}"} for i in range(80)])

    async with background_runner(service):
        await until_succeeded(service, job["id"], 8)
        # The event loop that runs the runner blocks, as under a long synchronous call or
        # a CPU-bound burst: the job's lease lapses in the database meanwhile.
        time.sleep(2 * settings.lease_s + 0.5)  # noqa: ASYNC251 (the stall under test)
        final = await until_ended(service, job["id"])

    prompts = Counter(entry["prompt"] for entry in fake_llm.log())
    assert final["status"] == "completed"
    assert final["counts"]["succeeded"] == 80
    assert len(prompts) == 80
    assert set(prompts.values()) == {1}, "an item was called more than once"
    kinds = await job_events(service, job["id"])
    assert kinds.count("job_started") == 1
    assert terminal(kinds) == ["job_completed"]


async def test_a_lapsed_lease_is_not_claimed_again_by_the_runner_that_holds_it(
    service: Service, fake_llm: FakeLLM
) -> None:
    settings = service.runtime.settings
    settings.heartbeat_s, settings.poll_s, settings.runner_window = 600.0, 0.05, 4
    fake_llm.configure(latency_ms=50, log=True)
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    job = await submit(service, "echo", [{"text": f"t{i}"} for i in range(60)])

    async with background_runner(service) as runner:
        await until_succeeded(service, job["id"], 8)
        # What a stall leaves behind, without waiting for one: the lease has lapsed in the
        # database while its runner still runs the job; the claim loop then looks for work.
        async with service.runtime.sessions() as session:
            await jobs_repo.expire_leases(session)
            await session.commit()
        runner.notify()
        final = await until_ended(service, job["id"])

    prompts = Counter(entry["prompt"] for entry in fake_llm.log())
    assert (final["status"], final["counts"]["succeeded"]) == ("completed", 60)
    assert len(prompts) == 60
    assert set(prompts.values()) == {1}, "an item was called more than once"
    kinds = await job_events(service, job["id"])
    assert kinds.count("job_started") == 1
    assert terminal(kinds) == ["job_completed"]


async def test_a_cancel_racing_the_runner_ends_the_job_exactly_once(
    service: Service, fake_llm: FakeLLM
) -> None:
    fake_llm.configure(latency_ms=10)
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    hook = "http://127.0.0.1:9/hook"
    await submit(service, "echo", [{"text": "warm-up"}] * 3, webhook_url=hook)
    started = time.monotonic()
    await service.run_jobs()
    lifetime = time.monotonic() - started  # cancels land anywhere in a job's life, or after
    chance = random.Random(20261202)
    outcomes: Counter[str] = Counter()
    for attempt in range(30):
        inputs = [{"text": f"r{attempt}-{i}"} for i in range(3)]
        job = await submit(service, "echo", inputs, webhook_url=hook)
        runner = asyncio.ensure_future(service.run_jobs())
        await asyncio.sleep(chance.uniform(0.0, 1.2 * lifetime))
        response = await service.client.post(f"/v1/jobs/{job['id']}/cancel")
        assert response.status_code == 200
        await asyncio.wait_for(runner, 20)

        final = await status(service, job["id"])
        ended = terminal(await job_events(service, job["id"]))
        assert ended == [f"job_{final['status']}"], (attempt, ended, final["status"])
        assert final["status"] in ("completed", "cancelled")
        assert final["webhook_state"] == "pending", attempt
        counts = final["counts"]
        assert counts["running"] == counts["pending"] == 0, (attempt, counts)
        assert counts["succeeded"] + counts["cancelled"] == 3, (attempt, counts)
        outcomes[final["status"]] += 1
    print(f"\ncancel races: {dict(outcomes)}")


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
async def test_a_cancel_while_the_runner_is_dead_closes_the_job_and_its_stream(
    service: Service,
) -> None:
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    job = await submit(service, "echo", [{"text": f"t{i}"} for i in range(4)])
    async with service.runtime.sessions() as session:  # a runner took two items, then died
        await jobs_repo.claim_jobs(session, "gone", 30.0, 1, datetime.now(UTC))
        await jobs_repo.mark_running(session, job["id"], [0, 1])
        await session.commit()
    assert service.runtime.runner is None

    response = await service.client.post(f"/v1/jobs/{job['id']}/cancel")
    async with asyncio.timeout(10):
        stream = await service.client.get(f"/v1/jobs/{job['id']}/events")

    assert response.json()["status"] == "cancelled"
    final = await status(service, job["id"])
    assert final["counts"]["cancelled"] == 4
    assert final["counts"]["running"] == final["counts"]["pending"] == 0
    items = (await service.client.get(f"/v1/jobs/{job['id']}/results")).json()["items"]
    assert {item["status"] for item in items} == {"cancelled"}
    assert terminal(await job_events(service, job["id"])) == ["job_cancelled"]
    assert "event: job_cancelled" in stream.text


def claim_as_another_process(database_url: str) -> list[str]:
    """What another process claiming now would take: run on a thread with its own event
    loop and engine, so it works while the test's own loop is blocked."""

    async def claim() -> list[str]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session:
                now = datetime.now(UTC)
                taken = await jobs_repo.claim_jobs(session, "another-process", 30.0, 10, now)
                await session.commit()
            return [job.id for job in taken]
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, claim()).result()


POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@POSTGRES_ONLY
async def test_a_stalled_event_loop_keeps_its_leases_from_other_processes(
    service: Service, fake_llm: FakeLLM
) -> None:
    settings = service.runtime.settings
    settings.lease_s, settings.heartbeat_s, settings.runner_window = 2.0, 0.5, 4
    fake_llm.configure(latency_ms=2500, log=True)  # slow calls: quiet gaps between writes
    await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    job = await submit(service, "echo", [{"text": f"t{i}"} for i in range(8)])

    async with background_runner(service) as runner:
        await until_succeeded(service, job["id"], 4)
        await runner.writer.flush()  # no transaction of the runner is open during the stall
        time.sleep(2 * settings.lease_s + 0.5)  # noqa: ASYNC251 (the stall under test)
        # still during the stall: the leases were renewed meanwhile, there is nothing to take
        assert claim_as_another_process(settings.database_url) == []
        final = await until_ended(service, job["id"])

    assert (final["status"], final["counts"]["succeeded"]) == ("completed", 8)
    assert set(Counter(entry["prompt"] for entry in fake_llm.log()).values()) == {1}
