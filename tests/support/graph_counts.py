"""Per-node state counts as a job page draws them (its graph's ``data-*`` attributes), and as
the stored node results give them, to compare the two."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from app.db.models import NodeResult

NODE = re.compile(r'<g class="node [^"]*" data-node="([^"]+)"([^>]*)>')
COUNT = re.compile(r'data-(succeeded|failed|skipped|cancelled)="(\d+)"')
NodeCounts = dict[str, dict[str, int]]


def drawn_counts(page: str) -> NodeCounts:
    """Each node's non-zero counts by status, read from a job page's graph."""
    found: NodeCounts = {}
    for node_id, attributes in NODE.findall(page):
        counts = {status: int(n) for status, n in COUNT.findall(attributes) if int(n)}
        if counts:
            found[node_id] = counts
    return found


def stored_counts_query(job_id: str) -> Any:
    """The truth: a job's stored node results grouped by node and status."""
    return (
        select(NodeResult.node_id, NodeResult.status, func.count())
        .where(NodeResult.job_id == job_id)
        .group_by(NodeResult.node_id, NodeResult.status)
    )


def grouped(rows: Any) -> NodeCounts:
    """(node, status, n) rows as node -> status -> n."""
    found: NodeCounts = {}
    for node_id, status, n in rows:
        found.setdefault(node_id, {})[status] = int(n)
    return found
