"""Datasets over HTTP: JSONL upload, idempotency by content hash, reads, tenant isolation, and
bad lines refused with nothing stored."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from tests.support.service import Service

NDJSON = {"content-type": "application/x-ndjson"}
ITEMS: list[dict[str, Any]] = [
    {"id": "q1", "input": {"question": "2+2?"}, "expected": "4"},
    {"input": {"question": "capital of France?"}, "expected": {"answer": "Paris"}},
    {"id": "q3", "input": {"question": "nothing?"}, "expected": None},
]


def jsonl(items: list[Any]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


async def push(
    client: httpx.AsyncClient, body: bytes, name: str = "qa", headers: dict[str, str] = NDJSON
) -> httpx.Response:
    return await client.post("/v1/datasets", params={"name": name}, content=body, headers=headers)


async def listed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await client.get("/v1/datasets")).json()["items"])


async def test_upload_stores_metadata_and_items_in_order(service: Service) -> None:
    response = await push(service.client, jsonl(ITEMS))
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["name"], created["count"], created["created"]) == ("qa", 3, True)
    canonical = "\n".join(json.dumps(i, sort_keys=True, separators=(",", ":")) for i in ITEMS)
    assert created["hash"] == hashlib.sha256(canonical.encode()).hexdigest()

    shown = (await service.client.get(f"/v1/datasets/{created['id']}")).json()
    assert {k: shown[k] for k in ("id", "name", "hash", "count")} == {
        k: created[k] for k in ("id", "name", "hash", "count")
    }
    page = (await service.client.get(f"/v1/datasets/{created['id']}/items")).json()
    assert [(i["index"], i["id"], i["input"], i["expected"]) for i in page["items"]] == [
        (index, item.get("id"), item["input"], item["expected"]) for index, item in enumerate(ITEMS)
    ]
    assert page["next"] is None


async def test_items_come_a_page_at_a_time(service: Service) -> None:
    items = [{"input": {"n": n}, "expected": n * 2} for n in range(5)]
    dataset = (await push(service.client, jsonl(items))).json()
    path = f"/v1/datasets/{dataset['id']}/items"
    first = (await service.client.get(path, params={"limit": 2})).json()
    second = (await service.client.get(path, params={"limit": 2, "after": first["next"]})).json()
    rest = (await service.client.get(path, params={"limit": 2, "after": second["next"]})).json()
    seen = [i["expected"] for page in (first, second, rest) for i in page["items"]]
    assert (seen, rest["next"]) == ([0, 2, 4, 6, 8], None)


async def test_the_same_content_again_is_the_same_dataset(service: Service) -> None:
    first = (await push(service.client, jsonl(ITEMS))).json()
    # the same items written differently (key order, spacing, blank lines, CRLF, other type)
    rewritten = b"\r\n".join(
        json.dumps(
            dict(reversed(list(item.items()))), indent=None, separators=(", ", " : ")
        ).encode()
        for item in ITEMS
    )
    headers = {"content-type": "application/jsonl"}
    again = await push(service.client, b"\n" + rewritten + b"\n\n", name="other", headers=headers)
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["created"]) == (first["id"], False)
    assert [d["id"] for d in await listed(service.client)] == [first["id"]]


async def test_different_content_is_another_dataset(service: Service) -> None:
    first = (await push(service.client, jsonl(ITEMS))).json()
    second = (await push(service.client, jsonl(ITEMS[:2]))).json()
    assert second["id"] != first["id"]
    assert [d["id"] for d in await listed(service.client)] == [second["id"], first["id"]]


async def test_another_tenant_sees_nothing(
    service: Service, other_tenant: httpx.AsyncClient
) -> None:
    mine = (await push(service.client, jsonl(ITEMS))).json()
    assert (await other_tenant.get(f"/v1/datasets/{mine['id']}")).status_code == 404
    assert (await other_tenant.get(f"/v1/datasets/{mine['id']}/items")).status_code == 404
    assert await listed(other_tenant) == []
    theirs = await push(other_tenant, jsonl(ITEMS))  # the same content is their own dataset
    assert (theirs.status_code, theirs.json()["id"] != mine["id"]) == (201, True)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"input": {"q": 1}}, "items[2].expected"),
        ({"expected": 1}, "items[2].input"),
        ({"input": "text", "expected": 1}, "items[2].input"),
        ({"input": {}, "expected": 1, "label": "x"}, "items[2].label"),
        ({"id": 7, "input": {}, "expected": 1}, "items[2].id"),
        ({"id": "q1", "input": {}, "expected": 1}, "items[2].id"),
        ([1, 2], "items[2]"),
    ],
)
async def test_a_bad_line_names_its_field_and_stores_nothing(
    service: Service, line: Any, field: str
) -> None:
    response = await push(service.client, jsonl([*ITEMS[:2], line]))
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert (error["field"], error["line"]) == (field, 3)
    assert await listed(service.client) == []


async def test_unparsable_and_oversized_lines_are_refused(service: Service) -> None:
    broken = await push(service.client, jsonl(ITEMS[:1]) + b"{not json\n")
    assert broken.status_code == 400
    assert (broken.json()["errors"][0]["field"], broken.json()["errors"][0]["line"]) == (
        "items",
        2,
    )
    limit = service.runtime.settings.max_jsonl_line_bytes
    huge = {"input": {"text": "x" * limit}, "expected": 1}
    oversized = await push(service.client, jsonl([ITEMS[0], huge]))
    assert oversized.status_code == 413
    assert oversized.json()["errors"][0]["line"] == 2
    assert await listed(service.client) == []


async def test_empty_upload_wrong_type_and_missing_name_are_refused(service: Service) -> None:
    empty = await push(service.client, b"\n\n")
    assert (empty.status_code, empty.json()["errors"][0]["field"]) == (422, "items")
    as_json = await push(service.client, jsonl(ITEMS), headers={"content-type": "application/json"})
    assert (as_json.status_code, as_json.json()["errors"][0]["field"]) == (415, "Content-Type")
    unnamed = await service.client.post("/v1/datasets", content=jsonl(ITEMS), headers=NDJSON)
    assert unnamed.status_code == 422
    assert await listed(service.client) == []


async def test_too_many_items_is_refused(service: Service) -> None:
    limit = service.runtime.settings.max_dataset_items
    items = [{"input": {"n": n}, "expected": n} for n in range(limit + 1)]
    response = await push(service.client, jsonl(items))
    assert response.status_code == 413
    assert response.json()["errors"][0] == {
        "field": "items",
        "message": "too many lines",
        "line": limit + 1,
    }
    assert await listed(service.client) == []
