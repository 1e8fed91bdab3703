"""A running service (real HTTP on loopback) on each test database, its LLMs on the fake server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db.repositories import tenants
from app.settings import Settings
from tests.support.fake_llm import FakeLLM
from tests.support.service import Service, endpoints_file, serve

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "graphs" / "extract-and-compare.json"


@pytest.fixture
def example_graph() -> dict[str, Any]:
    return dict(json.loads(EXAMPLE.read_text()))


@pytest.fixture
def settings(db_url: str, fake_llm: FakeLLM, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        auto_migrate=False,
        endpoints_file=endpoints_file(tmp_path, fake_llm.base_url),
        runner_enabled=False,
        flush_interval_s=0.01,
        max_request_bytes=2_000_000,
        max_jsonl_line_bytes=10_000,
        max_jsonl_lines=20_000,
        max_dataset_items=50,
        max_graph_nodes=50,
    )


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    """The service with tenant ``a``'s key on ``service.client``; runner in test mode."""
    async with serve(settings) as running:
        key = await new_key(running, "a")
        running.client.headers["Authorization"] = f"Bearer {key}"
        yield running


async def new_key(service: Service, tenant_name: str) -> str:
    async with service.runtime.sessions() as session:
        tenant = await tenants.get_or_create_tenant(session, tenant_name)
        _, secret = await tenants.create_api_key(session, tenant.id, "test")
        await session.commit()
    return secret


@pytest.fixture
async def other_tenant(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same service holding tenant ``b``'s key."""
    key = await new_key(service, "b")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=30) as client:
        yield client
