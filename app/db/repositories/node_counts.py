"""A job's node results counted by node and status (``job_node_counts``): moved by the result
writer in the transaction that writes the results (``results.write_batch``), read by the job
page and its live graph instead of counting every result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping

from sqlalchemy import and_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.models import JobNodeCount, NodeResult

StatusKey = tuple[str, str, str]  # (job id, node id, status)
ResultKey = tuple[str, int, str]  # (job id, item index, node id): a node result's key
COUNT_FIELDS = ("job_id", "node_id", "status", "n")
COUNT_KEY = COUNT_FIELDS[:3]
COUNT_COLUMNS = tuple((name, JobNodeCount.__table__.c[name].type) for name in COUNT_FIELDS)
RESULT_COLUMNS = tuple(
    (name, NodeResult.__table__.c[name].type) for name in ("job_id", "item_index", "node_id")
)


async def add(session: AsyncSession, deltas: Mapping[StatusKey, int]) -> None:
    """Move the counts by ``deltas`` (a count not stored yet starts at 0), in key order."""
    moved = [
        {"job_id": job_id, "node_id": node_id, "status": status, "n": delta}
        for (job_id, node_id, status), delta in sorted(deltas.items())
        if delta
    ]
    if not moved:
        return
    rows = dialects.json_rows(session, "rows", COUNT_COLUMNS)
    source = select(*rows.c).where(true())
    table = JobNodeCount.__table__
    stmt = dialects.add_from(session, table, COUNT_FIELDS, source, COUNT_KEY, "n")
    await session.execute(stmt, {"rows": moved})


async def stored(session: AsyncSession, keys: Collection[ResultKey]) -> Counter[StatusKey]:
    """The statuses the node results of ``keys`` have now (keys not stored yet are absent)."""
    if not keys:
        return Counter()
    rows = dialects.json_rows(session, "keys", RESULT_COLUMNS)
    same = and_(
        NodeResult.job_id == rows.c.job_id,
        NodeResult.item_index == rows.c.item_index,
        NodeResult.node_id == rows.c.node_id,
    )
    stmt = select(NodeResult.job_id, NodeResult.node_id, NodeResult.status)
    params = [{"job_id": j, "item_index": i, "node_id": n} for j, i, n in keys]
    found = await session.execute(stmt.select_from(rows).join(NodeResult, same), {"keys": params})
    return Counter((job_id, node_id, status) for job_id, node_id, status in found)


async def of_job(session: AsyncSession, job_id: str) -> dict[str, dict[str, int]]:
    """For each node of the job: how many of its stored results each status has."""
    stmt = select(JobNodeCount.node_id, JobNodeCount.status, JobNodeCount.n).where(
        JobNodeCount.job_id == job_id, JobNodeCount.n != 0
    )
    found: dict[str, dict[str, int]] = {}
    for node, status, count in await session.execute(stmt):
        found.setdefault(node, {})[status] = count
    return found
