"""Errors of the provider layer, and the one mapping from HTTP answers to them.

Every error raised here derives from :class:`LLMError`. Call failures also derive from the
engine's :class:`~app.engine.errors.LLMCallError` subclasses, so the engine knows whether to
retry, wait or fail without knowing about this layer::

    LLMError
    ├── LLMConfigError (ConfigError)          endpoint settings this layer cannot use
    │   └── MissingAPIKeyError                 the API key's environment variable is unset
    ├── ProviderRateLimitedError (RateLimitedError)        429
    ├── ProviderTransientError (TransientLLMError)         408, 409, 5xx, 529, connection errors
    ├── ProviderPermanentError (PermanentLLMError)         other 4xx
    └── ProviderMalformedError (MalformedResponseError)    an answer that is not a completion
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from app.engine.errors import (
    ConfigError,
    LLMCallError,
    MalformedResponseError,
    PermanentLLMError,
    RateLimitedError,
    TransientLLMError,
)
from app.llm.headers import retry_after_s

EXCERPT_CHARS = 200


class LLMError(Exception):
    """Root of every error raised by ``app.llm``."""


class LLMConfigError(LLMError, ConfigError):
    """An endpoint's configuration cannot be used by its provider client."""


class MissingAPIKeyError(LLMConfigError):
    """The environment variable that should hold an endpoint's API key is unset or empty."""

    def __init__(self, alias: str, provider: str, env_var: str) -> None:
        super().__init__(
            f"endpoint {alias!r} (provider {provider}) needs an API key: "
            f"set the environment variable {env_var}"
        )
        self.alias = alias
        self.env_var = env_var


class ProviderRateLimitedError(LLMError, RateLimitedError):
    """The provider answered 429; ``retry_after`` is what its headers asked for."""


class ProviderTransientError(LLMError, TransientLLMError):
    """A failure worth retrying: overload, server error, dropped connection."""


class ProviderPermanentError(LLMError, PermanentLLMError):
    """A request the provider refused for good: bad request, auth, unknown model."""


class ProviderMalformedError(LLMError, MalformedResponseError):
    """The provider's answer could not be read as a completion."""


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a body, printable, for error messages.

    >>> excerpt(b'{"a": 1}')
    '{"a": 1}'
    >>> excerpt("x" * 300, limit=5)
    'xxxxx...'
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return text if len(text) <= limit else text[:limit] + "..."


def malformed(where: str, reason: str, body: bytes | str) -> ProviderMalformedError:
    """The error for an unreadable answer, quoting the start of the body."""
    return ProviderMalformedError(f"{where}: {reason}; body starts {excerpt(body)!r}")


def error_for_status(
    where: str, status: int, headers: Mapping[str, str], body: bytes
) -> LLMCallError:
    """Map a non-2xx answer to the error that tells the engine how to react.

    ``where`` names the endpoint in the message, e.g. ``"openai endpoint 'fast'"``.

    >>> error_for_status("ep", 400, {}, b'{"error": {"message": "bad model"}}')
    ProviderPermanentError('ep: HTTP 400: bad model')
    """
    message = f"{where}: HTTP {status}: {error_message(body)}"
    if status == 429:
        return ProviderRateLimitedError(
            message,
            retry_after=retry_after_s(headers),
            headers={name.lower(): value for name, value in headers.items()},
        )
    if status in (408, 409) or status >= 500:
        return ProviderTransientError(message, status_code=status)
    return ProviderPermanentError(message, status_code=status)


def error_message(body: bytes) -> str:
    """The provider's own words from an error body (OpenAI, Anthropic, vLLM, TGI, FastAPI shapes).

    >>> error_message(b'{"type": "error", "error": {"type": "x", "message": "overloaded"}}')
    'overloaded'
    >>> error_message(b"<html>Bad Gateway</html>")
    '<html>Bad Gateway</html>'
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    found = _message_in(data) if isinstance(data, dict) else None
    if found:
        return excerpt(found, 500)
    return excerpt(body) if body else "(empty body)"


def _message_in(data: dict[str, Any]) -> str | None:
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    for candidate in (error, data.get("message"), data.get("detail")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def transport_error(where: str, exc: aiohttp.ClientError) -> LLMCallError:
    """Map an aiohttp failure: configuration mistakes are permanent, the rest transient."""
    message = f"{where}: {type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.ClientConnectorCertificateError):
        return ProviderPermanentError(message)
    return ProviderTransientError(message)


def check_status(where: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Raise the mapped error unless ``status`` is 2xx."""
    if not 200 <= status < 300:
        raise error_for_status(where, status, headers, body)


def decode_json_object(where: str, body: bytes) -> dict[str, Any]:
    """Parse a body that must be a JSON object, or raise ``ProviderMalformedError``."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise malformed(where, f"invalid JSON ({exc})", body) from None
    if not isinstance(data, dict):
        raise malformed(where, f"expected a JSON object, got {type(data).__name__}", body)
    return data


def token_count(usage: object, key: str) -> int:
    """A token count from a ``usage`` object; 0 when the server did not report it.

    >>> token_count({"prompt_tokens": 12}, "prompt_tokens"), token_count(None, "prompt_tokens")
    (12, 0)
    """
    value = usage.get(key) if isinstance(usage, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)
