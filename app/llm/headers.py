"""Read rate-limit and retry-after headers (OpenAI, Anthropic and HTTP standard forms).

Header lookups use lowercase names: pass a case-insensitive mapping (aiohttp's response
headers are one) or a dict with lowercase keys. ``now`` is Unix time, injectable for tests.

>>> retry_after_s({"retry-after": "2"})
2.0
>>> parse_duration("6m0s")
360.0
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import NamedTuple

from app.engine.llm import RateLimitInfo


class RateLimitHeaders(NamedTuple):
    """The header names one provider uses for its limits."""

    limit_requests: str
    remaining_requests: str
    reset_requests: str
    limit_tokens: str
    remaining_tokens: str
    reset_tokens: str


OPENAI_RATE_HEADERS = RateLimitHeaders(
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)
ANTHROPIC_RATE_HEADERS = RateLimitHeaders(
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
)
ALL_RATE_HEADERS = (OPENAI_RATE_HEADERS, ANTHROPIC_RATE_HEADERS)
_RESET_PAIRS = [
    pair
    for n in ALL_RATE_HEADERS
    for pair in ((n.remaining_requests, n.reset_requests), (n.remaining_tokens, n.reset_tokens))
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


@lru_cache(maxsize=1024)  # on the hot path; providers repeat a few values
def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``1s``, ``250ms``, ``1h2m3.5s``) or a bare number.

    >>> parse_duration("1h2m3.5s")
    3723.5
    >>> parse_duration("250ms")
    0.25
    >>> parse_duration("soon") is None
    True
    """
    text = text.strip()
    number = _number(text)
    if number is not None:
        return number
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def parse_timestamp_delta(text: str, now: float) -> float | None:
    """Seconds from ``now`` until an RFC 3339 or HTTP date (0 if it has passed).

    >>> parse_timestamp_delta("1970-01-01T00:01:40Z", now=40.0)
    60.0
    >>> parse_timestamp_delta("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0)
    60.0
    """
    moment = _parse_datetime(text.strip())
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - now)


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long a 429 asks the caller to wait, in seconds, or None if the headers do not say.

    Order: ``retry-after-ms``, ``retry-after`` (seconds or HTTP date), then the reset of an
    exhausted limit (OpenAI durations, Anthropic timestamps), else the longest reset given.

    >>> retry_after_s({"retry-after-ms": "1500", "retry-after": "9"})
    1.5
    >>> retry_after_s({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
    ...                "x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "1h"})
    360.0
    """
    when = time.time() if now is None else now
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    seconds = _seconds_or_date(headers.get("retry-after"), when)
    if seconds is not None:
        return seconds
    return _reset_hint(headers, when)


def rate_limit_info(
    headers: Mapping[str, str],
    names: tuple[RateLimitHeaders, ...] = ALL_RATE_HEADERS,
    now: float | None = None,
) -> RateLimitInfo | None:
    """The provider's view of its limits, or None when it sent no rate-limit headers.

    >>> rate_limit_info({"x-ratelimit-remaining-requests": "99", "x-ratelimit-reset-tokens": "2s"})
    RateLimitInfo(limit_requests=None, remaining_requests=99, reset_requests_s=None, \
limit_tokens=None, remaining_tokens=None, reset_tokens_s=2.0)
    """
    for n in names:
        values = [headers.get(name) for name in n]
        if any(value is not None for value in values):
            return _info(values, time.time() if now is None else now)
    return None


def _info(values: list[str | None], now: float) -> RateLimitInfo:
    lim_r, rem_r, reset_r, lim_t, rem_t, reset_t = values
    return RateLimitInfo(
        limit_requests=_int(lim_r),
        remaining_requests=_int(rem_r),
        reset_requests_s=_reset(reset_r, now),
        limit_tokens=_int(lim_t),
        remaining_tokens=_int(rem_t),
        reset_tokens_s=_reset(reset_t, now),
    )


def _reset_hint(headers: Mapping[str, str], now: float) -> float | None:
    exhausted: list[float] = []
    given: list[float] = []
    for remaining, reset in _RESET_PAIRS:
        seconds = _reset(headers.get(reset), now)
        if seconds is None:
            continue
        given.append(seconds)
        if _int(headers.get(remaining)) == 0:
            exhausted.append(seconds)
    found = exhausted or given
    return max(found) if found else None


def _reset(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    seconds = parse_duration(value)
    return seconds if seconds is not None else parse_timestamp_delta(value, now)


def _seconds_or_date(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    seconds = _number(value)
    return seconds if seconds is not None else parse_timestamp_delta(value, now)


def _parse_datetime(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    # A date without an offset is taken as UTC, as HTTP dates are.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        number = _number(value)
        return int(number) if number is not None else None
