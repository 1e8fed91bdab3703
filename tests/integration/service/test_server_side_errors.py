"""Errors that are the server's, not the caller's, answer 5xx; a vanished tenant answers 404."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from app.api import errors
from app.db.models import Tenant
from app.engine import CheckpointError, ConfigError, GraphIssue, GraphValidationError
from tests.integration.service.conftest import new_key
from tests.support.service import Service

SERVER_SIDE: dict[str, Callable[[], Exception]] = {
    "config": lambda: ConfigError("unknown endpoint alias 'fast' (configured: none)"),
    "stored graph": lambda: GraphValidationError([GraphIssue("op", "unknown op", node="n")]),
    "checkpoint": lambda: CheckpointError("the checkpoint belongs to another graph"),
}


@pytest.mark.parametrize("name", sorted(SERVER_SIDE))
async def test_an_engine_error_a_service_lets_through_is_a_500(name: str) -> None:
    """A stored graph that no longer loads or a configuration that cannot serve it is not the
    caller's mistake: 500 (logged), not 422."""
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise SERVER_SIDE[name]()

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json()["type"] == "urn:inf-engine:problem:internal"


@pytest.mark.parametrize("path", ["/v1/webhooks/secret", "/v1/webhooks/secret/rotate"])
async def test_the_secret_of_a_tenant_deleted_meanwhile_is_a_404(
    service: Service, path: str
) -> None:
    key = await new_key(service, "short-lived")
    client = service.client
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/graphs", headers=headers)).status_code == 200  # key cached
    async with service.runtime.sessions() as session:
        await session.execute(delete(Tenant).where(Tenant.name == "short-lived"))  # keys too
        await session.commit()
    method = client.post if path.endswith("rotate") else client.get
    response = await method(path, headers=headers)
    assert response.status_code == 404
    assert response.json()["type"] == "urn:inf-engine:problem:not-found"
