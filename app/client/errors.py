"""``ClientError``: a non-2xx answer of the service, with its RFC 9457 problem details."""

from __future__ import annotations

import json
from typing import Any

import httpx

DETAIL_CHARS = 500


class ClientError(Exception):
    """The service answered with an error status; ``problem`` is the problem-details body.

    ``type``, ``title``, ``detail`` and ``errors`` (a list of ``{field, message}``, with ``line``
    for JSONL uploads and ``node`` for graphs) are its fields::

        try:
            client.job("no-such-job")
        except ClientError as exc:
            print(exc.status, exc.title, exc.detail)  # 404 Not found job 'no-such-job' not found
    """

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type") or "about:blank")
        self.title: str = str(problem.get("title") or f"HTTP {status}")
        self.detail: str = str(problem.get("detail") or "")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        super().__init__(f"{status} {self.title}" + (f": {self.detail}" if self.detail else ""))

    @classmethod
    def from_response(cls, response: httpx.Response) -> ClientError:
        """The error for a (read) error response, whether or not its body is problem JSON."""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            body = {"title": response.reason_phrase, "detail": response.text[:DETAIL_CHARS]}
        return cls(response.status_code, body)


def check(response: httpx.Response) -> httpx.Response:
    """``response`` if its status is 2xx; else raise :class:`ClientError` (reads the body)."""
    if response.is_success:
        return response
    response.read()
    raise ClientError.from_response(response)
