"""The one mapping from errors to HTTP: RFC 9457 problem details with a stable ``type``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.api.problems import problem_document
from app.api.schemas.common import PROBLEM_JSON
from app.engine import CheckpointError, ConfigError, GraphValidationError, InputError
from app.services.errors import (
    OUTAGE_ERRORS,
    Conflict,
    InvalidInput,
    Malformed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMedia,
    is_outage,
)

log = logging.getLogger(__name__)

# (status, type slug, title) per error class; the first matching class wins.
SERVICE_ERRORS: list[tuple[type[Exception], int, str, str]] = [
    (Malformed, 400, "malformed-request", "Malformed request"),
    (NotFound, 404, "not-found", "Not found"),
    (Conflict, 409, "conflict", "Conflict"),
    (InvalidInput, 422, "invalid-input", "Invalid input"),
    (PayloadTooLarge, 413, "payload-too-large", "Payload too large"),
    (UnsupportedMedia, 415, "unsupported-media-type", "Unsupported media type"),
    (Unauthorized, 401, "unauthorized", "Unauthorized"),
    (TooManyRequests, 429, "too-many-requests", "Too many requests"),
    (Unavailable, 503, "unavailable", "Service unavailable"),
]
HTTP_TITLES = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
RETRY_AFTER_S = 5
ADVICE = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": str(RETRY_AFTER_S)}}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request: Request,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An ``application/problem+json`` response (401 and 503 with their advice headers)."""
    body = problem_document(status, slug, title, detail, errors, request.url.path)
    headers = {**ADVICE.get(status, {}), **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    for cls, status, slug, title in SERVICE_ERRORS:
        if isinstance(exc, cls):
            issues = [i.to_dict() for i in exc.issues]
            response = problem(status, slug, title, exc.detail, request, issues)
            if isinstance(exc, TooManyRequests):
                response.headers["Retry-After"] = str(exc.retry_after_s)
            return response
    return await unexpected(request, exc)


async def engine_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, GraphValidationError):
        errors = [{"node": i.node, "field": i.field, "message": i.message} for i in exc.issues]
        return problem(
            422, "invalid-graph", "Invalid graph", "the graph is invalid", request, errors
        )
    if isinstance(exc, CheckpointError):
        return problem(409, "conflict", "Conflict", str(exc), request)
    return problem(422, "invalid-input", "Invalid input", str(exc), request)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(error) for error in exc.errors()]
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        detail = "the body is not valid JSON"
        return problem(400, "malformed-request", "Malformed request", detail, request, errors)
    return problem(
        422,
        "invalid-input",
        "Invalid input",
        "the request does not match the schema",
        request,
        errors,
    )


def _field_error(error: dict[str, Any]) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ())]
    return {
        "field": ".".join(location) or "(body)",
        "message": error.get("msg", ""),
        "type": error.get("type"),
    }


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = HTTP_TITLES.get(exc.status_code, "HTTP error")
    slug = title.lower().replace(" ", "-")
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        # Starlette's Allow names only the first route of the path; list every route's methods.
        headers["Allow"] = _allowed(request)
    return problem(exc.status_code, slug, title, str(exc.detail), request, headers=headers)


def _allowed(request: Request) -> str:
    methods: set[str] = set()
    for route in getattr(request.app.state, "method_routes", ()):
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def outage_error(request: Request, exc: Exception) -> JSONResponse:
    """A lost or unreachable database: 503 with ``Retry-After``, not an internal error."""
    if not is_outage(exc):
        return await unexpected(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    detail = "the database is unavailable; retry later"
    return problem(503, "unavailable", "Service unavailable", detail, request)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal", "Internal error", "an unexpected error occurred", request)


def install(app: FastAPI) -> None:
    """Register every handler on the app."""
    app.add_exception_handler(ServiceError, service_error)
    for engine_cls in (GraphValidationError, InputError, ConfigError, CheckpointError):
        app.add_exception_handler(engine_cls, engine_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for outage_cls in OUTAGE_ERRORS:
        app.add_exception_handler(outage_cls, outage_error)
    app.add_exception_handler(Exception, unexpected)
