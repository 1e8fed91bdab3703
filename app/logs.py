"""Logging for the service processes: one JSON object per line, with the job, item and node a
line is about as fields of their own. That is the default when stderr is not a terminal; on a
terminal the default is plain text lines (``INF_LOG_FORMAT=json`` or ``text`` picks either).

    configure("INFO", "json")
    with job_context("5f0c..."):
        log.warning("lease lost")   # {"ts": ..., "level": "WARNING", ..., "job_id": "5f0c..."}

Fields come from ``extra={...}`` on a call, or from the job and item the current task works on
(:func:`job_context`, :func:`set_item`): tasks started inside inherit them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

FIELDS = ("job_id", "item", "node", "alias", "error_type", "tenant_id")
_job: ContextVar[str | None] = ContextVar("job_id", default=None)
_item: ContextVar[int | None] = ContextVar("item", default=None)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <fields>, "exception"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    found = {"job_id": _job.get(), "item": _item.get()}
    found.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
    return {name: value for name, value in found.items() if value is not None}


def configure(level: str, fmt: str = "auto") -> None:
    """Send every logger (uvicorn's included) to stderr in ``fmt`` at ``level``; ``auto`` is
    text when stderr is a terminal and JSON otherwise."""
    handler = logging.StreamHandler(sys.stderr)
    if console_format(fmt, sys.stderr) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def console_format(fmt: str, stream: TextIO) -> str:
    """``json`` or ``text``: ``fmt`` itself, or for ``auto`` what suits ``stream``.

    >>> import io
    >>> console_format("auto", io.StringIO())
    'json'
    """
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Log lines of this task (and tasks it starts) carry ``job_id``."""
    token = _job.set(job_id)
    try:
        yield
    finally:
        _job.reset(token)


def set_item(index: int | None) -> None:
    """Log lines of this task (and tasks it starts) carry ``item``: call it in a task of its
    own, whose context ends with it."""
    _item.set(index)
