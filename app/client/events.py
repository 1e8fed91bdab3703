"""A job's Server-Sent Events, followed across dropped connections without loss or repeats.

The service gives every event an increasing integer id and resumes a stream after the id sent
as ``Last-Event-ID``, so reconnecting with the last id seen continues exactly where the
previous connection stopped; an event cut off mid-way was not seen and comes again whole.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from app.client.errors import ClientError, check
from app.lifecycle import TERMINAL_EVENTS as TERMINAL_EVENTS  # re-exported by app.client
from app.lifecycle import TERMINAL_JOB_STATUSES, EventKind

FINISHED = TERMINAL_JOB_STATUSES
# Longer than the gap between the service's heartbeat comments (15 s by default) on a stream.
STREAM_READ_TIMEOUT_S = 60.0
BACKOFF_S = 0.25
BACKOFF_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class Event:
    """One job event: ``id`` (increasing), ``kind`` (the SSE ``event:`` field), ``data``."""

    id: int
    kind: str
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        """Whether this is the job's last event (``job_completed``/``_failed``/``_cancelled``)."""
        return self.kind in TERMINAL_EVENTS

    @property
    def items(self) -> list[int]:
        """The indexes of the items this event reports finished (``items_succeeded`` groups
        a batch of successes; ``item_failed`` names one item); empty for other kinds.

        >>> Event(7, "items_succeeded", {"indexes": [3, 4]}).items
        [3, 4]
        """
        if self.kind == EventKind.ITEMS_SUCCEEDED:
            return [int(index) for index in self.data.get("indexes", ())]
        if self.kind == EventKind.ITEM_FAILED:
            return [int(self.data["index"])]
        return []


class EventFollower:
    """Iterates a job's events after ``after``, reconnecting when a connection drops; an
    evaluation's with ``resource="evaluations"``.

    A connection that delivered at least one event is retried at once; ``reconnects``
    attempts in a row that deliver nothing (with growing pauses) raise the last error.
    """

    def __init__(
        self, http: httpx.Client, job_id: str, after: int, reconnects: int, resource: str = "jobs"
    ) -> None:
        self.http = http
        self.resource = resource
        self.timeout = stream_timeout(http.timeout)
        self.job_id = job_id
        self.last = after
        self.reconnects = reconnects
        self.failures = 0

    def __iter__(self) -> Iterator[Event]:
        while True:
            start = self.last
            try:
                if (yield from self._connection()):
                    return
                error: Exception = httpx.RemoteProtocolError(
                    "the event stream ended before the job's terminal event"
                )
            except httpx.TransportError as exc:
                error = exc
            except ClientError as exc:
                if exc.status < 500:
                    raise
                error = exc
            self._pause(self.last > start, error)

    def _connection(self) -> Generator[Event, None, bool]:
        """Yields one connection's events; whether the stream is over (terminal event seen,
        or nothing after ``last`` and the job finished)."""
        start = self.last
        path = f"/v1/{self.resource}/{self.job_id}/events"
        headers = {"Last-Event-ID": str(self.last)}
        with connect_sse(self.http, "GET", path, headers=headers, timeout=self.timeout) as source:
            check(source.response)
            for sse in source.iter_sse():
                event = _event(sse)
                if event is None:
                    continue
                self.last = event.id
                yield event
                if event.terminal:
                    return True
        return self.last == start and self._job_finished()

    def _job_finished(self) -> bool:
        response = check(self.http.get(f"/v1/{self.resource}/{self.job_id}"))
        return response.json().get("status") in FINISHED

    def _pause(self, progressed: bool, error: Exception) -> None:
        self.failures = 0 if progressed else self.failures + 1
        if self.failures > self.reconnects:
            raise error
        if self.failures:
            time.sleep(min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (self.failures - 1)))


def stream_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    """``timeout`` with a read timeout long enough for a quiet stream."""
    read = max(timeout.read or 0.0, STREAM_READ_TIMEOUT_S)
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


def _event(sse: ServerSentEvent) -> Event | None:
    if not sse.id.isdigit():
        return None
    data = sse.json() if sse.data else {}
    return Event(int(sse.id), sse.event, data if isinstance(data, dict) else {"value": data})
