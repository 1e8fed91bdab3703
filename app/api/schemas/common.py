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


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response of problem details, with its description."""
    schema = Problem.model_json_schema()
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem_response("the request cannot be parsed (bad JSON, YAML, UTF-8, NUL in a path)"),
    401: problem_response("missing, unknown or revoked API key"),
    404: problem_response("no such resource for this tenant"),
    405: problem_response("method not allowed (the Allow header lists the methods)"),
    413: problem_response("the body, a file or a line is over its limit"),
    415: problem_response("the body's content type is not accepted"),
    422: problem_response("the request is well formed but invalid; errors name each field"),
    503: problem_response("a dependency (the database) is unavailable; retry after Retry-After"),
}
