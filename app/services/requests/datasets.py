"""Datasets: a JSONL upload of ``{"input": {...}, "expected": ..., "id"?: ...}`` lines, checked,
stored once per tenant under the SHA-256 of its canonical lines, and read back in pages.

>>> canonical_line({"input": {"q": "2+2"}, "expected": 4})
'{"expected":4,"input":{"q":"2+2"}}'
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Dataset, DatasetItem
from app.db.repositories import datasets as repo
from app.services.errors import InvalidInput, Issue, NotFound
from app.services.requests.jsonl import Readable, jsonl_values

FIELDS = ("input", "expected")
OPTIONAL = ("id",)
MAX_ID_CHARS = 200


@dataclass(frozen=True, slots=True)
class DatasetUpload:
    """A dataset's name, its JSONL body and the limits it is read under."""

    name: str
    source: Readable
    max_line_bytes: int
    max_items: int
    max_depth: int


@dataclass(frozen=True, slots=True)
class DatasetView:
    id: str
    name: str
    hash: str
    count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ItemView:
    index: int
    id: str | None
    input: dict[str, Any]
    expected: Any


@dataclass(frozen=True, slots=True)
class ItemsPage:
    """Items in upload order; ``next`` is the index to continue after (``None``: the last page)."""

    items: list[ItemView]
    next: int | None


async def upload(
    session: AsyncSession, tenant_id: str, upload: DatasetUpload
) -> tuple[DatasetView, bool]:
    """Check and store a dataset; the same content again (under any name) answers the stored
    one and ``False``. A bad line raises naming it (``items[3].input``); nothing is stored."""
    limits = (upload.max_line_bytes, upload.max_items, upload.max_depth)
    values = [value async for value in jsonl_values(upload.source, *limits, field="items")]
    items, digest = await asyncio.to_thread(prepare, values)
    dataset, created = await repo.add_dataset(session, tenant_id, upload.name, digest, items)
    return dataset_view(dataset), created


def prepare(lines: Sequence[tuple[int, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The checked items (as stored) of (line number, value) pairs, and their content hash."""
    if not lines:
        raise InvalidInput("a dataset needs at least one item", [Issue("items", "no items")])
    digest = hashlib.sha256()
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, (number, value) in enumerate(lines):
        item = checked_item(value, index, number, seen)
        digest.update((b"\n" if index else b"") + canonical_line(value).encode("utf-8"))
        items.append(item)
    return items, digest.hexdigest()


def canonical_line(value: dict[str, Any]) -> str:
    """The line as hashed: sorted keys, compact separators, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def checked_item(value: Any, index: int, line: int, seen: dict[str, int]) -> dict[str, Any]:
    """The stored form (``item_id``, ``input``, ``expected``) of one line, or ``InvalidInput``
    naming the field; ``seen`` maps the ids met so far to their index."""
    where = f"items[{index}]"
    if not isinstance(value, dict):
        _refuse(where, "must be a JSON object with input and expected", line)
    for key in value:
        if key not in FIELDS + OPTIONAL:
            _refuse(f"{where}.{key}", "unknown field (a line has input, expected and id)", line)
    for key in FIELDS:
        if key not in value:
            _refuse(f"{where}.{key}", "missing", line)
    if not isinstance(value["input"], dict):
        _refuse(f"{where}.input", "must be a JSON object of the graph's inputs", line)
    return {"item_id": _item_id(value, index, line, seen), **{k: value[k] for k in FIELDS}}


def _item_id(value: dict[str, Any], index: int, line: int, seen: dict[str, int]) -> str | None:
    where = f"items[{index}]"
    item_id = value.get("id")
    if item_id is None:
        return None
    if not isinstance(item_id, str) or not 0 < len(item_id) <= MAX_ID_CHARS:
        _refuse(f"{where}.id", f"must be a string of 1 to {MAX_ID_CHARS} characters", line)
    if item_id in seen:
        _refuse(f"{where}.id", f"the same id as items[{seen[item_id]}]", line)
    seen[item_id] = index
    return item_id


def _refuse(field: str, message: str, line: int) -> NoReturn:
    raise InvalidInput(f"line {line}: {field}: {message}", [Issue(field, message, line=line)])


def dataset_view(dataset: Dataset) -> DatasetView:
    return DatasetView(
        dataset.id, dataset.name, dataset.hash, dataset.item_count, dataset.created_at
    )


def item_view(item: DatasetItem) -> ItemView:
    return ItemView(item.item_index, item.item_id, item.input, item.expected)


async def find(session: AsyncSession, tenant_id: str, dataset_id: str) -> DatasetView:
    """A tenant's dataset; another tenant's is not found."""
    dataset = await repo.get_dataset(session, tenant_id, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id!r} not found")
    return dataset_view(dataset)


async def listing(
    session: AsyncSession, tenant_id: str, limit: int, before: str | None
) -> tuple[list[DatasetView], str | None]:
    """Datasets newest first, and the cursor of the next page."""
    found = await repo.list_datasets(session, tenant_id, limit, _cursor(before))
    nxt = f"{found[-1].created_at.isoformat()}~{found[-1].id}" if len(found) == limit else None
    return [dataset_view(dataset) for dataset in found], nxt


def _cursor(before: str | None) -> tuple[datetime, str] | None:
    if before is None:
        return None
    moment, _, dataset_id = before.partition("~")
    try:
        return datetime.fromisoformat(moment), dataset_id
    except ValueError:
        raise InvalidInput(
            "'before' is not a cursor from this API", [Issue("before", "malformed")]
        ) from None


async def items_page(
    session: AsyncSession, tenant_id: str, dataset_id: str, after: int, limit: int
) -> ItemsPage:
    """Items in upload order after index ``after``; ``next`` continues the listing."""
    await find(session, tenant_id, dataset_id)
    items = await repo.items_page(session, dataset_id, after, limit)
    nxt = items[-1].item_index if len(items) == limit else None
    return ItemsPage([item_view(item) for item in items], nxt)
