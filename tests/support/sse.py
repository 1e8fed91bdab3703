"""Server-Sent Events clients for tests: one stream, or many from a process of their own.

    python -m tests.support.sse URL TOKEN JOB_ID [JOB_ID ...]

opens a stream per JOB_ID (repeats allowed) on ``URL/v1/jobs/{id}/events``, prints ``ready``
once every stream has received its first event, and at the end one JSON line: per stream, the
``[id, kind]`` of each event it received. Hundreds of streams then cost the service under test
no client work in its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

STREAMS_PER_CLIENT = 10  # httpx scans a client's every connection whenever a response closes


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]


async def read_events(
    client: httpx.AsyncClient,
    job_id: str,
    headers: dict[str, str],
    stop_after: int | None = None,
    on_event: Callable[[], None] = lambda: None,
    resource: str = "jobs",
) -> list[Event]:
    """Events from one connection: all of them, or the first ``stop_after`` (then hang up);
    ``on_event`` is called after each. ``resource`` is the collection the run is under
    (``jobs``, ``evaluations``)."""
    events: list[Event] = []
    fields: dict[str, str] = {}
    path = f"/v1/{resource}/{job_id}/events"
    async with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue  # a heartbeat
            if line:
                name, _, content = line.partition(": ")
                fields[name] = content
                continue
            if fields:
                events.append(Event(int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
                on_event()
            if stop_after is not None and len(events) == stop_after:
                break
    return events


async def _follow_all(url: str, token: str, job_ids: list[str]) -> list[list[Event]]:
    left = len(job_ids)

    def first_event() -> Callable[[], None]:
        seen = False

        def once() -> None:
            nonlocal seen, left
            if not seen:
                seen, left = True, left - 1
                if left == 0:
                    print("ready", flush=True)

        return once

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    headers = {"Authorization": f"Bearer {token}"}
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120)
            )
            for _ in range(-(-len(job_ids) // STREAMS_PER_CLIENT))
        ]
        pairs = zip(job_ids, itertools.cycle(clients), strict=False)
        readers = [read_events(client, job, {}, on_event=first_event()) for job, client in pairs]
        return list(await asyncio.gather(*readers))


def main(argv: list[str]) -> None:
    url, token, *job_ids = argv
    streams = asyncio.run(_follow_all(url, token, job_ids))
    print(json.dumps([[[event.id, event.kind] for event in events] for events in streams]))


if __name__ == "__main__":
    main(sys.argv[1:])
