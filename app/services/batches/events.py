"""A batch's webhook, in OpenAI's event shape: ``{id, object: "event", type, created_at,
data: {id}}`` with ``type`` one of ``batch.completed``, ``batch.failed``, ``batch.expired``,
``batch.cancelled``; signed and delivered as a job's (``app.services.runner.webhooks``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Job
from app.db.repositories import batches as repo
from app.services.batches.views import status_of


async def batch_event(session: AsyncSession, job: Job) -> dict[str, Any]:
    """The event of the ended batch ``job`` (its files were made as it ended)."""
    found = await repo.get_batch(session, job.tenant_id, job.id)
    assert found is not None  # a batch's row is made with its job and deleted with it
    batch, ended = found
    return {
        "id": f"evt_{job.id.removeprefix('batch_')}",
        "object": "event",
        "type": f"batch.{status_of(batch, ended).value}",
        "created_at": int(utcnow().timestamp()),
        "data": {"id": job.id},
    }
