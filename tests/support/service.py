"""Run the real service on a loopback port inside the test's event loop, or as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from fastapi import FastAPI

from app.api.app import create_app
from app.services.runner.dispatcher import RunDispatcher
from app.services.runtime import Runtime
from app.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def endpoints_file(directory: Path, base_url: str, **overrides: Any) -> Path:
    """An endpoints YAML whose aliases ``fast`` and ``smart`` call the fake server."""
    alias = {
        "provider": "openai-compatible",
        "base_url": base_url,
        "max_concurrent": 64,
        **overrides,
    }
    config = {
        "endpoints": {"fast": {**alias, "model": "fast"}, "smart": {**alias, "model": "smart"}}
    }
    path = directory / "endpoints.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def loopback_webhooks(settings: Settings) -> Settings:
    """``settings`` with webhooks allowed to reach loopback receivers, as an operator opens them."""
    return Settings.model_validate(
        {**settings.model_dump(), "webhook_allow_networks": "127.0.0.0/8,::1/128"}
    )


@dataclass
class Service:
    """A started service: an HTTP client on it and the runtime inside it."""

    url: str
    client: httpx.AsyncClient
    runtime: Runtime

    async def run_jobs(self) -> None:
        """Run every claimable job to the end (the runner's test mode).

        While it runs, the runner is the runtime's, so cancellations through the API reach it.
        """
        runner = RunDispatcher(self.runtime)
        self.runtime.runner = runner
        try:
            await runner.run_until_idle()
        finally:
            self.runtime.runner = None


class _TestServer(uvicorn.Server):
    """Uvicorn without its signal handlers: the test runner keeps SIGINT/SIGTERM/SIGALRM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve(
    settings: Settings, api_key: str | None = None, wrap: Callable[[FastAPI], None] | None = None
) -> AsyncIterator[Service]:
    """Serve ``create_app(settings)`` with uvicorn on 127.0.0.1 and an ephemeral port
    (``wrap`` may add middleware to the app first)."""
    app = create_app(settings)
    if wrap is not None:
        wrap(app)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = _TestServer(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        try:
            yield Service(url, client, app.state.runtime)
        finally:
            server.should_exit = True
            await task


def server_process(env: Mapping[str, str], port: int) -> subprocess.Popen[bytes]:
    """``inf-engine serve`` in a subprocess with ``INF_*`` settings from ``env``."""
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
