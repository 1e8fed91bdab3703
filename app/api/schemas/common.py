"""Models and limits shared by every route: problem details and the integer ranges of ids."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

# Item indexes and versions are 32-bit columns; event ids are 64-bit.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
PROBLEM_JSON = "application/problem+json"

# The version a job or run names; ``None`` runs the graph's active version.
RequestedVersion = Annotated[
    int | None,
    Field(ge=1, le=INT32_MAX, strict=True,
          description="graph version (default: the graph's active version)"),
]  # fmt: skip


class Problem(BaseModel):
    """An RFC 9457 problem-details document (``application/problem+json``)."""

    type: str = Field(description="stable URN, e.g. urn:inf-engine:problem:invalid-input")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="each located problem: field (dotted path, '(body)' or a header), message, "
        "and node or line where relevant",
    )


def _problem(description: str) -> dict[str, Any]:
    schema = Problem.model_json_schema()
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("the request cannot be parsed (bad JSON, YAML, UTF-8, NUL in a path)"),
    401: _problem("missing, unknown or revoked API key"),
    404: _problem("no such resource for this tenant"),
    405: _problem("method not allowed (the Allow header lists the methods)"),
    413: _problem("the body, a file or a line is over its limit"),
    415: _problem("the body's content type is not accepted"),
    422: _problem("the request is well formed but invalid; errors name each field"),
    503: _problem("a dependency (the database) is unavailable; retry after Retry-After"),
}
