"""The one mapping from errors to HTTP: RFC 9457 problem details with a stable ``type``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.engine import CheckpointError, ConfigError, GraphValidationError, InputError
from app.services.errors import (
    Conflict,
    InvalidInput,
    Malformed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

# (status, type slug, title) per error class; the first matching class wins.
SERVICE_ERRORS: list[tuple[type[Exception], int, str, str]] = [
    (Malformed, 400, "malformed-request", "Malformed request"),
    (NotFound, 404, "not-found", "Not found"),
    (Conflict, 409, "conflict", "Conflict"),
    (InvalidInput, 422, "invalid-input", "Invalid input"),
    (PayloadTooLarge, 413, "payload-too-large", "Payload too large"),
    (Unauthorized, 401, "unauthorized", "Unauthorized"),
    (TooManyRequests, 429, "too-many-requests", "Too many requests"),
    (Unavailable, 503, "unavailable", "Service unavailable"),
]
HTTP_TITLES = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request: Request,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """An ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": f"urn:inf-engine:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
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
    return problem(exc.status_code, slug, title, str(exc.detail), request)


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
    app.add_exception_handler(Exception, unexpected)
