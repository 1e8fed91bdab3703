"""Human-input nodes in a batch run: the answers an item's run is given, and its waits.

An item's run is given the answers stored for it (``human_waits``) as finished nodes, so the
nodes that need them run and the nodes finished before do not (their stored results are
reused, as after a crash). A human node with no answer fails its run with ``AwaitingInput``;
the item then waits (``begin_wait``) and leaves the runner's window, holding no slot, unless
an answer came meanwhile (the mailbox), in which case it goes on at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.db.models import HumanWait
from app.db.repositories import waits as waits_repo
from app.db.repositories.results import ItemRow
from app.engine import NodeRecord, NodeStatus, RunResult
from app.engine.graph.model import Graph, HumanNode
from app.lifecycle import ItemStatus, WaitStatus
from app.services.runner.kinds import RunDeps

AWAITING = "AwaitingInput"


@dataclass(frozen=True, slots=True)
class Awaiting:
    """A human node of an item's run that had no answer, with its rendered prompt."""

    node: str
    prompt: str


def awaiting_input(result: RunResult) -> list[Awaiting]:
    """The human nodes of ``result`` waiting for an answer."""
    records = result.records.values()
    return [Awaiting(r.node, r.error or "") for r in records if r.error_type == AWAITING]


def finished_records(result: RunResult) -> dict[str, NodeRecord]:
    """The nodes that succeeded in ``result``, to be given to the item's next run."""
    return {k: r for k, r in result.records.items() if r.status is NodeStatus.SUCCEEDED}


def waiting_row(job_id: str, index: int) -> ItemRow:
    """What a step returns for an item that now waits (its rows are written already)."""
    return ItemRow(job_id, index, ItemStatus.WAITING.value, None, None, 0, 0, 0.0)


class HumanInput:
    """The human nodes of one batch job's graph, and the waits of its items."""

    def __init__(self, job_id: str, graph: Graph, deps: RunDeps) -> None:
        self.job_id = job_id
        self.deps = deps
        self.nodes = {n.id: n for n in graph.nodes if isinstance(n, HumanNode)}

    async def given(self, index: int) -> dict[str, NodeRecord] | ItemRow:
        """The item's answers as finished nodes; a failed item row when a node timed out
        and its ``on_timeout`` is ``fail``."""
        if not self.nodes:
            return {}
        async with self.deps.sessions() as session:
            settled = await waits_repo.settled_for(session, self.job_id, index)
        given: dict[str, NodeRecord] = {}
        for wait in settled:
            node = self.nodes.get(wait.node_id)
            if node is None:
                continue
            if wait.status == WaitStatus.TIMED_OUT and node.on_timeout == "fail":
                return self._timed_out(index, node)
            given[node.id] = _answered(node, wait)
        return given

    def _timed_out(self, index: int, node: HumanNode) -> ItemRow:
        error = f"{node.id}: HumanTimeout: no answer within {node.timeout_s:g}s"
        return ItemRow(self.job_id, index, ItemStatus.FAILED.value, None, error, 0, 0, 0.0)

    async def wait(self, index: int, awaiting: list[Awaiting]) -> bool:
        """Begin the item's waits; ``False`` when an answer was there already (run again)."""
        await self.deps.writer.flush()  # its finished nodes and its start land first
        now = datetime.now(UTC)
        async with self.deps.sessions() as session:
            begun = [await self._begin(session, index, a, now) for a in awaiting]
            if any(w.status != WaitStatus.WAITING for w in begun):
                await session.rollback()
                return False
            await session.commit()
        return True

    async def _begin(
        self, session: Any, index: int, awaiting: Awaiting, now: datetime
    ) -> HumanWait:
        node = self.nodes[awaiting.node]
        deadline = now + timedelta(seconds=node.timeout_s) if node.timeout_s else None
        return await waits_repo.begin_wait(
            session, self.job_id, index, node.id, awaiting.prompt, deadline
        )


def _answered(node: HumanNode, wait: HumanWait) -> NodeRecord:
    value = wait.answer if wait.status == WaitStatus.ANSWERED else node.default
    return NodeRecord(node.id, NodeStatus.SUCCEEDED, output=value)
