"""A second run kind for tests: an "evaluation" whose steps draft, then score, one input each.

It stands for any run that is not items through a graph (an optimization, an evaluation, a Batch
API batch) and plugs into the durable-run core the way such a kind would: a small class,
registered by importing this module. Its state lives in the existing tables: its steps are the
job's items (input ``{"n": 3}``), its two phases are node rows (``draft``, then ``score``), and
each scored step records a ``step_scored`` event. A resumed step whose draft was stored skips
the draft. Every phase it really runs is appended to ``INF_TEST_STEP_LOG`` as
``<INF_TEST_MARKER> <index> <phase>``, so a test sees which process did what.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job
from app.db.repositories import events as events_repo
from app.db.repositories import jobs as jobs_repo
from app.db.repositories.results import ItemRow
from app.engine import NodeRecord, NodeStatus
from app.services.runner.kinds import KindRun, RunDeps, Step, register
from app.services.runner.node_rows import node_record, node_row

KIND = "scoring-double"
STEP_LOG = "INF_TEST_STEP_LOG"
MARKER = "INF_TEST_MARKER"
DELAY = "INF_TEST_STEP_DELAY_S"


class ScoringKind:
    """The test double's run kind."""

    name = KIND

    async def open(self, job: Job, deps: RunDeps) -> KindRun:
        return ScoringRun(job.id, deps, float(os.environ.get(DELAY, "0")))


class ScoringRun:
    """One scoring run: each step drafts ``n + 1`` and scores it as ``2 * draft``."""

    def __init__(self, job_id: str, deps: RunDeps, delay_s: float) -> None:
        self.job_id = job_id
        self.deps = deps
        self.delay_s = delay_s
        self.started: dict[str, Any] = {"kind": KIND}

    async def step(self, step: Step) -> ItemRow:
        step.begin()
        draft = self._stored_draft(step)
        if draft is None:
            draft = step.input["n"] + 1
            await self._phase(step.index, "draft", draft)
        score = 2 * draft
        await self._phase(step.index, "score", score)
        self.deps.writer.event(self.job_id, "step_scored", {"index": step.index, "score": score})
        return ItemRow(self.job_id, step.index, "succeeded", {"score": score}, None, 0, 0, 0.0)

    def _stored_draft(self, step: Step) -> int | None:
        for row in step.stored:
            if row.node_id == "draft" and row.status == NodeStatus.SUCCEEDED:
                output: int = node_record(row).output
                return output
        return None

    async def _phase(self, index: int, phase: str, value: int) -> None:
        await asyncio.sleep(self.delay_s)
        record = NodeRecord(phase, NodeStatus.SUCCEEDED, output=value, attempts=1)
        self.deps.writer.node(node_row(self.job_id, index, record, None, time.time()))
        _log(index, phase)


def _log(index: int, phase: str) -> None:
    path = os.environ.get(STEP_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{os.environ.get(MARKER, '-')} {index} {phase}\n")


async def submit_scoring(
    session: AsyncSession, tenant_id: str, version_id: str, values: list[int]
) -> Job:
    """A queued scoring job with one step per value."""
    job = await jobs_repo.create_job(session, tenant_id, version_id, kind=KIND)
    await jobs_repo.add_items(session, job.id, 0, [{"n": n} for n in values])
    await jobs_repo.set_item_count(session, job.id, len(values))
    await events_repo.append_events(session, [(job.id, "job_submitted", {"items": len(values)})])
    return job


register(ScoringKind())
