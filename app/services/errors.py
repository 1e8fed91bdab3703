"""The service layer's exceptions; mapped to HTTP in one place (``app/api/errors.py``).

ServiceError
├── Malformed           the request cannot be parsed (bad JSON, YAML or UTF-8)
├── NotFound            the thing does not exist for this tenant
├── InvalidInput        the request is well formed but wrong; ``issues`` locate each problem
├── Conflict            the request is fine but the resource's state does not allow it
├── PayloadTooLarge     a body, file or line exceeds a configured limit
├── UnsupportedMedia    the body's content type is not one the operation reads
├── Unauthorized        no valid API key
├── TooManyRequests     throttled; ``retry_after_s`` says when to try again
└── Unavailable         a dependency (database, runner) is not ready
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exc as sa_exc


@dataclass(frozen=True, slots=True)
class Issue:
    """One located problem: ``field`` is a dotted path; ``node`` or ``line`` when relevant."""

    field: str
    message: str
    node: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"field": self.field, "message": self.message}
        if self.node is not None:
            data["node"] = self.node
        if self.line is not None:
            data["line"] = self.line
        return data


class ServiceError(Exception):
    """Root of the errors services raise on purpose."""

    def __init__(self, detail: str, issues: Sequence[Issue] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.issues = list(issues)


class Malformed(ServiceError):
    """The request (or a line of an upload) cannot be parsed at all."""


class NotFound(ServiceError):
    """The resource does not exist (or belongs to another tenant)."""


class InvalidInput(ServiceError):
    """The request is syntactically fine but its content is wrong."""


class Conflict(ServiceError):
    """The request cannot apply to the resource as it is now (nothing to roll back to)."""


class PayloadTooLarge(ServiceError):
    """A body, uploaded file or line is over its configured limit."""


class UnsupportedMedia(ServiceError):
    """The body's ``Content-Type`` is not one the operation accepts."""


class Unauthorized(ServiceError):
    """Missing, unknown or revoked API key."""


class TooManyRequests(ServiceError):
    """Throttled: too many requests (or failures) in a short time."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(ServiceError):
    """A dependency is not ready."""


# What a lost or unreachable database raises: requests failing with these answer 503.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is down or unreachable, not that a request is wrong."""
    if isinstance(exc, sa_exc.DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or _sqlstate(exc)[:2] in OUTAGE_SQLSTATE_CLASSES
        )
    return isinstance(exc, sa_exc.TimeoutError | OSError)


# Connection exception; operator intervention (shutting down, starting up, admin shutdown).
OUTAGE_SQLSTATE_CLASSES = ("08", "57")


def _sqlstate(exc: sa_exc.DBAPIError) -> str:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code if isinstance(code, str) else ""
