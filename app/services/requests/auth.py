"""Who is calling: an API key (``Authorization: Bearer ie_...``) resolves to a tenant.

Keys are looked up by their SHA-256; resolved keys are cached briefly so that status polls
do not pay a database round trip each time. Revocation takes effect within the cache's TTL
(``INF_AUTH_CACHE_TTL_S``).

Wrong keys are throttled: each client address, and all of them together, may fail only so
many times a minute (token buckets); past that, keys not already known good are refused with
``TooManyRequests`` before the database is asked, so guessing is slow and cheap to refuse.
Keys that recently succeeded (cached) are never slowed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories import tenants
from app.services.errors import TooManyRequests, Unauthorized
from app.settings import Settings

DEFAULT_TENANT = "default"
MAX_ADDRESSES = 10_000  # buckets kept; beyond it, full (idle) ones and then the oldest go


@dataclass(slots=True)
class Bucket:
    """A token bucket of ``capacity`` tokens refilled at ``rate`` per second."""

    capacity: float
    rate: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_s(self, now: float) -> float:
        """Seconds until one token is available (0 if one is now)."""
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self.refill(now)
        self.tokens = max(self.tokens - 1, 0.0)


class FailureThrottle:
    """Failed authentications allowed per client address and in total, per minute."""

    def __init__(
        self,
        per_address_per_minute: float,
        total_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_address = per_address_per_minute
        self._clock = clock
        self._total = self._bucket(total_per_minute)
        self._addresses: dict[str, Bucket] = {}

    @property
    def tracked_addresses(self) -> int:
        """Addresses with a bucket (bounded by ``MAX_ADDRESSES``)."""
        return len(self._addresses)

    def retry_after_s(self, address: str) -> float:
        """How long ``address`` must wait before its next unknown key is checked (0: now)."""
        now = self._clock()
        bucket = self._addresses.get(address)
        own = 0.0 if bucket is None else bucket.wait_s(now)
        return max(own, self._total.wait_s(now))

    def failed(self, address: str) -> None:
        """Count one failed authentication from ``address``."""
        now = self._clock()
        bucket = self._addresses.get(address)
        if bucket is None:
            self._forget_some(now)
            bucket = self._addresses[address] = self._bucket(self._per_address)
        bucket.take(now)
        self._total.take(now)

    def _bucket(self, per_minute: float) -> Bucket:
        return Bucket(per_minute, per_minute / 60.0, per_minute, self._clock())

    def _forget_some(self, now: float) -> None:
        if len(self._addresses) < MAX_ADDRESSES:
            return
        for address, bucket in list(self._addresses.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.capacity:
                del self._addresses[address]  # refilled: as if it had never failed
        while len(self._addresses) >= MAX_ADDRESSES:
            del self._addresses[next(iter(self._addresses))]


class Authenticator:
    """Maps the ``Authorization`` header to a tenant id (open mode: always the default tenant)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        open_tenant_id: str | None,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._open_tenant_id = open_tenant_id
        self._cache_ttl_s = settings.auth_cache_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self.throttle = FailureThrottle(
            settings.auth_failures_per_minute, settings.auth_failures_total_per_minute, clock
        )

    async def tenant_id(self, authorization: str | None, client: str = "") -> str:
        """The tenant of the request's key; ``client`` is its address (for the throttle)."""
        if self._open_tenant_id is not None:
            return self._open_tenant_id
        secret = _bearer(authorization)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        wait_s = self.throttle.retry_after_s(client)
        if wait_s > 0:
            raise TooManyRequests("too many failed API keys; try again later", math.ceil(wait_s))
        return await self._look_up(secret, digest, client)

    async def _look_up(self, secret: str, digest: str, client: str) -> str:
        async with self._sessions() as session:
            tenant = await tenants.tenant_for_key(session, secret)
        if tenant is None:
            self.throttle.failed(client)
            raise Unauthorized("unknown or revoked API key")
        if self._cache_ttl_s > 0:
            self._cache[digest] = (tenant.id, self._clock() + self._cache_ttl_s)
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
