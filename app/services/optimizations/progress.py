"""An optimization run's durable progress: one node row (``trainer`` of item 0) overwritten
after every trainer step, in the same transaction as the step's events and the version an
accepted step created, so a run resumed after a crash continues from its last finished step
and nothing of a finished step happens twice.

>>> record = RunRecord(state=TrainerState(values={"p": "Count."}), incumbent=1)
>>> RunRecord.from_output(record.to_output()) == record
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import NodeResult
from app.db.repositories import events as events_repo
from app.db.repositories import results
from app.db.repositories.results import NodeRow
from app.engine import NodeStatus
from app.engine.optimization.state import TrainerState

STATE_NODE = "trainer"
RUN_ITEM = 0
Event = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class RunRecord:
    """The trainer's state, the version the incumbent values are (``incumbent``), the version
    each accepted step created (step -> number), and once tested the test result and usage."""

    state: TrainerState
    incumbent: int
    versions: dict[int, int] = field(default_factory=dict)
    tested: bool = False
    test: dict[str, Any] | None = None  # None after testing: the run has no test data
    test_usage: dict[str, dict[str, float]] = field(default_factory=dict)

    def spent(self) -> dict[str, dict[str, float]]:
        """Calls, tokens and cost per role, in training and in the test."""
        roles: dict[str, dict[str, float]] = {}
        for usage in (self.state.usage, self.test_usage):
            for role, counts in usage.items():
                total = roles.setdefault(role, {})
                for name, value in counts.items():
                    total[name] = total.get(name, 0) + value
        return roles

    def to_output(self) -> dict[str, Any]:
        return {
            "state": self.state.to_dict(),
            "incumbent": self.incumbent,
            "versions": {str(step): number for step, number in self.versions.items()},
            "tested": self.tested,
            "test": self.test,
            "test_usage": self.test_usage,
        }

    @classmethod
    def from_output(cls, data: dict[str, Any]) -> RunRecord:
        versions = {int(step): int(number) for step, number in data["versions"].items()}
        state = TrainerState.from_dict(data["state"])
        incumbent, tested = int(data["incumbent"]), bool(data["tested"])
        return cls(state, incumbent, versions, tested, data["test"], data["test_usage"])


def stored_record(stored: Sequence[NodeResult]) -> RunRecord | None:
    """The record an earlier runner saved, if any."""
    for row in stored:
        if row.node_id == STATE_NODE and isinstance(row.output, dict):
            return RunRecord.from_output(row.output)
    return None


async def save(
    sessions: async_sessionmaker[AsyncSession],
    job_id: str,
    record: RunRecord,
    events: Sequence[Event],
    session: AsyncSession | None = None,
) -> None:
    """Store ``record`` and ``events`` in one transaction (``session``'s, when given, with what
    it holds already) and commit it before returning."""
    if session is not None:
        await _write(session, job_id, record, events)
        await session.commit()
        return
    async with sessions() as own:
        await _write(own, job_id, record, events)
        await own.commit()


async def _write(
    session: AsyncSession, job_id: str, record: RunRecord, events: Sequence[Event]
) -> None:
    row = NodeRow(
        job_id, RUN_ITEM, STATE_NODE, NodeStatus.SUCCEEDED.value, record.to_output(),
        None, None, 0, None, None, 0, 0, 0.0, None, None, None,
    )  # fmt: skip
    await results.write_batch(session, [row], [])
    await events_repo.append_events(session, [(job_id, kind, data) for kind, data in events])
