"""API keys over HTTP: wrong keys are throttled, revoked keys refused, listings hold no secret.

The client address is set with ``X-Forwarded-For``, which uvicorn takes from a loopback peer,
so one test can speak from several addresses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
import typer

from app.cli.server import revoke_api_key
from app.settings import Settings
from tests.integration.service.conftest import new_key
from tests.support.processes import REPO_ROOT
from tests.support.service import Service, serve

CLI_TIMEOUT_S = 120.0


def from_address(address: str, key: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, "Authorization": f"Bearer {key}"}


async def graphs(service: Service, address: str, key: str) -> httpx.Response:
    return await service.client.get("/v1/graphs", headers=from_address(address, key))


async def test_wrong_keys_are_throttled_per_address(settings: Settings) -> None:
    throttled = settings.model_copy(
        update={"auth_failures_per_minute": 3.0, "auth_cache_ttl_s": 30.0}
    )
    async with serve(throttled) as service:
        good = await new_key(service, "a")
        assert (await graphs(service, "10.0.0.1", good)).status_code == 200

        statuses = [
            (await graphs(service, "10.0.0.1", f"ie_wrong{i}")).status_code for i in range(4)
        ]
        refused = await graphs(service, "10.0.0.1", "ie_wrong-again")
        elsewhere = await graphs(service, "10.0.0.2", "ie_wrong")
        known_good = await graphs(service, "10.0.0.1", good)

    assert statuses == [401, 401, 401, 429]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:inf-engine:problem:too-many-requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert elsewhere.status_code == 401  # another address has its own budget
    assert known_good.status_code == 200  # a key that worked is not slowed


async def test_the_total_budget_throttles_every_address(settings: Settings) -> None:
    throttled = settings.model_copy(update={"auth_failures_total_per_minute": 4.0})
    async with serve(throttled) as service:
        statuses = [
            (await graphs(service, f"10.0.1.{i}", "ie_wrong")).status_code for i in range(5)
        ]

    assert statuses == [401, 401, 401, 401, 429]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` on the test's database."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("INF_")}
    env.update(INF_DATABASE_URL=settings.database_url, INF_AUTO_MIGRATE="false")
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Keys are not cached, so a revocation shows at the next request."""
    return settings.model_copy(update={"auth_cache_ttl_s": 0.0})


async def test_a_revoked_key_gets_401(service: Service, settings: Settings) -> None:
    key = await new_key(service, "b")
    assert (await graphs(service, "10.0.2.1", key)).status_code == 200

    said = await revoke_api_key(settings, key[:10])  # what ``keys revoke <prefix>`` runs
    after = await graphs(service, "10.0.2.1", key)

    assert said.startswith("revoked key")
    assert after.status_code == 401
    assert after.json()["type"] == "urn:inf-engine:problem:unauthorized"


async def test_keys_list_shows_every_key_but_no_secret(
    service: Service, settings: Settings
) -> None:
    kept, gone = await new_key(service, "b"), await new_key(service, "c")
    await revoke_api_key(settings, gone[:10])

    listed = cli(settings, "keys", "list", "--json")
    table = cli(settings, "keys", "list")

    assert listed.returncode == 0, listed.stderr
    rows = {row["prefix"]: row for row in json.loads(listed.stdout)}
    assert (rows[kept[:10]]["tenant"], rows[kept[:10]]["revoked_at"]) == ("b", None)
    assert (rows[gone[:10]]["tenant"], rows[gone[:10]]["revoked_at"] is not None) == ("c", True)
    assert {row["tenant"] for row in rows.values()} == {"a", "b", "c"}
    for output in (listed.stdout, table.stdout):
        assert kept not in output
        assert gone not in output
        assert kept[10:20] not in output  # not even a longer piece of the secret


async def test_revoking_an_unknown_key_fails(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as failed:
        await revoke_api_key(settings, "ie_nothing")

    assert failed.value.exit_code == 1
    assert "no key has the id or prefix 'ie_nothing'" in capsys.readouterr().err
