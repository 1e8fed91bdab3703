"""A shared rate store that keeps limiting, on a local share, while its store does not answer.

:class:`FallbackRateStore` wraps any :class:`~app.engine.resources.shared.SharedRateStore`.
Each operation goes to the store with a short timeout; when it fails to connect or times out,
the process enters *fallback*: it answers from an in-memory store holding ``share`` of every
alias's budget (concurrency cap, requests and tokens per minute), logs one warning, and shows
``inf_ratelimit_fallback 1``. While in fallback it asks the store again at most once every
``probe_s``; the first answer ends the fallback (one more warning) and calls are shared again::

    store = FallbackRateStore(RedisRateStore(client, limits), limits, share=0.5)
    admission = await store.acquire("fast", tokens=1200)

Calls that took a shared slot before the store went away keep it: the wrapper counts them in
the local share, so new calls wait until this process is under its share.

A store that answered within the last ``outage_s`` is *slow*, not unreachable: a call that
outlasts ``timeout_s`` keeps waiting for the store's answer (up to ``outage_s`` in all)
instead of deciding on the local share. One loaded process falling back alone, while the
others still share the store, would add its local share to a full shared budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from app.engine.clock import Clock, MonotonicClock
from app.engine.resources.learning import LearningPolicy
from app.engine.resources.shared import (
    Admission,
    AliasLimits,
    InMemoryRateStore,
    SharedRateStore,
)
from app.engine.resources.store_state import StoreSnapshot

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_SHARE = 0.5
DEFAULT_TIMEOUT_S = 1.0
DEFAULT_PROBE_S = 2.0
DEFAULT_OUTAGE_S = 10.0
# NOTE: 0.29 * 100 is 28.999999999999996 in floats; a share must not lose a whole slot to that.
_ROUNDING = 1e-9


def local_share(limits: Mapping[str, AliasLimits], share: float) -> dict[str, AliasLimits]:
    """Each alias's limits times ``share``; a capped alias keeps at least one slot.

    >>> local_share({"m": AliasLimits(rpm=600, max_concurrent=5)}, 0.5)["m"]
    AliasLimits(rpm=300.0, tpm=None, max_concurrent=2, burst_s=1.0)
    """
    return {alias: _scaled(found, share) for alias, found in limits.items()}


def _scaled(limits: AliasLimits, share: float) -> AliasLimits:
    cap = limits.max_concurrent
    return AliasLimits(
        rpm=None if limits.rpm is None else limits.rpm * share,
        tpm=None if limits.tpm is None else limits.tpm * share,
        max_concurrent=None if cap is None else max(1, math.floor(cap * share + _ROUNDING)),
        burst_s=limits.burst_s,
    )


@dataclass(slots=True)
class FallbackStatus:
    """What the metrics show: in fallback or not, since when, how often, decisions made locally."""

    share: float
    active: bool = False
    since: float | None = None
    entered: int = 0
    decisions: Counter[str] = field(default_factory=Counter)


class FallbackRateStore:
    """:class:`~app.engine.resources.shared.SharedRateStore` over ``store``, on a local share
    of the budget while ``store`` does not answer within ``timeout_s``.

    ``unreachable`` adds the store's own connection errors to ``OSError`` and ``TimeoutError``,
    and ``outage``, when given, tells which of those mean the store is out of reach; any other
    error is a bug and propagates. ``learning`` is how the local share learns rates; a rate
    learned in fallback holds in this process only.
    """

    def __init__(
        self,
        store: SharedRateStore,
        limits: Mapping[str, AliasLimits],
        *,
        share: float = DEFAULT_SHARE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        probe_s: float = DEFAULT_PROBE_S,
        outage_s: float = DEFAULT_OUTAGE_S,
        unreachable: tuple[type[BaseException], ...] = (),
        outage: Callable[[BaseException], bool] | None = None,
        clock: Clock | None = None,
        learning: LearningPolicy | None = None,
    ) -> None:
        self.store = store
        self._clock = clock or MonotonicClock()
        self.local = InMemoryRateStore(local_share(limits, share), self._clock, learning)
        self.status = FallbackStatus(share=share)
        self._timeout_s = timeout_s
        self._probe_s = probe_s
        self._outage_s = max(outage_s, timeout_s)
        self._answered_at: float | None = None  # the store's last answer, on self._clock
        self._errors: tuple[type[BaseException], ...] = (OSError, TimeoutError, *unreachable)
        self._outage = outage
        self._next_probe = 0.0
        self._probing = False
        self._held: dict[str, dict[str, float]] = {}  # alias -> owner -> ttl of shared leases
        self._local_held: dict[str, dict[str, float]] = {}  # the same, of leases in fallback

    async def aclose(self) -> None:
        """Close the wrapped store's connections, if it holds any of its own."""
        close = getattr(self.store, "aclose", None)
        if close is not None:
            await close()

    async def acquire(self, alias: str, requests: int = 1, tokens: int = 0) -> Admission:
        return await self._either(
            partial(self.store.acquire, alias, requests, tokens),
            partial(self._decided, alias, self.local.acquire, alias, requests, tokens),
        )

    async def refund(self, alias: str, tokens: int) -> None:
        await self._either(
            partial(self.store.refund, alias, tokens), partial(self.local.refund, alias, tokens)
        )

    async def acquire_slot(self, alias: str, owner: str, ttl_s: float) -> bool:
        taken, shared = await self._either(
            partial(self._shared_slot, alias, owner, ttl_s),
            partial(self._local_slot, alias, owner, ttl_s),
        )
        if taken:
            (self._held if shared else self._local_held).setdefault(alias, {})[owner] = ttl_s
        return taken

    async def renew_slots(self, alias: str, owners: Collection[str], ttl_s: float) -> set[str]:
        return await self._either(
            partial(self.store.renew_slots, alias, owners, ttl_s),
            partial(self.local.renew_slots, alias, owners, ttl_s),
        )

    async def release_slot(self, alias: str, owner: str) -> None:
        # NOTE: released on both sides: a lease taken in fallback must not outlive its call.
        await self.local.release_slot(alias, owner)
        self._held.get(alias, {}).pop(owner, None)
        self._local_held.get(alias, {}).pop(owner, None)
        await self._either(partial(self.store.release_slot, alias, owner), _nothing)

    async def block(self, alias: str, seconds: float) -> None:
        await self.local.block(alias, seconds)
        await self._either(partial(self.store.block, alias, seconds), _nothing)

    async def blocked_for(self, alias: str) -> float:
        return await self._either(
            partial(self.store.blocked_for, alias), partial(self.local.blocked_for, alias)
        )

    async def cut(self, alias: str, granted_at: float) -> None:
        # NOTE: the grant time is the store's clock, or the local one if granted in fallback;
        # each side decides with its own.
        await self._either(
            partial(self.store.cut, alias, granted_at), partial(self.local.cut, alias, granted_at)
        )

    async def learn_limits(self, alias: str, rpm: int | None, tpm: int | None) -> None:
        await self.local.learn_limits(alias, rpm, tpm)
        await self._either(partial(self.store.learn_limits, alias, rpm, tpm), _nothing)

    async def snapshot(self, alias: str) -> StoreSnapshot:
        return await self._either(
            partial(self.store.snapshot, alias), partial(self._local_view, alias)
        )

    async def _local_view(self, alias: str) -> StoreSnapshot:
        return dataclasses.replace(await self.local.snapshot(alias), fallback=True)

    async def _shared_slot(self, alias: str, owner: str, ttl_s: float) -> tuple[bool, bool]:
        return await self.store.acquire_slot(alias, owner, ttl_s), True

    async def _local_slot(self, alias: str, owner: str, ttl_s: float) -> tuple[bool, bool]:
        return await self._decided(alias, self.local.acquire_slot, alias, owner, ttl_s), False

    async def _decided(self, alias: str, decide: Callable[..., Awaitable[T]], *args: object) -> T:
        self.status.decisions[alias] += 1
        return await decide(*args)

    async def _either(
        self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        """``shared()`` when the store is (or may again be) reachable, else ``local()``."""
        probe = self.status.active
        if probe and not self._take_probe():
            return await local()
        try:
            answer = await self._patiently(shared)
        except self._errors as exc:
            if not self._is_outage(exc):
                raise
            await self._enter(exc)
            return await local()
        finally:
            if probe:
                self._probing = False
        self._answered_at = self._clock.now()
        if self._leave():
            await self._share_local_slots()
        return answer

    async def _patiently(self, shared: Callable[[], Awaitable[T]]) -> T:
        """``shared()`` within ``timeout_s``, or within ``outage_s`` if the store is only slow
        (it answered within ``outage_s``)."""
        limit = self._outage_s if self._recently_answered() else self._timeout_s
        async with asyncio.timeout(limit):
            return await shared()

    def _recently_answered(self) -> bool:
        """Whether the store answered within ``outage_s``: then a late answer means slow."""
        last = self._answered_at
        return last is not None and self._clock.now() - last < self._outage_s

    def _is_outage(self, error: BaseException) -> bool:
        if self._outage is None or isinstance(error, OSError | TimeoutError):
            return True
        return self._outage(error)

    def _take_probe(self) -> bool:
        """Whether this call may ask the store while in fallback (one at a time, bounded)."""
        now = self._clock.now()
        if self._probing or now < self._next_probe:
            return False
        self._probing, self._next_probe = True, now + self._probe_s
        return True

    async def _enter(self, error: BaseException) -> None:
        status = self.status
        self._next_probe = self._clock.now() + self._probe_s
        if status.active:
            return
        status.active, status.since, status.entered = True, self._clock.now(), status.entered + 1
        log.warning(
            "shared rate store unreachable (%s: %s): limiting locally to %g of each alias's "
            "budget until it answers",
            type(error).__name__,
            first_line(error),
            status.share,
        )
        await self._count_held_slots()
        await self._reconnect()

    async def _reconnect(self) -> None:
        """Let the store drop its connections (a ``reconnect`` method), so that once it answers
        again no stale connection fails and sends the process back into fallback."""
        reconnect = getattr(self.store, "reconnect", None)
        if reconnect is None:
            return
        with contextlib.suppress(*self._errors):
            async with asyncio.timeout(self._timeout_s):
                await reconnect()

    async def _count_held_slots(self) -> None:
        """Seed the local share with the slots this process's calls still hold in the store."""
        for alias, owners in self._held.items():
            for owner, ttl_s in owners.items():
                await self.local.acquire_slot(alias, owner, ttl_s)
        self._held.clear()

    async def _share_local_slots(self) -> None:
        """Take in the store the slots of calls admitted in fallback and still running, so
        the other processes count them (best effort: the store may be full already)."""
        held, self._local_held = self._local_held, {}
        for alias, owners in held.items():
            for owner, ttl_s in owners.items():
                with contextlib.suppress(*self._errors):
                    async with asyncio.timeout(self._timeout_s):
                        await self.store.acquire_slot(alias, owner, ttl_s)
                self._held.setdefault(alias, {})[owner] = ttl_s

    def _leave(self) -> bool:
        """End the fallback, if in it; whether it was."""
        status = self.status
        if not status.active:
            return False
        lasted = self._clock.now() - (status.since or 0.0)
        status.active, status.since = False, None
        log.warning(
            "shared rate store answers again after %.1fs: shared limits restored "
            "(%d decisions made locally so far)",
            lasted,
            sum(status.decisions.values()),
        )
        return True


def first_line(error: BaseException, limit: int = 200) -> str:
    """The error's first line, shortened: database errors carry their whole statement.

    >>> first_line(OSError("connection refused\\n[SQL: SELECT 1]"))
    'connection refused'
    """
    text = (str(error).splitlines() or [""])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def _nothing() -> None:
    return None
