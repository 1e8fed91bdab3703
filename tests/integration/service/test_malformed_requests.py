"""Bad input of every kind: a 4xx problem-details answer naming the field, and nothing written."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db.models import GraphRecord, GraphVersion, Job, JobItem
from tests.support.service import Service

GRAPH: dict[str, Any] = {
    "name": "echo",
    "inputs": {"text": {"type": "string"}},
    "nodes": [{"id": "answer", "op": "llm", "alias": "fast", "prompt": "{text}"}],
    "outputs": {"answer": "answer"},
}


def graph(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(GRAPH)
    data.update(changes)
    return data


def node(**changes: Any) -> dict[str, Any]:
    return graph(nodes=[{**GRAPH["nodes"][0], **changes}])


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    field_name: str | None = None  # an error must name this field (or line)


def jsonl(*lines: str | bytes) -> dict[str, Any]:
    raw = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    return {"inputs": ("in.jsonl", raw, "application/x-ndjson")}


JSON = {"content-type": "application/json"}
cycle = graph(
    nodes=[
        {"id": "a", "op": "template", "text": "{b} {text}"},
        {"id": "b", "op": "template", "text": "{a}"},
    ],
    outputs={"o": "a"},
)
CASES = [
    Case("graph: not JSON", "POST", "/v1/graphs", 400, content=b"{nope", headers=JSON),
    Case(
        "graph: invalid UTF-8", "POST", "/v1/graphs", 400, content=b'{"name": "\xff"}', headers=JSON
    ),
    Case(
        "graph: not YAML",
        "POST",
        "/v1/graphs",
        400,
        content=b"a: [b",
        headers={"content-type": "application/yaml"},
    ),
    Case("graph: a list", "POST", "/v1/graphs", 422, json_body=[1, 2], field_name="(body)"),
    Case(
        "graph: missing name",
        "POST",
        "/v1/graphs",
        422,
        json_body={k: v for k, v in GRAPH.items() if k != "name"},
        field_name="name",
    ),
    Case(
        "graph: nodes wrong type",
        "POST",
        "/v1/graphs",
        422,
        json_body=graph(nodes={"a": 1}),
        field_name="nodes",
    ),
    Case(
        "graph: unknown op", "POST", "/v1/graphs", 422, json_body=node(op="shout"), field_name="op"
    ),
    Case("graph: cycle", "POST", "/v1/graphs", 422, json_body=cycle, field_name="text"),
    Case(
        "graph: unknown reference",
        "POST",
        "/v1/graphs",
        422,
        json_body=node(prompt="{ghost}"),
        field_name="prompt",
    ),
    Case(
        "graph: duplicate ids",
        "POST",
        "/v1/graphs",
        422,
        json_body=graph(nodes=[GRAPH["nodes"][0]] * 2),
        field_name="id",
    ),
    Case(
        "graph: unknown alias",
        "POST",
        "/v1/graphs",
        422,
        json_body=node(alias="gigantic"),
        field_name="alias",
    ),
    Case(
        "graph: template braces",
        "POST",
        "/v1/graphs",
        422,
        json_body=node(prompt='{"k": 1}'),
        field_name="prompt",
    ),
    Case(
        "graph: wrong field type",
        "POST",
        "/v1/graphs",
        422,
        json_body=node(max_tokens="many"),
        field_name="max_tokens",
    ),
    Case(
        "graph: negative max_tokens",
        "POST",
        "/v1/graphs",
        422,
        json_body=node(max_tokens=-5),
        field_name="max_tokens",
    ),
    Case(
        "graph: unknown output",
        "POST",
        "/v1/graphs",
        422,
        json_body=graph(outputs={"o": "nothing"}),
        field_name="outputs.o",
    ),
    Case(
        "graph: too many nodes",
        "POST",
        "/v1/graphs",
        422,
        json_body=graph(
            nodes=[{"id": f"n{i}", "op": "template", "text": "{text}"} for i in range(60)]
        ),
        field_name="nodes",
    ),
    Case(
        "graph: oversized body",
        "POST",
        "/v1/graphs",
        413,
        content=b"{" + b" " * 2_100_000 + b"}",
        headers=JSON,
    ),
    Case("job: not JSON", "POST", "/v1/jobs", 400, content=b"[1,", headers=JSON),
    Case(
        "job: unknown graph",
        "POST",
        "/v1/jobs",
        404,
        json_body={"graph_id": "nope", "inputs": [{"text": "x"}]},
    ),
    Case(
        "job: inputs not a list",
        "POST",
        "/v1/jobs",
        422,
        json_body={"graph_id": "echo", "inputs": {"text": "x"}},
        field_name="inputs",
    ),
    Case(
        "job: no inputs",
        "POST",
        "/v1/jobs",
        422,
        json_body={"graph_id": "echo", "inputs": []},
        field_name="inputs",
    ),
    Case(
        "job: item misses an input",
        "POST",
        "/v1/jobs",
        422,
        json_body={"graph_id": "echo", "inputs": [{"text": "a"}, {"txt": "b"}]},
        field_name="inputs[1]",
    ),
    Case(
        "job: item of wrong type",
        "POST",
        "/v1/jobs",
        422,
        json_body={"graph_id": "echo", "inputs": [{"text": 5}]},
        field_name="inputs[0]",
    ),
    Case(
        "job: priority out of range",
        "POST",
        "/v1/jobs",
        422,
        json_body={"graph_id": "echo", "inputs": [{"text": "a"}], "priority": 10**9},
        field_name="priority",
    ),
    Case(
        "job: webhook not a URL",
        "POST",
        "/v1/jobs",
        422,
        json_body={"graph_id": "echo", "inputs": [{"text": "a"}], "webhook_url": "nope"},
        field_name="webhook_url",
    ),
    Case(
        "job: unknown field",
        "POST",
        "/v1/jobs",
        422,
        json_body={"graph_id": "echo", "inputs": [{"text": "a"}], "colour": 1},
        field_name="colour",
    ),
    Case(
        "jsonl: bad JSON line",
        "POST",
        "/v1/jobs",
        400,
        data={"graph_id": "echo"},
        files=jsonl('{"text": "a"}', '{"text": '),
        field_name="2",
    ),
    Case(
        "jsonl: line misses an input",
        "POST",
        "/v1/jobs",
        422,
        data={"graph_id": "echo"},
        files=jsonl('{"text": "a"}', "", '{"other": 1}'),
        field_name="3",
    ),
    Case(
        "jsonl: invalid UTF-8 line",
        "POST",
        "/v1/jobs",
        400,
        data={"graph_id": "echo"},
        files=jsonl(b'{"text": "\xfe"}'),
        field_name="1",
    ),
    Case(
        "jsonl: line too long",
        "POST",
        "/v1/jobs",
        413,
        data={"graph_id": "echo"},
        files=jsonl('{"text": "ok"}', json.dumps({"text": "x" * 20_000})),
        field_name="2",
    ),
    Case(
        "jsonl: no file",
        "POST",
        "/v1/jobs",
        422,
        data={"graph_id": "echo", "inputs": "not a file"},
        files={"other": ("x", b"", "text/plain")},
        field_name="inputs",
    ),
    Case(
        "jsonl: negative version",
        "POST",
        "/v1/jobs",
        422,
        data={"graph_id": "echo", "version": "-1"},
        files=jsonl('{"text": "a"}'),
        field_name="version",
    ),
    Case(
        "results: negative limit",
        "GET",
        "/v1/jobs/{job}/results?limit=-1",
        422,
        field_name="query.limit",
    ),
    Case(
        "results: limit too large",
        "GET",
        "/v1/jobs/{job}/results?limit=100000",
        422,
        field_name="query.limit",
    ),
    Case(
        "results: bad format",
        "GET",
        "/v1/jobs/{job}/results?format=xml",
        422,
        field_name="query.format",
    ),
    Case("job: unknown id", "GET", "/v1/jobs/00000000-0000-0000-0000-000000000000", 404),
    Case("job: cancel unknown id", "POST", "/v1/jobs/nope/cancel", 404),
    Case("item: out of range", "GET", "/v1/jobs/{job}/items/99", 404),
    Case("graph: unknown version", "GET", "/v1/graphs/echo?version=7", 404),
    Case(
        "graph: version zero", "GET", "/v1/graphs/echo?version=0", 422, field_name="query.version"
    ),
    Case(
        "runs: unknown input",
        "POST",
        "/v1/runs",
        422,
        json_body={"graph_id": "echo", "inputs": {"txt": "a"}},
        field_name="inputs",
    ),
    Case(
        "runs: inputs missing",
        "POST",
        "/v1/runs",
        422,
        json_body={"graph_id": "echo"},
        field_name="inputs",
    ),
    Case("jobs list: bad cursor", "GET", "/v1/jobs?before=yesterday", 422, field_name="before"),
]


async def counts(service: Service) -> tuple[int, ...]:
    async with service.runtime.sessions() as session:
        found = [
            await session.scalar(select(func.count()).select_from(m))
            for m in (GraphRecord, GraphVersion, Job, JobItem)
        ]
    return tuple(int(n or 0) for n in found)


@pytest.fixture
async def seeded(service: Service) -> tuple[Service, str]:
    """The service with the echo graph and one finished single-item job."""
    assert (await service.client.post("/v1/graphs", json=GRAPH)).status_code == 201
    job = (
        await service.client.post("/v1/jobs", json={"graph_id": "echo", "inputs": [{"text": "hi"}]})
    ).json()
    await service.run_jobs()
    return service, job["id"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_bad_request_gets_problem_details_and_writes_nothing(
    seeded: tuple[Service, str], case: Case
) -> None:
    service, job_id = seeded
    before = await counts(service)
    response = await service.client.request(
        case.method,
        case.path.format(job=job_id),
        json=case.json_body,
        content=case.content,
        headers=case.headers or None,
        files=case.files,
        data=case.data,
    )
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == case.status
    assert problem["type"].startswith("urn:inf-engine:problem:")
    assert problem["title"]
    assert problem["detail"]
    if case.field_name is not None:
        assert case.field_name in named_places(problem), problem
    assert await counts(service) == before


def named_places(problem: dict[str, Any]) -> set[str]:
    """Every field path (and each of its parts) and line number the problem's errors name."""
    places: set[str] = set()
    for error in problem.get("errors", []):
        field = str(error.get("field") or "")
        places.update({field, *field.split(".")})
        if "line" in error:
            places.add(str(error["line"]))
    return places
