"""The response ledger: every model call's request and answer, replayed by request key.

>>> from app.engine.ledger import FileLedgerStore  # run(module, x, ledger="calls/")
"""

from app.engine.ledger.entries import LedgerEntry
from app.engine.ledger.key import KEY_VERSION, Sample, canonical_request, request_key
from app.engine.ledger.policy import CacheMode, Ledger, LedgerCall, cache_mode, replay_mode
from app.engine.ledger.store import FileLedgerStore, LedgerStore, MemoryLedgerStore

__all__ = [
    "KEY_VERSION",
    "CacheMode",
    "FileLedgerStore",
    "Ledger",
    "LedgerCall",
    "LedgerEntry",
    "LedgerStore",
    "MemoryLedgerStore",
    "Sample",
    "cache_mode",
    "canonical_request",
    "replay_mode",
    "request_key",
]
