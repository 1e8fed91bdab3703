"""The endpoint aliases as ``GET /v1/endpoints`` and the dashboard show them: configuration
without secrets, this process's live limiter state and the shared store's view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.services.endpoints import public_endpoint
from app.services.limiting.view import shared_states

if TYPE_CHECKING:
    from app.services.runtime import Runtime


async def endpoint_items(runtime: Runtime) -> list[dict[str, Any]]:
    """Each configured alias with its public configuration, ``state`` and ``shared``."""
    live = runtime.resources.snapshot()
    configured = runtime.endpoints.endpoints
    store = runtime.rate_store
    shared = {} if store is None else await shared_states(store, configured)
    return [
        {"alias": alias, **public_endpoint(config), "state": live.get(alias),
         "shared": shared.get(alias)}
        for alias, config in configured.items()
    ]  # fmt: skip
