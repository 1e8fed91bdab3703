"""The one mapping from errors to HTTP: RFC 9457 problem details with a stable ``type``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.api.problems import problem_document, service_problem
from app.api.schemas.common import PROBLEM_JSON
from app.engine import InputError
from app.services.errors import OUTAGE_ERRORS, ServiceError, TooManyRequests, is_outage

log = logging.getLogger(__name__)

# The problem type of each status Starlette raises itself (routing, form parsing, limits).
HTTP_STATUS_TYPES = {
    400: "malformed-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
}
RETRY_AFTER_S = 5
ADVICE = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": str(RETRY_AFTER_S)}}


def problem(
    slug: str,
    detail: str,
    request: Request,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An ``application/problem+json`` response (401 and 503 with their advice headers)."""
    return _answer(problem_document(slug, detail, errors, request.url.path), headers)


def _answer(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    status = body["status"]
    headers = {**ADVICE.get(status, {}), **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    body = service_problem(exc, request.url.path)
    if body is None:
        return await unexpected(request, exc)
    response = _answer(body)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


async def input_error(request: Request, exc: Exception) -> JSONResponse:
    """An engine ``InputError`` a service let through: the caller's input is wrong."""
    return problem("invalid-input", str(exc), request, [{"field": "inputs", "message": str(exc)}])


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(error) for error in exc.errors()]
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        detail = "the body is not valid JSON"
        return problem("malformed-request", detail, request, errors)
    return problem("invalid-input", "the request does not match the schema", request, errors)


def _field_error(error: dict[str, Any]) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ())]
    return {
        "field": ".".join(location) or "(body)",
        "message": error.get("msg", ""),
        "type": error.get("type"),
    }


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = HTTP_STATUS_TYPES.get(exc.status_code)
    if slug is None:  # no route raises HTTPException: another status is a bug to look into
        return await unexpected(request, exc)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        # Starlette's Allow names only the first route of the path; list every route's methods.
        headers["Allow"] = _allowed(request)
    return problem(slug, str(exc.detail), request, headers=headers)


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
    return problem("unavailable", detail, request)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem("internal", "an unexpected error occurred", request)


def install(app: FastAPI) -> None:
    """Register every handler on the app. Engine errors other than ``InputError`` (a graph
    that no longer loads, a configuration that cannot serve it) are the server's: 500."""
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for outage_cls in OUTAGE_ERRORS:
        app.add_exception_handler(outage_cls, outage_error)
    app.add_exception_handler(Exception, unexpected)
