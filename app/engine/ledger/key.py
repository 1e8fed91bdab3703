"""The ledger's key: a versioned hash of the full, provider-neutral request and its sample.

Every field of an :class:`~app.engine.llm.LLMRequest` that can change the answer is in the
key (model, the whole conversation, sampling, ``response_format``, tools, seed...): the
request is dumped whole, so a field added to it later is keyed too, with no list to keep.
Nothing of the transport is in it (API key, base URL, headers, provider dialect), because an
``LLMRequest`` holds none of them. ``sample`` tells deliberate samples of one request apart.

>>> a = LLMRequest("m", "Be brief.", "hi", temperature=0.0)
>>> b = LLMRequest("m", "", "hi", temperature=0.0, messages=({"role": "system",
...     "content": "Be brief."},))
>>> request_key(canonical_request(a)) == request_key(canonical_request(b))  # same conversation
True
>>> request_key(canonical_request(a)).startswith("v1:")
True
>>> request_key(canonical_request(a), Sample(1)) != request_key(canonical_request(a))
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from app.engine.llm import OPTIONAL_FIELDS, LLMRequest

KEY_VERSION = 1
"""Bumped whenever what goes into a key changes, so older entries are never served."""


@dataclass(frozen=True, slots=True)
class Sample:
    """Which sample of a request: the run's ``sample`` setting and the node's ``twin`` rank
    (its place among nodes of one graph that are the same call, in plan order)."""

    index: int = 0
    twin: int = 0


def canonical_request(request: LLMRequest) -> dict[str, Any]:
    """The request as plain JSON data: model, the conversation in order, every option set."""
    data: dict[str, Any] = {
        "model": request.model,
        "messages": request.conversation(),
        "response_format": request.response_format,
    }
    for name in OPTIONAL_FIELDS:
        value = getattr(request, name)
        if value not in (None, (), []):
            data[name] = value
    normal: dict[str, Any] = json.loads(_dumps(data))  # tuples become lists, keys sorted
    return normal


def keyed(canonical: dict[str, Any], sample: Sample = Sample()) -> dict[str, Any]:
    """What the key hashes: the request and its sample (and the key's version)."""
    return {"v": KEY_VERSION, "request": canonical, "sample": sample.index, "twin": sample.twin}


def request_key(canonical: dict[str, Any], sample: Sample = Sample()) -> str:
    """``v<version>:<sha256 of the canonical JSON of request and sample>``."""
    digest = hashlib.sha256(_dumps(keyed(canonical, sample)).encode()).hexdigest()
    return f"v{KEY_VERSION}:{digest}"


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
