"""A run's :class:`Ledger` from its settings (``ledger``, ``cache``, ``replay``, ``sample``).

>>> ledger_of(ExecutionSettings()) is None
True
>>> import tempfile
>>> ledger_of(ExecutionSettings(ledger=tempfile.mkdtemp(), cache="read")).cache
<CacheMode.READ: 'read'>
"""

from __future__ import annotations

from pathlib import Path

from app.engine.errors import ConfigError
from app.engine.execution.settings import ExecutionSettings
from app.engine.ledger.policy import CacheMode, Ledger, cache_mode, replay_mode
from app.engine.ledger.store import FileLedgerStore, LedgerStore


def ledger_of(settings: ExecutionSettings) -> Ledger | None:
    """The run's ledger; ``ConfigError`` for an unknown mode, or a mode with no store."""
    cache = cache_mode(settings.cache)
    default = cache_mode(settings.cache_default, "cache_default") or CacheMode.READ_WRITE
    strict = replay_mode(settings.replay)
    if settings.sample is not None and settings.sample < 0:
        raise ConfigError(f"sample must be 0 or more, not {settings.sample}")
    store = _store(settings.ledger)
    if store is None:
        if strict or cache not in (None, CacheMode.OFF):
            raise ConfigError("cache and replay need a ledger: pass ledger=<store or directory>")
        return None
    return Ledger(store, cache, strict, settings.sample or 0, default)


def _store(ledger: LedgerStore | str | Path | None) -> LedgerStore | None:
    if isinstance(ledger, str | Path):
        return FileLedgerStore(ledger)
    return ledger
