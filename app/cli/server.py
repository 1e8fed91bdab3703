"""The server's own commands: ``serve``, ``worker``, ``migrate`` and ``keys create|list|revoke``.

The ``keys`` commands work on the database directly (``INF_DATABASE_URL``), not through a
running server; a secret is printed once, by ``keys create``, and never again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.common import JsonOption, fail
from app.cli.output import echo_json, echo_table
from app.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

keys = typer.Typer(help="API keys (each belongs to a tenant).", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    open_access: Annotated[
        bool,
        typer.Option(
            "--open", help="no API keys (loopback only): every request is tenant 'default'"
        ),
    ] = False,
    no_runner: Annotated[
        bool,
        typer.Option(
            "--no-runner",
            help="the API only: jobs run in `inf-engine worker` processes (INF_RUNNER_MODE=none)",
        ),
    ] = False,
) -> None:
    """Start the HTTP service (settings from INF_* environment variables)."""
    from app.api.app import serve as serve_app
    from app.services.runner.standalone import shared_database_refusal

    overrides: dict[str, Any] = {
        k: v for k, v in {"host": host, "port": port}.items() if v is not None
    }
    if open_access:
        overrides["auth_mode"] = "open"
    if no_runner:
        overrides["runner_mode"] = "none"
    settings = Settings(**overrides)
    if settings.runner_mode == "none" and (refusal := shared_database_refusal(settings)):
        fail(f"error: {refusal}")
    typer.echo(start_line(settings))
    serve_app(settings)


def worker(
    database_url: Annotated[
        str | None,
        typer.Option(help="the database shared with the API (default: INF_DATABASE_URL)"),
    ] = None,
) -> None:
    """Run jobs only, no HTTP: beside `serve --no-runner` processes on one Postgres database.

    Stops on SIGTERM or SIGINT, after writing queued results and giving its leases back.
    """
    from app import logs
    from app.loops import run_loop
    from app.services.endpoints import redacted_url
    from app.services.runner.standalone import run_worker, schema_refusal, shared_database_refusal

    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    settings = Settings(**overrides)
    refusal = shared_database_refusal(settings) or asyncio.run(schema_refusal(settings))
    if refusal:
        fail(f"error: {refusal}")
    logs.configure(settings.log_level, settings.log_format)
    database = redacted_url(settings.database_url)
    ready = f"inf-engine worker running jobs (database {database})"
    serving = None
    if settings.metrics_port is not None:
        from app.api.worker_metrics import serving as metrics_serving

        serving = metrics_serving(settings)
        ready += f"; metrics on http://{settings.host}:{settings.metrics_port}/metrics"
    run_loop(run_worker(settings, on_ready=lambda: typer.echo(ready), serving=serving))


def start_line(settings: Settings) -> str:
    """What ``serve`` prints first: the address and the database, without its password."""
    from app.services.endpoints import redacted_url

    database = redacted_url(settings.database_url)
    return f"inf-engine on http://{settings.host}:{settings.port} (database {database})"


def migrate(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Upgrade the database schema (INF_DATABASE_URL) to a revision."""
    from app.db import migrate as migrations

    settings = Settings()
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {migrations.current(settings.database_url)}")


@keys.command("create")
def create_key(
    tenant: Annotated[str, typer.Option(help="tenant name (created if new)")],
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
) -> None:
    """Create an API key and print it (it is shown only once)."""
    secret = asyncio.run(create_api_key(Settings(), tenant, name))
    typer.echo(secret)


async def create_api_key(settings: Settings, tenant_name: str, name: str) -> str:
    """A new key of tenant ``tenant_name`` (created if new) in the settings' database."""
    from app.db.repositories import tenants

    async with _session(settings) as session:
        tenant = await tenants.get_or_create_tenant(session, tenant_name)
        _, secret = await tenants.create_api_key(session, tenant.id, name)
        await session.commit()
    return secret


@keys.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's keys")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every key: id, prefix, tenant, name, created, revoked (never the secret)."""
    rows = asyncio.run(api_keys(Settings(), tenant))
    if as_json:
        echo_json(rows)
        return
    headers = ("ID", "PREFIX", "TENANT", "NAME", "CREATED", "REVOKED")
    echo_table(headers, [tuple(row.values()) for row in rows])


async def api_keys(settings: Settings, tenant_name: str | None = None) -> list[dict[str, Any]]:
    """What ``keys list`` shows, one dict per key, oldest first."""
    from app.db.repositories import tenants

    async with _session(settings) as session:
        found = await tenants.all_api_keys(session, tenant_name)
    return [_key_row(key, name) for key, name in found]


def _key_row(key: Any, tenant_name: str) -> dict[str, Any]:
    revoked = key.revoked_at.isoformat() if key.revoked_at is not None else None
    return {
        "id": key.id,
        "prefix": key.prefix,
        "tenant": tenant_name,
        "name": key.name,
        "created_at": key.created_at.isoformat(),
        "revoked_at": revoked,
    }


@keys.command("revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(help="the key's id or prefix (see keys list)")],
) -> None:
    """Revoke a key; running servers refuse it within INF_AUTH_CACHE_TTL_S (default 30 s)."""
    typer.echo(asyncio.run(revoke_api_key(Settings(), key)))


async def revoke_api_key(settings: Settings, id_or_prefix: str) -> str:
    """Revoke the one key with this id or prefix; what was done, as a sentence.

    Exits 1 (with a message) when no key or more than one key matches.
    """
    from app.db.repositories import tenants

    async with _session(settings) as session:
        found = await tenants.find_api_keys(session, id_or_prefix)
        if len(found) != 1:
            fail(_no_single_key(id_or_prefix, [key.id for key in found]))
        key = found[0]
        if not await tenants.revoke_api_key(session, key.id):
            return f"key {key.id} ({key.prefix}) was revoked already"
        await session.commit()
    ttl = f"{settings.auth_cache_ttl_s:g}"
    return f"revoked key {key.id} ({key.prefix}); running servers refuse it within {ttl} s"


def _no_single_key(id_or_prefix: str, ids: list[str]) -> str:
    if not ids:
        return f"error: no key has the id or prefix {id_or_prefix!r} (see inf-engine keys list)"
    return f"error: several keys have the prefix {id_or_prefix!r}; give an id: {', '.join(ids)}"


@contextlib.asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the settings' database (migrated first when ``auto_migrate``)."""
    from app.db import migrate as migrations
    from app.db.session import create_engine, session_factory

    if settings.auto_migrate:
        await asyncio.to_thread(migrations.upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()
