"""Evaluations' mean scores per version, for many evaluations in one statement.

An evaluation's item ``i * slots + v`` is example ``i`` under version slot ``v``; its result
counts the examples scored (succeeded or failed) under every slot. The same rule in SQL: a
window counts each example's scored items, and only whole examples are averaged.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import JobItem
from app.lifecycle import ItemStatus

SCORED = (ItemStatus.SUCCEEDED.value, ItemStatus.FAILED.value)


async def slot_means(
    session: AsyncSession, slots: Mapping[str, int]
) -> dict[str, dict[int, tuple[float, int]]]:
    """Per evaluation (``slots``: job id -> how many versions it scores), per version slot:
    the mean score and count over its whole examples; evaluations with none are absent."""
    if not slots:
        return {}
    width = case(dict(slots), value=JobItem.job_id, else_=literal(1))
    score = func.coalesce(JobItem.output["score"].as_float(), 0.0)
    seen = func.count().over(partition_by=(JobItem.job_id, JobItem.item_index // width))
    scored = (
        select(
            JobItem.job_id.label("job_id"),
            (JobItem.item_index % width).label("slot"),
            score.label("score"),
            seen.label("seen"),
            width.label("width"),
        )
        .where(JobItem.job_id.in_(sorted(slots)), JobItem.status.in_(SCORED))
        .subquery()
    )
    stmt = (
        select(scored.c.job_id, scored.c.slot, func.avg(scored.c.score), func.count())
        .where(scored.c.seen == scored.c.width)
        .group_by(scored.c.job_id, scored.c.slot)
    )
    found: dict[str, dict[int, tuple[float, int]]] = {}
    for job_id, slot, mean, n in await session.execute(stmt):
        found.setdefault(job_id, {})[int(slot)] = (float(mean), int(n))
    return found
