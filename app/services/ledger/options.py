"""A job's, run's or optimization's ledger options, as the engine's execution settings.

``cache`` and ``replay`` come from the request (stored on the job); where a request sets no
``cache``, each endpoint's ``cache`` applies, and where neither does, ``INF_LEDGER_CACHE``
(``off`` unless the operator says otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.services.ledger.store import DatabaseLedgerStore

CacheMode = Literal["off", "read", "read_write"]
Replay = Literal["strict"]


@dataclass(frozen=True, slots=True)
class LedgerOptions:
    """What a request asked of the ledger (``None``: not said)."""

    cache: CacheMode | None = None
    replay: Replay | None = None

    def settings(
        self, sessions: async_sessionmaker[AsyncSession], tenant_id: str, default: str
    ) -> dict[str, Any]:
        """``ExecutionSettings`` keywords running with this tenant's ledger."""
        return {
            "ledger": DatabaseLedgerStore(sessions, tenant_id),
            "cache": self.cache,
            "replay": self.replay,
            "cache_default": default,
        }


NO_OPTIONS = LedgerOptions()
