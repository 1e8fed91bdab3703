"""The ids of the Batch API's objects, shaped as OpenAI's (``file-…``, ``batch_…``)."""

from __future__ import annotations

import secrets


def file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def batch_id() -> str:
    return f"batch_{secrets.token_hex(12)}"


def request_id(batch: str, index: int) -> str:
    """A line's request id, the same each time it is asked for.

    >>> request_id("batch_ab", 7)
    'batch_req_ab_7'
    """
    return f"batch_req_{batch.removeprefix('batch_')}_{index}"
