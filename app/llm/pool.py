"""Pooled HTTP sessions: one ``aiohttp.ClientSession`` per base URL per running event loop.

Every client with the same base URL shares one session (one connection pool, keep-alive,
DNS cache). A client holds a :class:`SessionLease`; the session is created on first use in
a loop, and closed when the last lease on it is released, or by :meth:`SessionPool.close_all`.

The connector has no connection limit (the engine enforces concurrency per alias) and no
total timeout (the engine bounds each call with ``asyncio.timeout``); only connecting is
bounded here.

Close clients on the loop that used them (``await client.aclose()``, or ``await close_all()``
at shutdown): a session whose loop has already stopped can only be dropped, not closed.

>>> import asyncio
>>> async def demo():
...     pool = SessionPool()
...     a, b = pool.lease("http://127.0.0.1:8000/v1"), pool.lease("http://127.0.0.1:8000/v1/")
...     same = a.session() is b.session()
...     await a.release()
...     await b.release()
...     return same, pool.open_sessions()
>>> asyncio.run(demo())
(True, 0)
"""

from __future__ import annotations

import asyncio
import threading
from typing import NamedTuple

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from app.llm.errors import transport_error
from app.llm.propagation import inject

USER_AGENT = "inf-engine"

_Key = tuple[asyncio.AbstractEventLoop, str]


class HTTPResult(NamedTuple):
    """A complete HTTP answer: status, headers and the whole body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class _Entry:
    __slots__ = ("session", "users")

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.users = 0


class SessionPool:
    """Reference-counted sessions keyed by (event loop, base URL). Thread-safe."""

    def __init__(self, *, connect_timeout_s: float = 10.0, dns_cache_ttl_s: int = 300) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_connect=connect_timeout_s
        )
        self._dns_ttl = dns_cache_ttl_s
        self._entries: dict[_Key, _Entry] = {}
        self._lock = threading.Lock()

    def lease(self, base_url: str) -> SessionLease:
        """A share of the session for ``base_url``; nothing is opened until first use."""
        return SessionLease(self, normalize_base_url(base_url))

    def open_sessions(self, base_url: str | None = None) -> int:
        """How many sessions are open (for ``base_url`` only, if given)."""
        key = None if base_url is None else normalize_base_url(base_url)
        with self._lock:
            return sum(1 for _, url in self._entries if key is None or url == key)

    def users(self, base_url: str) -> int:
        """How many leases share the running loop's session for ``base_url``."""
        entry = self._entries.get((asyncio.get_running_loop(), normalize_base_url(base_url)))
        return entry.users if entry is not None else 0

    async def close_all(self) -> None:
        """Close every session now (shutdown). Leases reopen a session if used again."""
        with self._lock:
            entries, self._entries = list(self._entries.items()), {}
        for (loop, _), entry in entries:
            await _close_session(loop, entry.session)

    def _acquire(self, loop: asyncio.AbstractEventLoop, base_url: str) -> aiohttp.ClientSession:
        with self._lock:
            entry = self._entries.get((loop, base_url))
            if entry is None or entry.session.closed:
                entry = self._entries[(loop, base_url)] = _Entry(self._new_session())
            entry.users += 1
            return entry.session

    def _release(
        self, loop: asyncio.AbstractEventLoop, base_url: str, session: aiohttp.ClientSession
    ) -> bool:
        """Drop one user of ``session``; True if it was the last and the session must close."""
        with self._lock:
            entry = self._entries.get((loop, base_url))
            if entry is None or entry.session is not session:
                return False  # already closed by close_all()
            entry.users -= 1
            if entry.users > 0:
                return False
            del self._entries[(loop, base_url)]
            return True

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=0, use_dns_cache=True, ttl_dns_cache=self._dns_ttl)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            # API calls need no cookies, and a shared jar would mix clients' state.
            cookie_jar=aiohttp.DummyCookieJar(),
        )


class SessionLease:
    """One client's share of the pooled session of each loop it runs on.

    ``post`` is the whole HTTP round trip; ``release`` gives every session back.
    """

    __slots__ = ("_pool", "_sessions", "base_url")

    def __init__(self, pool: SessionPool, base_url: str) -> None:
        self._pool = pool
        self.base_url = base_url
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def session(self) -> aiohttp.ClientSession:
        """The running loop's session for this base URL (opened on first use)."""
        session = self._sessions.get(asyncio.get_running_loop())
        if session is not None and not session.closed:
            return session
        return self._bind()

    async def post(
        self, url: URL, data: bytes, headers: CIMultiDict[str], where: str
    ) -> HTTPResult:
        """POST ``data`` and read the whole answer; transport failures become ``LLMCallError``."""
        headers = inject(headers)  # the trace context, when tracing is on
        try:
            async with self.session().post(url, data=data, headers=headers) as response:
                return HTTPResult(response.status, response.headers, await response.read())
        except aiohttp.ClientError as exc:
            raise transport_error(where, exc) from exc

    async def release(self) -> None:
        """Give every session back; each closes if this was its last user. Idempotent."""
        sessions, self._sessions = self._sessions, {}
        for loop, session in sessions.items():
            if self._pool._release(loop, self.base_url, session):
                await _close_session(loop, session)

    def _bind(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        # drop the session close_all() closed under us, and those of loops that are gone
        for old_loop, old in list(self._sessions.items()):
            if old_loop is loop or old_loop.is_closed():
                del self._sessions[old_loop]
                if self._pool._release(old_loop, self.base_url, old):
                    _close_soon(old_loop, old)
        session = self._sessions[loop] = self._pool._acquire(loop, self.base_url)
        return session


def normalize_base_url(base_url: str) -> str:
    """The pool key of a base URL: trailing slashes do not make a different server.

    >>> normalize_base_url("https://api.openai.com/v1/")
    'https://api.openai.com/v1'
    """
    return base_url.rstrip("/")


async def _close_session(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    if loop is asyncio.get_running_loop():
        await session.close()
    elif loop.is_running():
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(session.close(), loop))
    else:
        session.detach()  # its loop has stopped: nothing can run there any more


def _close_soon(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    if loop.is_running():
        asyncio.run_coroutine_threadsafe(session.close(), loop)
    else:
        session.detach()


_default_pool = SessionPool()


def default_pool() -> SessionPool:
    """The process-wide pool the provider factories use."""
    return _default_pool


async def close_all() -> None:
    """Close every session of the default pool (call at shutdown)."""
    await _default_pool.close_all()
