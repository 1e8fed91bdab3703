"""Schemathesis against the service's own OpenAPI document: no generated request gets a 5xx,
with API keys required and with ``auth_mode=open``.

The service holds one finished job of the ``echo`` graph; the operations under a job's items,
results, trace, events and retry are pointed at it (and those under a graph at ``echo``), so
that generated indexes, cursors and versions reach the database instead of stopping at a 404.
The other operations get generated ids, NUL and all.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from app.db.repositories import tenants
from app.settings import Settings
from tests.support.hostile import seed
from tests.support.service import Service, serve

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
ROOT = Path(__file__).resolve().parents[3]
HOOKS = {"SCHEMATHESIS_HOOKS": "tests.integration.service.schemathesis_hooks"}
# A bounded budget: examples per operation, and a ceiling on the run's wall time.
MAX_EXAMPLES = 10
MAX_SECONDS = 120
CONFIG = """
[[operations]]
include-path-regex = "^/v1/jobs/\\\\{{job_id\\\\}}/(items|results|trace|events|retry)"
parameters = {{ job_id = "{job}" }}

[[operations]]
include-path-regex = "^/v1/graphs/\\\\{{graph_ref\\\\}}"
parameters = {{ graph_ref = "echo" }}
"""


async def schemathesis(url: str, config: Path, *options: str) -> tuple[int, str]:
    """Run ``schemathesis run`` on ``url``'s schema; (exit code, what it printed)."""
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261202",
        "--generation-database",
        "none",
        "--no-color",
        *options,
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=config.parent,  # where it keeps its own state
        env={**os.environ, **HOOKS, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), MAX_SECONDS)
    return await process.wait(), output.decode(errors="replace")


async def api_key(service: Service) -> str:
    async with service.runtime.sessions() as session:
        tenant = await tenants.get_or_create_tenant(session, "fuzz")
        _, secret = await tenants.create_api_key(session, tenant.id, "schemathesis")
        await session.commit()
    return secret


@pytest.mark.slow
@pytest.mark.parametrize("auth_mode", ["keys", "open"])
async def test_no_generated_request_gets_a_server_error(
    settings: Settings, auth_mode: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"auth_mode": auth_mode})
    async with serve(settings) as service:
        options: list[str] = []
        if auth_mode == "keys":
            key = await api_key(service)
            service.client.headers["Authorization"] = f"Bearer {key}"
            options = ["--header", f"Authorization: Bearer {key}"]
        baseline = await seed(service)
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG.format(job=baseline.job_id))
        code, output = await schemathesis(service.url, config, *options)
    assert code == 0, output[-30_000:]
