"""Who is calling: an API key (``Authorization: Bearer ie_...``) resolves to a tenant.

Keys are looked up by their SHA-256; resolved keys are cached briefly so that status polls
do not pay a database round trip each time. Revocation takes effect within ``CACHE_TTL_S``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import tenants
from app.services.errors import Unauthorized

CACHE_TTL_S = 30.0
DEFAULT_TENANT = "default"


class Authenticator:
    """Maps the ``Authorization`` header to a tenant id (open mode: always the default tenant)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], open_tenant_id: str | None
    ) -> None:
        self._sessions = sessions
        self._open_tenant_id = open_tenant_id
        self._cache: dict[str, tuple[str, float]] = {}

    async def tenant_id(self, authorization: str | None) -> str:
        if self._open_tenant_id is not None:
            return self._open_tenant_id
        secret = _bearer(authorization)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        async with self._sessions() as session:
            tenant = await tenants.tenant_for_key(session, secret)
        if tenant is None:
            raise Unauthorized("unknown or revoked API key")
        self._cache[digest] = (tenant.id, time.monotonic() + CACHE_TTL_S)
        return tenant.id


def check_token(expected: str, authorization: str | None) -> None:
    """Raise ``Unauthorized`` unless ``authorization`` is ``Bearer <expected>`` (compared in
    constant time, so the answer's timing does not reveal how much of a guess was right)."""
    given = _bearer(authorization)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("wrong token")


def _bearer(authorization: str | None) -> str:
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("send 'Authorization: Bearer <API key>'")
    return secret.strip()
