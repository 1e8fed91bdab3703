"""Which endpoint aliases the service offers: a YAML file, or offline simulated ones."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from app.engine import EndpointConfig, ResourceConfig
from app.settings import Settings

SIMULATED = {
    "endpoints": {
        "fast": {"provider": "simulated", "model": "sim-fast", "max_concurrent": 256},
        "smart": {"provider": "simulated", "model": "sim-smart", "max_concurrent": 64},
        # the optimization roles, answered by app.llm.simulation (offline, deterministic)
        "task": {"provider": "simulated", "model": "sim-task", "max_concurrent": 256},
        "critic": {"provider": "simulated", "model": "sim-critic", "max_concurrent": 64},
        "judge": {"provider": "simulated", "model": "sim-judge", "max_concurrent": 64},
        "optimizer": {"provider": "simulated", "model": "sim-optimizer", "max_concurrent": 16},
    }
}
HIDDEN = "***"
# Fields that name or hold credentials: never shown, whatever an alias configures.
SECRET_FIELDS = frozenset({"api_key", "api_key_env", "headers", "default_headers", "extra_headers"})


def load_endpoints(settings: Settings) -> ResourceConfig:
    """The aliases of ``INF_ENDPOINTS_FILE``, else the simulated ``fast`` and ``smart`` and
    the simulated optimization roles ``task``, ``critic``, ``judge`` and ``optimizer``."""
    if settings.endpoints_file is None:
        return ResourceConfig.from_dict(SIMULATED)
    return ResourceConfig.from_yaml(settings.endpoints_file)


def public_endpoint(config: EndpointConfig) -> dict[str, Any]:
    """What any tenant may see of an alias: no credentials, and ``base_url`` redacted."""
    described = config.model_dump(exclude=set(SECRET_FIELDS))
    if described.get("base_url") is not None:
        described["base_url"] = redacted_url(described["base_url"])
    return described


def redacted_url(url: str) -> str:
    """``url`` with its user info and every query value hidden; the fragment dropped.

    >>> redacted_url("https://user:s3cret@host:8443/v1?api-key=tok&x=1#frag")
    'https://***@host:8443/v1?api-key=***&x=***'
    >>> redacted_url("http://127.0.0.1:9000/v1")
    'http://127.0.0.1:9000/v1'
    >>> redacted_url("sqlite+aiosqlite:///./data/inf-engine.sqlite")
    'sqlite+aiosqlite:///./data/inf-engine.sqlite'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return HIDDEN  # unparsable: it could be anything, so show none of it
    if ":" in host:
        host = f"[{host}]"
    userinfo = f"{HIDDEN}@" if parts.username is not None or parts.password is not None else ""
    scheme = f"{parts.scheme}:" if parts.scheme else ""
    authority = f"//{userinfo}{host}{port}" if url[len(scheme) :].startswith("//") else ""
    query = "&".join(_hidden_value(item) for item in parts.query.split("&") if item)
    return f"{scheme}{authority}{parts.path}" + (f"?{query}" if query else "")


def _hidden_value(item: str) -> str:
    """``name=***``; a bare item (``?s3cret``) may itself be the secret, so it is hidden."""
    name, equals, _ = item.partition("=")
    return f"{name}={HIDDEN}" if equals else HIDDEN
