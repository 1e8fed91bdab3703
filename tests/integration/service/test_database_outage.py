"""While the database is unreachable the API answers 503 with ``Retry-After``, not 500, and it
recovers by itself once the database is back (Postgres behind a TCP proxy that is cut)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import make_url

from app.settings import Settings
from tests.support.hostile import ECHO_GRAPH
from tests.support.service import serve

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),
]


class Outage:
    """A TCP proxy in front of the Postgres server; ``cut()`` drops every connection and stops
    listening, ``restore()`` listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.transport.abort()


@pytest.fixture
async def outage(db_url: str) -> AsyncIterator[tuple[Outage, Settings]]:
    url = make_url(db_url)
    proxy = Outage(url.host or "127.0.0.1", url.port or 5432)
    await proxy.restore()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = Settings(
        database_url=proxied, auto_migrate=False, runner_enabled=False, auth_mode="open"
    )
    yield proxy, settings
    with contextlib.suppress(AssertionError):
        await proxy.cut()


async def test_reads_and_writes_answer_503_with_retry_after_until_the_database_is_back(
    outage: tuple[Outage, Settings],
) -> None:
    proxy, settings = outage
    async with serve(settings) as service:
        client = service.client
        assert (await client.post("/v1/graphs", json=ECHO_GRAPH)).status_code == 201
        job = await client.post("/v1/jobs", json={"graph_id": "echo", "inputs": [{"text": "a"}]})
        job_id = job.json()["id"]

        await proxy.cut()
        for method, path in [
            ("GET", f"/v1/jobs/{job_id}"),
            ("GET", "/v1/jobs"),
            ("GET", "/v1/graphs/echo"),
            ("GET", f"/v1/jobs/{job_id}/results"),
            ("POST", f"/v1/jobs/{job_id}/cancel"),
        ]:
            response = await client.request(method, path)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["type"] == "urn:inf-engine:problem:unavailable"

        await proxy.restore()
        assert (await client.get(f"/v1/jobs/{job_id}")).status_code == 200
