"""Trace context on outgoing provider requests (``traceparent``, ``tracestate``).

Every provider request goes through :meth:`app.llm.pool.SessionLease.post`, which asks the
injector set here (if any) to add the headers of the current trace context. The service sets
one when OpenTelemetry tracing is on (:mod:`app.services.observability.otel`); this package
imports no tracing library, and with no injector set a request pays one global read.

>>> from multidict import CIMultiDict
>>> headers = CIMultiDict()
>>> set_injector(lambda carrier: carrier.__setitem__("traceparent", "00-1-2-01"))
>>> inject(headers)["traceparent"]
'00-1-2-01'
>>> set_injector(None)
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

from multidict import CIMultiDict

Injector = Callable[[MutableMapping[str, str]], None]

_injector: Injector | None = None


def set_injector(injector: Injector | None) -> None:
    """Add trace headers to every provider request from now on (``None``: stop)."""
    global _injector
    _injector = injector


def inject(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    """``headers`` with the current trace context's headers added (a copy), or ``headers``
    itself when no injector is set."""
    injector = _injector
    if injector is None:
        return headers
    traced = headers.copy()
    injector(traced)
    return traced
