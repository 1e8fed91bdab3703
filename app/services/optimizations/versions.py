"""The graph version an accepted step creates: immutable, not activated, holding the version
it was trained from, the step's parameter diffs, and the run and step that made it.

Promote it (``POST /v1/graphs/{id}/promote``) to make jobs that name no version use it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import graphs as graphs_repo
from app.db.repositories.graphs import Provenance
from app.engine import Graph, graph_hash, to_data
from app.engine.optimization.history import StepRecord
from app.services.optimizations.progress import RunRecord


async def add_accepted(
    session: AsyncSession, graph_id: str, base: Graph, run_id: str, record: RunRecord,
    step: StepRecord,
) -> int:  # fmt: skip
    """Store the version of ``step``'s values (``base`` with them) and make it the run's
    incumbent in ``record``; its number."""
    trained = base.with_parameters(step.parameters)
    diff = {proposal.parameter: proposal.diff for proposal in step.proposals}
    provenance = Provenance(record.incumbent, run_id, step.step, diff)
    version = await graphs_repo.add_trained_version(
        session, graph_id, to_data(trained), graph_hash(trained), provenance
    )
    record.versions[step.step] = version.version
    record.incumbent = version.version
    return version.version
