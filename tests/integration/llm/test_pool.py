"""The session pool: one session per base URL per loop, shared, reference-counted, closed
cleanly (pytest turns "Unclosed client session" / "Unclosed connector" warnings into errors)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.engine.llm import LLMRequest
from app.engine.resources.config import EndpointConfig
from app.llm import OpenAIClient, SessionPool, default_pool, openai_compatible_client

REQUEST = LLMRequest(model="fake-model", system="", prompt="Hello pool.")


@pytest.fixture
async def pool() -> AsyncIterator[SessionPool]:
    pool = SessionPool()
    yield pool
    await pool.close_all()


def client(pool: SessionPool, base_url: str) -> OpenAIClient:
    return OpenAIClient("fake-model", base_url=base_url, pool=pool)


async def test_clients_with_one_base_url_share_one_session(
    pool: SessionPool, fake_llm: Any
) -> None:
    a, b = client(pool, fake_llm.base_url), client(pool, fake_llm.base_url + "/")
    assert pool.open_sessions() == 0  # nothing opens before the first call
    await asyncio.gather(a.complete(REQUEST), b.complete(REQUEST))
    assert pool.open_sessions(fake_llm.base_url) == 1
    assert pool.users(fake_llm.base_url) == 2
    assert a._lease.session() is b._lease.session()
    await a.aclose()
    await b.aclose()


async def test_other_base_urls_get_their_own_session(pool: SessionPool, fake_llm: Any) -> None:
    a, b = client(pool, fake_llm.base_url), client(pool, fake_llm.root_url + "/other")
    assert a._lease.session() is not b._lease.session()
    assert pool.open_sessions() == 2
    await a.aclose()
    await b.aclose()


async def test_last_release_closes_the_session(pool: SessionPool, fake_llm: Any) -> None:
    a, b = client(pool, fake_llm.base_url), client(pool, fake_llm.base_url)
    await a.complete(REQUEST)
    await b.complete(REQUEST)
    session = a._lease.session()
    await a.aclose()
    assert not session.closed
    assert pool.users(fake_llm.base_url) == 1
    await b.aclose()
    assert session.closed
    assert pool.open_sessions() == 0
    await b.aclose()  # idempotent
    gc.collect()  # an unclosed session or connector would warn (an error here) when collected


async def test_a_client_reopens_after_release(pool: SessionPool, fake_llm: Any) -> None:
    a = client(pool, fake_llm.base_url)
    await a.complete(REQUEST)
    first = a._lease.session()
    await a.aclose()
    assert (await a.complete(REQUEST)).text.startswith("reply[")
    assert a._lease.session() is not first
    await a.aclose()
    assert pool.open_sessions() == 0


async def test_close_all(pool: SessionPool, fake_llm: Any) -> None:
    a, b = client(pool, fake_llm.base_url), client(pool, fake_llm.root_url + "/x")
    await a.complete(REQUEST)
    sessions = [a._lease.session(), b._lease.session()]
    await pool.close_all()
    assert all(session.closed for session in sessions)
    assert pool.open_sessions() == 0
    assert (await a.complete(REQUEST)).text.startswith("reply[")  # reopens
    assert pool.users(fake_llm.base_url) == 1
    await a.aclose()
    await b.aclose()
    assert pool.open_sessions() == 0
    gc.collect()


async def test_keep_alive_reuses_connections(pool: SessionPool, fake_llm: Any) -> None:
    a = client(pool, fake_llm.base_url)
    for _ in range(5):
        await a.complete(REQUEST)
    connector = a._lease.session().connector
    assert connector is not None
    assert connector.limit == 0
    assert len(fake_llm.log()) == 5
    await a.aclose()


async def test_factories_share_the_default_pool(fake_llm: Any) -> None:
    endpoint = EndpointConfig(provider="openai-compatible", model="m", base_url=fake_llm.base_url)
    a, b = openai_compatible_client("a", endpoint), openai_compatible_client("b", endpoint)
    await asyncio.gather(a.complete(REQUEST), b.complete(REQUEST))
    assert default_pool().users(fake_llm.base_url) == 2
    await a.aclose()
    await b.aclose()
    assert default_pool().open_sessions(fake_llm.base_url) == 0


def test_sessions_are_per_event_loop(fake_llm: Any) -> None:
    pool = SessionPool()
    shared = client(pool, fake_llm.base_url)

    async def use() -> int:
        other = client(pool, fake_llm.base_url)
        await asyncio.gather(shared.complete(REQUEST), other.complete(REQUEST))
        users = pool.users(fake_llm.base_url)
        await other.aclose()
        await shared.aclose()
        return users

    assert asyncio.run(use()) == 2
    assert asyncio.run(use()) == 2  # a new loop gets a new session
    assert pool.open_sessions() == 0
