"""A stored dataset's items as examples, read page by page: what an evaluation's items and an
optimization run's train, val and test data are made of.

An example's id is the item's own ``item_id`` when it has one, else its position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import datasets as datasets_repo
from app.engine.optimization.dataset import Example

PAGE = 1_000


async def dataset_items(session: AsyncSession, dataset_id: str) -> list[dict[str, Any]]:
    """Every item of the dataset in order: ``item_id``, ``input`` and ``expected``."""
    found: list[dict[str, Any]] = []
    after = -1
    while True:
        page = await datasets_repo.items_page(session, dataset_id, after, PAGE)
        found += [{"item_id": i.item_id, "input": i.input, "expected": i.expected} for i in page]
        if len(page) < PAGE:
            return found
        after = page[-1].item_index


def as_example(position: int, item: dict[str, Any]) -> Example:
    """One stored item as an :class:`Example` (id: its ``item_id``, else ``position``).

    >>> as_example(3, {"item_id": None, "input": {"q": 1}, "expected": "1"}).id
    3
    """
    item_id = item.get("item_id")
    return Example(item["input"], item.get("expected"), position if item_id is None else item_id)


def examples_at(items: Sequence[dict[str, Any]], positions: Sequence[int]) -> list[Example]:
    """The items at ``positions`` as examples, ids as :func:`as_example` gives them."""
    return [as_example(position, items[position]) for position in positions]
