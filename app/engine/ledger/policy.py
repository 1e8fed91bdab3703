"""How a run uses its ledger: the cache mode per alias, strict replay, and the sample index.

Modes: ``off`` (the ledger is not used), ``read`` (recorded answers are served, new ones are
not kept) and ``read_write`` (served, and every new answer is kept). ``replay="strict"``
makes every call a lookup: a request the ledger does not hold fails its node
(:class:`LedgerMissError`) naming the field that differs from the nearest recorded request,
and no model is called. The mode of a call: the run's ``cache``, else its endpoint's
``cache``, else the run's default (``read_write`` in the library, ``off`` in the service).

Only answers are kept: a call that failed (an error status, a 429, a timeout, an answer the
node could not decode) raises before anything is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.engine.errors import ConfigError, LedgerMissError
from app.engine.ledger.diff import distance, first_difference, value_at
from app.engine.ledger.entries import LedgerEntry, entry_for, response_of
from app.engine.ledger.key import Sample, canonical_request, request_key
from app.engine.ledger.store import LedgerStore
from app.engine.llm import LLMRequest, LLMResponse

log = logging.getLogger("app.engine.ledger")
STRICT = "strict"
_SHOWN = 80


class CacheMode(StrEnum):
    OFF = "off"
    READ = "read"
    READ_WRITE = "read_write"


def cache_mode(value: str | None, what: str = "cache") -> CacheMode | None:
    """``value`` as a mode (``None`` stays unset); ``ConfigError`` naming ``what`` if unknown."""
    if value is None:
        return None
    try:
        return CacheMode(value)
    except ValueError:
        modes = ", ".join(m.value for m in CacheMode)
        raise ConfigError(f"{what} must be one of {modes}, not {value!r}") from None


def replay_mode(value: str | None) -> bool:
    """Whether ``replay`` asks for strict replay (the one replay mode)."""
    if value not in (None, STRICT):
        raise ConfigError(f"replay must be {STRICT!r} or unset, not {value!r}")
    return value == STRICT


@dataclass(frozen=True, slots=True)
class Ledger:
    """A run's ledger: its store, its mode (``None``: each endpoint's), replay and sample."""

    store: LedgerStore
    cache: CacheMode | None = None
    strict: bool = False
    sample: int = 0
    default: CacheMode = CacheMode.READ_WRITE
    writes: set[asyncio.Task[None]] = field(default_factory=set, compare=False, repr=False)

    def mode(self, endpoint_cache: str | None) -> CacheMode:
        """The mode of a call to an endpoint whose configuration says ``endpoint_cache``."""
        if self.strict:
            return CacheMode.READ
        return self.cache or cache_mode(endpoint_cache) or self.default

    async def flush(self) -> None:
        """Wait until every answer handed to :meth:`LedgerCall.keep` so far is recorded."""
        while self.writes:
            await asyncio.shield(asyncio.gather(*self.writes))

    def call(self, request: LLMRequest, node: str, twin: int, mode: CacheMode) -> LedgerCall:
        """The ledger's part in one call of ``node``."""
        canonical = canonical_request(request)
        sample = Sample(self.sample, twin)
        return LedgerCall(self, node, canonical, sample, request_key(canonical, sample), mode)


@dataclass(frozen=True, slots=True)
class LedgerCall:
    """One call's lookup and, in ``read_write``, the recording of its answer."""

    ledger: Ledger
    node: str
    request: dict[str, Any]
    sample: Sample
    key: str
    mode: CacheMode

    async def lookup(self) -> LLMResponse | None:
        """The recorded answer, or ``None`` (strict replay raises instead). A store that
        cannot answer counts as a miss: the model is called (under strict replay, the node
        fails)."""
        try:
            entry = await self.ledger.store.get(self.key)
        except Exception as exc:  # the store's own errors (a database, a disk) vary
            log.warning("ledger: lookup for node %s failed: %s", self.node, exc)
            if self.ledger.strict:
                message = f"node {self.node!r}: strict replay, and the ledger did not answer: {exc}"
                raise LedgerMissError(message, node=self.node) from None
            return None
        if entry is not None:
            return response_of(entry)
        if self.ledger.strict:
            raise await self._miss()
        return None

    def keep(self, response: LLMResponse) -> None:
        """Record a successful answer (``read_write`` only), in the background: the node
        goes on at once, and the run waits for its recordings as it ends (``flush``)."""
        if self.mode is not CacheMode.READ_WRITE:
            return
        entry = entry_for(self.key, self.node, self.request, self.sample, response)
        task = asyncio.get_running_loop().create_task(self._record(entry))
        writes = self.ledger.writes
        writes.add(task)
        task.add_done_callback(writes.discard)

    async def _record(self, entry: LedgerEntry) -> None:
        try:
            await self.ledger.store.put(entry)
        except Exception as exc:  # the answer is good; only its recording failed
            log.warning("ledger: could not record node %s: %s", self.node, exc)

    async def _miss(self) -> LedgerMissError:
        wanted = {**self.request, "sample": self.sample.index, "twin": self.sample.twin}
        recorded = await self.ledger.store.recorded(self.node)
        if not recorded:
            message = f"node {self.node!r}: strict replay, and the ledger holds no request of it"
            return LedgerMissError(message, node=self.node)
        nearest = min(recorded, key=lambda e: distance(e.compared, wanted))
        return _mismatch(self.node, nearest, wanted)


def _mismatch(node: str, nearest: LedgerEntry, wanted: dict[str, Any]) -> LedgerMissError:
    field = first_difference(nearest.compared, wanted) or "request"
    was, now = value_at(nearest.compared, field), value_at(wanted, field)
    message = (
        f"node {node!r}: strict replay, and the ledger does not hold this request; field "
        f"{field!r} differs from the nearest recorded request (recorded {_shown(was)}, "
        f"now {_shown(now)})"
    )
    return LedgerMissError(message, node=node, field=field)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
