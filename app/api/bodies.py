"""Reading request bodies: the content type is checked and the size bounded before parsing."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.services.errors import InvalidInput, Issue, PayloadTooLarge, UnsupportedMedia
from app.services.requests.documents import parse_json
from app.settings import Settings

Model = TypeVar("Model", bound=BaseModel)
JSON = ("application/json",)


def media_type(request: Request) -> str:
    """The request's media type without parameters, lower case ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, accepted: tuple[str, ...], max_bytes: int) -> bytes:
    """The body, if its media type is one of ``accepted`` (``+json`` types count as JSON) and
    it is at most ``max_bytes`` long; read only after those checks pass."""
    kind = media_type(request)
    if kind not in accepted and not (kind.endswith("+json") and "application/json" in accepted):
        message = f"{kind or 'no content type'} is not accepted; send {' or '.join(accepted)}"
        raise UnsupportedMedia(message, [Issue("Content-Type", message)])
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(body)


async def read_json(request: Request, settings: Settings) -> Any:
    """The body as parsed JSON (``read_body`` bounds it; parsed off the event loop).

    >>> # body = await read_json(request, runtime.settings)
    """
    raw = await read_body(request, JSON, settings.max_json_bytes)
    return await asyncio.to_thread(parse_json, raw, max_depth=settings.max_document_depth)


async def read_model(request: Request, settings: Settings, model: type[Model], what: str) -> Model:
    """The body as ``model``, parsed and validated off the event loop; ``InvalidInput``
    naming each offending field of the ``what`` otherwise."""
    raw = await read_body(request, JSON, settings.max_json_bytes)
    return await asyncio.to_thread(_parsed, raw, settings.max_document_depth, model, what)


def _parsed(raw: bytes, max_depth: int, model: type[Model], what: str) -> Model:
    return validated(model, parse_json(raw, max_depth=max_depth), what)


def check_media_type(request: Request, accepted: tuple[str, ...]) -> None:
    """``UnsupportedMedia`` naming ``Content-Type`` unless the request's is one of ``accepted``."""
    kind = media_type(request)
    if kind not in accepted:
        message = f"{kind or 'no content type'} is not accepted; send {' or '.join(accepted)}"
        raise UnsupportedMedia(message, [Issue("Content-Type", message)])


class BodyStream:
    """The request body as a readable source, chunk by chunk, never held whole.

    ``read`` answers the next chunk the server received (whatever ``size`` asks), ``b""`` at the
    end; its total is bounded by the app's body limit."""

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream()

    async def read(self, size: int = -1) -> bytes:
        async for chunk in self._chunks:
            if chunk:
                return chunk
        return b""


def _too_large(max_bytes: int) -> PayloadTooLarge:
    detail = f"the body is larger than {max_bytes} bytes"
    return PayloadTooLarge(detail, [Issue("(body)", detail)])


def validated(model: type[Model], data: Any, what: str) -> Model:
    """``data`` as ``model``; ``InvalidInput`` naming each offending field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = [Issue(".".join(map(str, e["loc"])) or "(body)", e["msg"]) for e in exc.errors()]
        raise InvalidInput(f"the {what} is invalid", issues) from None


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place, for an ``openapi_extra``
    body (a ``#/$defs/...`` reference would resolve against the OpenAPI document's root).

    >>> class Inner(BaseModel):
    ...     n: int
    >>> class Outer(BaseModel):
    ...     inner: Inner
    >>> _ = Outer.model_rebuild(_types_namespace={"Inner": Inner})
    >>> inline_schema(Outer)["properties"]["inner"]["properties"]
    {'n': {'title': 'N', 'type': 'integer'}}
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    inlined: dict[str, Any] = _inlined(schema, defs)
    return inlined


def json_body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads a JSON body of ``model``'s shape itself
    (with :func:`read_json` or :func:`read_model`), so its field paths name its own fields."""
    content = {"application/json": {"schema": inline_schema(model)}}
    return {"requestBody": {"required": required, "content": content}}


def _inlined(value: Any, defs: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_inlined(item, defs) for item in value]
    if not isinstance(value, dict):
        return value
    ref = value.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        rest = {key: item for key, item in value.items() if key != "$ref"}
        return {**_inlined(defs[ref.removeprefix("#/$defs/")], defs), **rest}
    return {key: _inlined(item, defs) for key, item in value.items()}
