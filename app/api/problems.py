"""The body of an RFC 9457 problem-details answer, built in one place for every layer that
answers one: the exception handlers, the ASGI middleware and the server's own protocol.

>>> problem_document(413, "payload-too-large", "Payload too large", "too big")["type"]
'urn:inf-engine:problem:payload-too-large'
"""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE = "urn:inf-engine:problem:"


def problem_document(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """``type``, ``title``, ``status``, ``detail``, and ``instance`` and ``errors`` when given."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body
