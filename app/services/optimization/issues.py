"""Problems of an optimization or evaluation request as located :class:`Issue` s, each naming
its field as a path (``loss.verifiers[0].op``, ``budget.roles.judge.max_calls``), so the API
answers one 422 problem-details document listing them all.

>>> field_path(("loss", "verifiers", 0, "op"))
'loss.verifiers[0].op'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.services.errors import InvalidInput, Issue

Model = TypeVar("Model", bound=BaseModel)


class FieldError(ValueError):
    """Raised in a model validator to name the field a cross-field rule is about (pydantic
    would place it on the model itself)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a field path: list positions in brackets."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "(body)"


def issues_of(exc: ValidationError, prefix: Sequence[int | str] = ()) -> list[Issue]:
    """One issue per schema error, in the order pydantic found them."""
    return [_issue(error, prefix) for error in exc.errors()]


def _issue(error: Any, prefix: Sequence[int | str]) -> Issue:
    loc = [*prefix, *error["loc"]]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldError):
        loc.append(cause.field)
        return Issue(field_path(loc), str(cause))
    message = error["msg"].removeprefix("Value error, ")
    return Issue(field_path(loc), message)


def parse(model: type[Model], data: Any) -> Model:
    """``data`` (a parsed JSON body) as ``model``, or :class:`InvalidInput` naming every field
    that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(issues_of(exc)) from None


def invalid(issues: Sequence[Issue]) -> InvalidInput:
    """The error the API answers 422 to: its detail is the first issue, its issues all."""
    first = issues[0]
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return InvalidInput(f"{first.field}: {first.message}{more}", issues)
