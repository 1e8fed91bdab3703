"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_llm import FakeLLM

pytest_plugins = ["tests.support.db"]


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    """One fake LLM server subprocess for the whole session."""
    with FakeLLM() as server:
        yield server


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The session's fake LLM server with default behaviour and cleared stats and log."""
    fake_llm_server.configure()
    fake_llm_server.reset()
    return fake_llm_server
