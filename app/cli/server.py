"""The server's own commands: ``serve``, ``migrate`` and ``keys create``."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from app.settings import Settings

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
) -> None:
    """Start the HTTP service (settings from INF_* environment variables)."""
    from app.api.app import serve as serve_app

    overrides: dict[str, Any] = {
        k: v for k, v in {"host": host, "port": port}.items() if v is not None
    }
    if open_access:
        overrides["auth_mode"] = "open"
    settings = Settings(**overrides)
    typer.echo(
        f"inf-engine on http://{settings.host}:{settings.port} (database {settings.database_url})"
    )
    serve_app(settings)


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
    from app.db import migrate as migrations
    from app.db.repositories import tenants
    from app.db.session import create_engine, session_factory

    if settings.auto_migrate:
        await asyncio.to_thread(migrations.upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            tenant = await tenants.get_or_create_tenant(session, tenant_name)
            _, secret = await tenants.create_api_key(session, tenant.id, name)
            await session.commit()
    finally:
        await engine.dispose()
    return secret
