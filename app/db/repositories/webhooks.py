"""Webhook deliveries: tenants' signing secrets, due deliveries (claimed like jobs), attempts."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.base import utcnow
from app.db.models import Job, Tenant, WebhookAttempt
from app.db.session import NO_SYNC, rowcount
from app.lifecycle import WebhookState

SECRET_PREFIX = "whsec_"


class NoTenant(LookupError):
    """The tenant does not exist (any more): it has no secret to read or rotate."""


async def secret_of(session: AsyncSession, tenant_id: str) -> str:
    """The tenant's webhook signing secret, made on first use.

    Concurrent first uses share one secret: the secret is set only where none is yet (the
    UPDATE re-checks that under the row lock, or SQLite's one writer), and whatever is stored
    then is read back, so a loser of the race signs with the winner's secret.
    """
    found = await _stored_secret(session, tenant_id)
    if found is not None:
        return found
    fresh = SECRET_PREFIX + secrets.token_urlsafe(32)
    stmt = (
        update(Tenant)
        .where(Tenant.id == tenant_id, Tenant.webhook_secret.is_(None))
        .values(webhook_secret=fresh)
    )
    await session.execute(stmt.execution_options(**NO_SYNC))
    stored = await _stored_secret(session, tenant_id)
    assert stored is not None, "set just now, or by the one that won the race"
    return stored


async def _stored_secret(session: AsyncSession, tenant_id: str) -> str | None:
    stmt = select(Tenant.id, Tenant.webhook_secret).where(Tenant.id == tenant_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NoTenant(f"tenant {tenant_id!r} not found")
    secret: str | None = row.webhook_secret
    return secret


async def rotate_secret(session: AsyncSession, tenant_id: str) -> str:
    """Replace the tenant's webhook secret; returns the new one (``NoTenant`` if none)."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    stmt = update(Tenant).where(Tenant.id == tenant_id).values(webhook_secret=secret)
    if rowcount(await session.execute(stmt.execution_options(**NO_SYNC))) == 0:
        raise NoTenant(f"tenant {tenant_id!r} not found")
    return secret


async def schedule(session: AsyncSession, job_id: str, now: datetime | None = None) -> None:
    """The job has ended: its webhook (if it has one) is due now. Scheduling twice is harmless."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.webhook_url.is_not(None), Job.webhook_state.is_(None))
        .values(webhook_state=WebhookState.PENDING, webhook_next_at=now or utcnow())
    )
    await session.execute(stmt.execution_options(**NO_SYNC))


async def claim_due(session: AsyncSession, now: datetime, hold_s: float, limit: int) -> list[Job]:
    """Up to ``limit`` jobs whose webhook is due, held for ``hold_s`` (another process skips
    them meanwhile, and takes them over if this one dies mid-delivery)."""
    due = (
        select(Job.id)
        .where(Job.webhook_state == WebhookState.PENDING, Job.webhook_next_at <= now)
        .order_by(Job.webhook_next_at)
        .limit(limit)
    )
    ids = list(await session.scalars(dialects.lock_rows(session, due, skip_locked=True)))
    if not ids:
        return []
    stmt = (
        update(Job)
        .where(
            Job.id.in_(ids), Job.webhook_state == WebhookState.PENDING, Job.webhook_next_at <= now
        )
        .values(webhook_next_at=now + timedelta(seconds=hold_s))
        .returning(Job)
    )
    return list(await session.scalars(stmt.execution_options(**NO_SYNC, populate_existing=True)))


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one delivery attempt went, and what comes next (``state``, ``next_at``)."""

    job_id: str
    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_s: float
    state: str  # pending (retry at next_at), delivered or failed
    next_at: datetime | None


async def record_attempt(session: AsyncSession, attempt: Attempt) -> None:
    session.add(
        WebhookAttempt(
            job_id=attempt.job_id,
            attempt=attempt.number,
            attempted_at=attempt.at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_s=attempt.duration_s,
        )
    )
    stmt = (
        update(Job)
        .where(Job.id == attempt.job_id)
        .values(
            webhook_state=attempt.state,
            webhook_attempts=attempt.number,
            webhook_next_at=attempt.next_at,
        )
    )
    await session.execute(stmt.execution_options(**NO_SYNC))


async def attempts_of(session: AsyncSession, job_id: str) -> Sequence[WebhookAttempt]:
    stmt = (
        select(WebhookAttempt)
        .where(WebhookAttempt.job_id == job_id)
        .order_by(WebhookAttempt.attempt)
    )
    return list(await session.scalars(stmt))
