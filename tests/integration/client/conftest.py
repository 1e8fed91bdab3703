"""The real service on a loopback port (SQLite in ``tmp_path``, no API keys, the job runner
inline), its LLM endpoints on the fake server, and a ``Client`` of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.client import Client
from tests.integration.client.support import serve_in_thread, service_settings
from tests.support.fake_llm import FakeLLM


@pytest.fixture
def service_url(tmp_path: Path, fake_llm: FakeLLM) -> Iterator[str]:
    with serve_in_thread(service_settings(tmp_path, fake_llm)) as url:
        yield url


@pytest.fixture
def client(service_url: str) -> Iterator[Client]:
    with Client(service_url, timeout=30) as connected:
        yield connected
