"""End-to-end fixtures: real ``python -m app serve`` processes on a database, the fake LLM slow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import migrate
from tests.support.db import create_database, drop_database, require_server
from tests.support.fake_llm import FakeLLM
from tests.support.processes import Servers, servers

LATENCY_MS = 50


@pytest.fixture
def slow_llm(fake_llm: FakeLLM) -> FakeLLM:
    """The session's fake server answering after ``LATENCY_MS``, logging every request."""
    fake_llm.configure(latency_ms=LATENCY_MS, log=True)
    return fake_llm


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Servers]:
    """Starts service processes (logs under ``tmp_path``); every one is stopped afterwards."""
    with servers(tmp_path) as started:
        yield started


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, migrated Postgres database of its own, dropped afterwards."""
    url = create_database(require_server())
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(url)
