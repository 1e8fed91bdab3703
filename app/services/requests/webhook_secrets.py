"""The tenant's webhook signing secret, as the API reads and rotates it.

>>> await current(session, tenant_id)  # doctest: +SKIP
'whsec_...'
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import webhooks as repo
from app.services.errors import NotFound


async def current(session: AsyncSession, tenant_id: str) -> str:
    """The secret webhooks are signed with, made on first use (the caller commits)."""
    try:
        return await repo.secret_of(session, tenant_id)
    except repo.NoTenant as exc:
        raise NotFound(str(exc)) from None


async def rotate(session: AsyncSession, tenant_id: str) -> str:
    """A new secret; deliveries from the commit on are signed with it."""
    try:
        return await repo.rotate_secret(session, tenant_id)
    except repo.NoTenant as exc:
        raise NotFound(str(exc)) from None
