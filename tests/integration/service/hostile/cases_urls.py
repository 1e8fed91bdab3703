"""Hostile paths, query strings, headers, methods and credentials."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.hostile import Baseline, Hostile, assert_problem
from tests.support.service import Service

BIG = 2**63
INT32 = 2**31


def get(name: str, path: str, status: int, field: str | None, **request: Any) -> Hostile:
    return Hostile(name, "GET", path, status, field, **request)


def resume(name: str, last_event_id: str) -> Hostile:
    headers = {"Last-Event-ID": last_event_id.encode()}  # UTF-8 bytes on the wire
    return get(
        f"events: Last-Event-ID {name}",
        "/v1/jobs/{job}/events",
        400,
        "Last-Event-ID",
        headers=headers,
    )


async def allow_listed(service: Service, response: httpx.Response, baseline: Baseline) -> None:
    assert_problem(response, Hostile("405", "DELETE", "", 405, None))
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


CASES = [
    get("item: index of 2^63", f"/v1/jobs/{{job}}/items/{BIG}", 422, "index"),
    get("item: index of 2^31", f"/v1/jobs/{{job}}/items/{INT32}", 422, "index"),
    get("item: negative index", "/v1/jobs/{job}/items/-1", 422, "index"),
    get("item: index of Arabic digits", "/v1/jobs/{job}/items/\u0661", 422, "index"),
    get("results: after 2^63", f"/v1/jobs/{{job}}/results?after={BIG}", 422, "after"),
    get("results: after 2^31", f"/v1/jobs/{{job}}/results?after={INT32}", 422, "after"),
    get("trace: after 2^63", f"/v1/jobs/{{job}}/trace?after={BIG}", 422, "after"),
    get("events: after 2^63", f"/v1/jobs/{{job}}/events?after={BIG}", 422, "after"),
    get("graph: version 2^63", f"/v1/graphs/{{graph}}?version={BIG}", 422, "version"),
    get("graph: version 2^31", f"/v1/graphs/{{graph}}?version={INT32}", 422, "version"),
    get("graph dot: version 2^63", f"/v1/graphs/{{graph}}/dot?version={BIG}", 422, "version"),
    get("graph: NUL in the path", "/v1/graphs/ec%00ho", 400, "path"),
    get("job: NUL in the path", "/v1/jobs/%00", 400, "path"),
    get("webhook: NUL in the path", "/v1/jobs/a%00b/webhook", 400, "path"),
    get("graphs: NUL in a query", "/v1/graphs?after=%00", 400, "query"),
    get("jobs: NUL in a cursor", "/v1/jobs?before=2026-01-01~%00", 400, "query"),
    get("jobs: garbage cursor", "/v1/jobs?before=yesterday", 422, "before"),
    resume("superscript digit", "\u00b2"),
    resume("Arabic-Indic digits", "\u0661\u0662"),
    resume("over 2^63", str(BIG)),
    resume("negative", "-1"),
    resume("not a number", "last"),
    Hostile("jobs: DELETE is not allowed", "DELETE", "/v1/jobs", 405, None, check=allow_listed),
    Hostile(
        "runs: no key, malformed body",
        "POST",
        "/v1/runs",
        401,
        "Authorization",
        content=b"{nope",
        headers={"content-type": "application/json"},
        authorized=False,
    ),
    Hostile(
        "jobs: no key, text/plain body",
        "POST",
        "/v1/jobs",
        401,
        "Authorization",
        content=b"[]",
        authorized=False,
    ),
    Hostile(
        "graphs: bad key, oversized JSON",
        "POST",
        "/v1/graphs",
        401,
        "API key",
        content=b"[" * 1000 + b"]" * 1000,
        headers={"content-type": "application/json", "authorization": "Bearer ie_nope"},
        authorized=False,
    ),
]
