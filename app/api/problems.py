"""Every problem type the API answers with, and the body of an RFC 9457 answer, built in one
place for every layer that answers one: the exception handlers, the ASGI middleware and the
server's own protocol.

>>> problem_document("payload-too-large", "too big")["status"]
413
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    UnsupportedMedia,
)

PROBLEM_TYPE = "urn:inf-engine:problem:"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """A stable ``type`` (``urn:inf-engine:problem:<slug>``) with its status and title."""

    slug: str
    status: int
    title: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    kind.slug: kind
    for kind in (
        ProblemType("malformed-request", 400, "Malformed request"),
        ProblemType("unauthorized", 401, "Unauthorized"),
        ProblemType("not-found", 404, "Not found"),
        ProblemType("method-not-allowed", 405, "Method not allowed"),
        ProblemType("request-timeout", 408, "Request Timeout"),
        ProblemType("conflict", 409, "Conflict"),
        ProblemType("payload-too-large", 413, "Payload too large"),
        ProblemType("unsupported-media-type", 415, "Unsupported media type"),
        ProblemType("invalid-input", 422, "Invalid input"),
        ProblemType("too-many-requests", 429, "Too many requests"),
        ProblemType("headers-too-large", 431, "Request Header Fields Too Large"),
        ProblemType("internal", 500, "Internal error"),
        ProblemType("unavailable", 503, "Service unavailable"),
    )
}


def problem_document(
    slug: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """``type``, ``title``, ``status``, ``detail``, and ``instance`` and ``errors`` when given;
    ``slug`` is one of :data:`PROBLEM_TYPES` (another is a ``KeyError``)."""
    kind = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + slug,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


# The problem type of each service error; the first matching class wins.
SERVICE_ERRORS: list[tuple[type[ServiceError], str]] = [
    (Malformed, "malformed-request"),
    (NotFound, "not-found"),
    (InvalidInput, "invalid-input"),
    (Conflict, "conflict"),
    (PayloadTooLarge, "payload-too-large"),
    (UnsupportedMedia, "unsupported-media-type"),
    (Unauthorized, "unauthorized"),
    (TooManyRequests, "too-many-requests"),
    (Unavailable, "unavailable"),
]


def service_problem(exc: ServiceError, instance: str | None = None) -> dict[str, Any] | None:
    """The problem document of a service error (``None`` for a class without a type: a bug).

    >>> service_problem(NotFound("job 'x' not found"))["status"]
    404
    """
    for cls, slug in SERVICE_ERRORS:
        if isinstance(exc, cls):
            issues = [issue.to_dict() for issue in exc.issues]
            return problem_document(slug, exc.detail, issues, instance)
    return None
