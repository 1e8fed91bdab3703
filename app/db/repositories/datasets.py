"""Datasets: immutable ``(input, expected)`` items, stored once per tenant and content hash."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.base import new_id, utcnow
from app.db.models import Dataset, DatasetItem

INSERT_BATCH = 1_000


async def add_dataset(
    session: AsyncSession, tenant_id: str, name: str, hash: str, items: Sequence[dict[str, Any]]
) -> tuple[Dataset, bool]:
    """Store a dataset and its items (dicts of ``item_id``, ``input``, ``expected``, in order);
    ``created`` is False when the tenant has one with this hash, which is returned as is.

    Concurrent uploads of one content meet on the unique (tenant, hash): one inserts, the other
    finds its row."""
    values = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "name": name,
        "hash": hash,
        "item_count": len(items),
        "created_at": utcnow(),
    }
    await session.execute(dialects.insert_ignore(session, Dataset, values, ["tenant_id", "hash"]))
    stmt = select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.hash == hash)
    dataset = (await session.scalars(stmt)).one()
    if dataset.id != values["id"]:
        return dataset, False
    await _add_items(session, dataset.id, items)
    return dataset, True


async def _add_items(
    session: AsyncSession, dataset_id: str, items: Sequence[dict[str, Any]]
) -> None:
    for start in range(0, len(items), INSERT_BATCH):
        rows = [
            {"dataset_id": dataset_id, "item_index": index, **item}
            for index, item in enumerate(items[start : start + INSERT_BATCH], start)
        ]
        await session.execute(insert(DatasetItem), rows)


async def get_dataset(session: AsyncSession, tenant_id: str, dataset_id: str) -> Dataset | None:
    """A tenant's dataset by id (another tenant's is not found)."""
    stmt = select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.id == dataset_id)
    return await session.scalar(stmt)


async def list_datasets(
    session: AsyncSession, tenant_id: str, limit: int, before: tuple[datetime, str] | None = None
) -> list[Dataset]:
    """A page of a tenant's datasets, newest first; ``before`` is the (created_at, id) of the
    last one of the previous page."""
    stmt = select(Dataset).where(Dataset.tenant_id == tenant_id)
    if before is not None:
        moment, dataset_id = before
        same_moment = and_(Dataset.created_at == moment, Dataset.id < dataset_id)
        stmt = stmt.where(or_(Dataset.created_at < moment, same_moment))
    order = (Dataset.created_at.desc(), Dataset.id.desc())
    return list(await session.scalars(stmt.order_by(*order).limit(limit)))


async def items_page(
    session: AsyncSession, dataset_id: str, after: int, limit: int
) -> list[DatasetItem]:
    """Items in upload order with an index greater than ``after``."""
    stmt = select(DatasetItem).where(
        DatasetItem.dataset_id == dataset_id, DatasetItem.item_index > after
    )
    return list(await session.scalars(stmt.order_by(DatasetItem.item_index).limit(limit)))
