"""Engine integration fixtures: endpoints pointed at the fake server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.engine import ResourceConfig, ResourceManager
from tests.support.engine import MakeManager
from tests.support.fake_llm import FakeLLM


@pytest.fixture
async def endpoints(fake_llm: FakeLLM) -> AsyncIterator[MakeManager]:
    """``endpoints(alias=dict(...))`` -> a manager of openai-compatible aliases on the fake."""
    managers: list[ResourceManager] = []

    def make(**aliases: dict[str, Any]) -> ResourceManager:
        config = ResourceConfig.from_dict(
            {
                "endpoints": {
                    alias: {
                        "provider": "openai-compatible",
                        "model": alias,
                        "base_url": fake_llm.base_url,
                        **over,
                    }
                    for alias, over in aliases.items()
                }
            }
        )
        manager = ResourceManager(config)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        await manager.aclose()
