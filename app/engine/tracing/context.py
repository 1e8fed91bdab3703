"""Which tracer (if any) is recording in the current context."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.engine.tracing.tracer import Tracer

REPR_MARK = "\x00repr:"
"""Starts what ``repr()`` of a traced value or parameter returns while tracing; the tracer
refuses text holding it, since the graph cannot quote a value (``f"{x!r}"``)."""

_active: ContextVar[Tracer | None] = ContextVar("inf_engine_tracer", default=None)


def current_tracer() -> Tracer | None:
    """The tracer recording ``forward()`` right now, or ``None`` outside tracing."""
    return _active.get()


def set_tracer(tracer: Tracer | None) -> Token[Tracer | None]:
    return _active.set(tracer)


def reset_tracer(token: Token[Tracer | None]) -> None:
    _active.reset(token)
