"""Dashboard logins: an API key becomes a session (its tenant and the key's digest); a session
lasts while its key does. Open mode (loopback only) needs no login: every browser is the
default tenant."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from app.dashboard.sessions import UiSession
from app.db.repositories import tenants

if TYPE_CHECKING:
    from app.services.runtime import Runtime


def is_open(runtime: Runtime) -> bool:
    """Whether the service runs without API keys."""
    return runtime.settings.auth_mode == "open"


async def open_session(runtime: Runtime, client: str) -> UiSession:
    """A session of the open mode's tenant."""
    tenant_id = await runtime.auth.tenant_id(None, client)
    return UiSession(tenant_id, "", _expiry(runtime))


async def login(runtime: Runtime, api_key: str, client: str) -> UiSession:
    """A session for ``api_key``; ``Unauthorized`` (or ``TooManyRequests``, the API's throttle
    of wrong keys) when it is not a live key."""
    tenant_id = await runtime.auth.tenant_id(f"Bearer {api_key.strip()}", client)
    digest = hashlib.sha256(api_key.strip().encode()).hexdigest()
    return UiSession(tenant_id, digest, _expiry(runtime))


async def still_valid(runtime: Runtime, session: UiSession) -> bool:
    """Whether the session's key is still live (always, in open mode, for its tenant)."""
    if is_open(runtime):
        return session.key_hash == "" and session.tenant_id == await runtime.auth.tenant_id(None)
    if not session.key_hash:
        return False
    async with runtime.reads() as db:
        return await tenants.key_is_live(db, session.tenant_id, session.key_hash)


def _expiry(runtime: Runtime) -> int:
    return int(time.time()) + runtime.settings.ui_session_s
