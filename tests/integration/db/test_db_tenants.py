"""Tenants and API keys: hashed secrets, revocation, idempotent tenant creation."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import ApiKey
from app.db.repositories import tenants
from app.db.session import session_factory


async def test_get_or_create_tenant_returns_the_same_tenant(session: AsyncSession) -> None:
    first = await tenants.get_or_create_tenant(session, "acme")
    again = await tenants.get_or_create_tenant(session, "acme")
    other = await tenants.get_or_create_tenant(session, "globex")
    assert first.id == again.id != other.id


async def test_concurrent_get_or_create_agree(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)

    async def create() -> str:
        async with sessions() as session:
            tenant = await tenants.get_or_create_tenant(session, "acme")
            await session.commit()
            return tenant.id

    first, second = await asyncio.gather(create(), create())
    assert first == second


async def test_api_key_secret_is_shown_once_and_stored_hashed(session: AsyncSession) -> None:
    tenant = await tenants.get_or_create_tenant(session, "acme")
    key, secret = await tenants.create_api_key(session, tenant.id, "ci")
    await session.commit()

    assert secret.startswith("ie_")
    assert len(secret) > 40
    stored = (await session.scalars(select(ApiKey))).one()
    assert stored.prefix == secret[:10]
    assert stored.key_hash == tenants.hash_secret(secret) != secret
    columns = [getattr(stored, c.key) for c in ApiKey.__table__.columns]
    assert not any(isinstance(value, str) and secret in value for value in columns)
    found = await tenants.tenant_for_key(session, secret)
    assert found is not None
    assert found.id == tenant.id
    assert key.name == "ci"


async def test_unknown_and_revoked_keys_resolve_to_nothing(session: AsyncSession) -> None:
    tenant = await tenants.get_or_create_tenant(session, "acme")
    key, secret = await tenants.create_api_key(session, tenant.id, "old")
    _, kept = await tenants.create_api_key(session, tenant.id, "new")

    assert await tenants.tenant_for_key(session, secret + "x") is None
    assert await tenants.revoke_api_key(session, key.id)
    assert not await tenants.revoke_api_key(session, key.id)
    assert await tenants.tenant_for_key(session, secret) is None
    assert await tenants.tenant_for_key(session, kept) is not None
    listed = await tenants.list_api_keys(session, tenant.id)
    assert [k.name for k in listed] == ["old", "new"]
    assert listed[0].revoked_at is not None
    assert listed[1].revoked_at is None


async def test_keys_are_listed_per_tenant(session: AsyncSession) -> None:
    acme = await tenants.get_or_create_tenant(session, "acme")
    globex = await tenants.get_or_create_tenant(session, "globex")
    await tenants.create_api_key(session, acme.id, "a")
    assert await tenants.list_api_keys(session, globex.id) == []
