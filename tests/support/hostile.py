"""The hostile-input harness: one bad request at a time against a service that holds one
finished job, while a background probe times ``/healthz``.

Every case asserts three things:

1. the answer: by default a 4xx ``application/problem+json`` with the stable ``type`` of its
   status (or ``case.slug``) that names ``case.field`` (in an ``errors`` entry's ``field`` or
   ``line``, or in ``detail``); a case with ``case.check`` asserts its own outcome instead
   (for instance a job that is accepted but whose item fails naming the limit it hit);
2. the service stayed responsive: every ``/healthz`` probe made during and after the case
   answered 200 within :data:`HEALTH_BOUND_S` of wall time (probes run back to back, so a stall
   of the event loop always falls into one). On a loaded machine the OS alone can make a probe
   late now and then, so a case whose only failure is a late probe is sent again, up to
   :data:`ATTEMPTS` times in all; a service that blocks is late on every attempt;
3. nothing earlier was lost or changed: the finished job's status, results, item and graph
   read back byte-identical.

Adding a case
-------------
Add a :class:`Hostile` to the ``CASES`` list of a module ``cases_<topic>.py`` in
``tests/integration/service/hostile/`` (a new module is picked up by itself)::

    Hostile("jobs: boolean priority", "POST", "/v1/jobs", 422, "priority",
            json_body={"graph_id": "echo", "inputs": [{"text": "a"}], "priority": True})

``path`` may use ``{job}`` (the finished job's id) and ``{graph}`` (the echo graph's name).
Give a large or deeply nested body as ``content=lambda: ...`` so that building it happens
before the probe starts (the client shares the event loop with the service). A case whose
outcome is not a problem answer passes ``check=``, an async function of the service, the
response and the baseline; it may run the job it submitted with ``await service.run_jobs()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.service import Service

HEALTH_BOUND_S = 0.100
ATTEMPTS = 3
PROBLEM_JSON = "application/problem+json"
SLUGS = {
    400: "malformed-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
}
ECHO_GRAPH: dict[str, Any] = {
    "name": "echo",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": "answer", "op": "llm", "alias": "fast", "prompt": "{text}"}],
    "outputs": {"answer": "answer"},
}
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Baseline:
    """The finished job every case must leave untouched, and how it read before the case."""

    job_id: str
    graph: str
    reads: dict[str, bytes]


Check = Callable[[Service, httpx.Response, Baseline], Awaitable[None]]


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the answer it must get."""

    name: str
    method: str
    path: str
    status: int
    field: str | None
    json_body: Any = None
    content: bytes | Callable[[], bytes] | None = None
    headers: dict[str, str | bytes] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    slug: str | None = None
    authorized: bool = True
    check: Check | None = None

    def body(self) -> bytes | None:
        return self.content() if callable(self.content) else self.content


def ids(cases: list[Hostile]) -> list[str]:
    return [case.name for case in cases]


async def seed(service: Service) -> Baseline:
    """Upload the echo graph, run one single-item job to the end, and read it back."""
    created = await service.client.post("/v1/graphs", json=ECHO_GRAPH)
    assert created.status_code == 201, created.text
    submitted = await service.client.post(
        "/v1/jobs", json={"graph_id": "echo", "inputs": [{"text": "hi"}]}
    )
    assert submitted.status_code == 202, submitted.text
    await service.run_jobs()
    job_id = submitted.json()["id"]
    reads = await read_back(service, job_id)
    assert b'"succeeded"' in reads["status"], reads["status"]
    return Baseline(job_id, "echo", reads)


async def read_back(service: Service, job_id: str) -> dict[str, bytes]:
    """The bytes of every read that shows the finished job's results."""
    paths = {
        "status": f"/v1/jobs/{job_id}",
        "results": f"/v1/jobs/{job_id}/results?format=jsonl",
        "page": f"/v1/jobs/{job_id}/results",
        "item": f"/v1/jobs/{job_id}/items/0",
        "graph": "/v1/graphs/echo",
    }
    reads = {}
    for name, path in paths.items():
        response = await service.client.get(path)
        assert response.status_code == 200, (path, response.text)
        reads[name] = response.content
    return reads


class HealthProbe:
    """Polls ``/healthz`` back to back on its own connection, timing each answer."""

    def __init__(self, url: str) -> None:
        self._client = httpx.AsyncClient(base_url=url, timeout=30)
        self._stop = asyncio.Event()
        self._answered = asyncio.Condition()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HealthProbe:
        self._task = asyncio.get_running_loop().create_task(self._poll())
        await self.wait_for(1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._client.aclose()

    async def wait_for(self, count: int) -> None:
        """Return once ``count`` more probes have answered."""
        async with self._answered:
            target = len(self.latencies) + count
            await self._answered.wait_for(
                lambda: len(self.latencies) >= target or bool(self.failures)
            )

    @property
    def slowest(self) -> float:
        return max(self.latencies)

    async def _poll(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                response = await self._client.get("/healthz")
            except httpx.HTTPError as exc:
                response = None
                failure = f"/healthz failed: {exc!r}"
            answered = time.perf_counter()
            async with self._answered:
                if response is not None and response.status_code != 200:
                    failure = f"/healthz answered {response.status_code}"
                if response is None or response.status_code != 200:
                    self.failures.append(failure)
                self.latencies.append(answered - started)
                self._answered.notify_all()
            if self.failures:
                return


async def run_case(service: Service, baseline: Baseline, case: Hostile) -> None:
    """Send the case's request under the health probe and assert all three promises."""
    body = case.body()
    slowest: list[float] = []
    for _ in range(ATTEMPTS):
        probe = await _send(service, baseline, case, body)
        assert not probe.failures, probe.failures
        assert await read_back(service, baseline.job_id) == baseline.reads
        slowest.append(probe.slowest)
        if probe.slowest < HEALTH_BOUND_S:
            return
    late = ", ".join(f"{seconds * 1000:.0f}" for seconds in slowest)
    raise AssertionError(f"/healthz answered late on every attempt (slowest, ms: {late})")


async def _send(
    service: Service, baseline: Baseline, case: Hostile, body: bytes | None
) -> HealthProbe:
    client = service.client if case.authorized else _anonymous(service)
    try:
        async with HealthProbe(service.url) as probe:
            response = await client.request(
                case.method,
                case.path.format(job=baseline.job_id, graph=baseline.graph),
                json=case.json_body,
                content=body,
                headers=case.headers or None,
                files=case.files,
                data=case.data,
            )
            await probe.wait_for(2)
            if case.check is not None:
                await case.check(service, response, baseline)
            else:
                assert_problem(response, case)
    finally:
        if client is not service.client:
            await client.aclose()
    return probe


def _anonymous(service: Service) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=service.url, timeout=60)


def assert_problem(response: httpx.Response, case: Hostile) -> None:
    """A problem-details answer of the case's status and type naming the case's field."""
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == case.status
    assert problem["type"] == f"urn:inf-engine:problem:{case.slug or SLUGS[case.status]}"
    assert problem["title"]
    assert problem["detail"]
    if case.field is not None:
        assert names(problem, case.field), problem


def names(problem: dict[str, Any], place: str) -> bool:
    """Whether the problem names ``place``: a field path (or a part of one), a line, or text
    of its ``detail``."""
    places: set[str] = set()
    for error in problem.get("errors") or []:
        path = str(error.get("field") or "")
        places.update({path, *path.split(".")})
        if "line" in error:
            places.add(str(error["line"]))
    return place in places or place in str(problem["detail"])
