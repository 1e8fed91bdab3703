"""Tenants and their API keys (stored as SHA-256 digests; a secret is shown once)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialects
from app.db.base import new_id, utcnow
from app.db.models import ApiKey, Tenant
from app.db.session import rowcount

SECRET_PREFIX = "ie_"
SHOWN_PREFIX_LEN = 10


def hash_secret(secret: str) -> str:
    """The stored form of an API key: the SHA-256 of the secret, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def get_or_create_tenant(session: AsyncSession, name: str) -> Tenant:
    """The tenant called ``name``, created if missing (safe when two callers race)."""
    stmt = select(Tenant).where(Tenant.name == name)
    found = await session.scalar(stmt)
    if found is not None:
        return found
    values = {"id": new_id(), "name": name, "created_at": utcnow()}
    await session.execute(dialects.insert_ignore(session, Tenant, values, ["name"]))
    return (await session.scalars(stmt)).one()


async def tenant_name(session: AsyncSession, tenant_id: str) -> str | None:
    """The name of the tenant ``tenant_id`` (``None`` if there is none)."""
    return await session.scalar(select(Tenant.name).where(Tenant.id == tenant_id))


async def create_api_key(session: AsyncSession, tenant_id: str, name: str) -> tuple[ApiKey, str]:
    """A new key for the tenant and its secret (``ie_...``), which is not stored anywhere."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        prefix=secret[:SHOWN_PREFIX_LEN],
        key_hash=hash_secret(secret),
    )
    session.add(key)
    await session.flush()
    return key, secret


async def tenant_for_key(session: AsyncSession, secret: str) -> Tenant | None:
    """The tenant a secret belongs to; ``None`` if the key is unknown or revoked."""
    stmt = (
        select(Tenant)
        .join(ApiKey, ApiKey.tenant_id == Tenant.id)
        .where(ApiKey.key_hash == hash_secret(secret), ApiKey.revoked_at.is_(None))
    )
    return await session.scalar(stmt)


async def revoke_api_key(session: AsyncSession, key_id: str) -> bool:
    """Revoke a key; ``False`` if it does not exist or was already revoked."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(await session.execute(stmt)) > 0


async def all_api_keys(
    session: AsyncSession, tenant_name: str | None = None
) -> list[tuple[ApiKey, str]]:
    """Every key with its tenant's name (only ``tenant_name``'s if given), oldest first."""
    stmt = select(ApiKey, Tenant.name).join(Tenant, ApiKey.tenant_id == Tenant.id)
    if tenant_name is not None:
        stmt = stmt.where(Tenant.name == tenant_name)
    rows = await session.execute(stmt.order_by(ApiKey.created_at, ApiKey.id))
    return [(key, name) for key, name in rows.tuples()]


async def find_api_keys(session: AsyncSession, id_or_prefix: str) -> list[ApiKey]:
    """The keys whose id or shown prefix is ``id_or_prefix`` (several if a prefix is shared)."""
    stmt = select(ApiKey).where(or_(ApiKey.id == id_or_prefix, ApiKey.prefix == id_or_prefix))
    return list(await session.scalars(stmt.order_by(ApiKey.created_at, ApiKey.id)))


async def list_api_keys(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    """A tenant's keys, revoked ones included, oldest first."""
    stmt = (
        select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(await session.scalars(stmt))


async def key_is_live(session: AsyncSession, tenant_id: str, key_hash: str) -> bool:
    """Whether the key with this digest exists, is not revoked and belongs to ``tenant_id``."""
    stmt = select(ApiKey.id).where(
        ApiKey.key_hash == key_hash, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None)
    )
    return await session.scalar(stmt) is not None
