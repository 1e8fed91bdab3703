"""Rate-limit and retry-after header parsing (pure: no I/O)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from app.engine.llm import RateLimitInfo
from app.llm.headers import (
    ANTHROPIC_RATE_HEADERS,
    OPENAI_RATE_HEADERS,
    parse_duration,
    parse_timestamp_delta,
    rate_limit_info,
    retry_after_s,
)

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("250ms", 0.25),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("20ms", 0.02),
        ("1.5s", 1.5),
        ("500us", 0.0005),
        ("2", 2.0),
        ("0.75", 0.75),
        (" 3s ", 3.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "1x", "abc", "1s junk", "-1s", "m5", "nan", "inf"])
def test_bad_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_timestamps_rfc3339_http_date_and_past() -> None:
    assert parse_timestamp_delta("2023-11-14T22:13:50Z", NOW) == pytest.approx(30.0)
    assert parse_timestamp_delta("2023-11-14T22:13:21.5+00:00", NOW) == pytest.approx(1.5)
    assert parse_timestamp_delta("Tue, 14 Nov 2023 22:14:20 GMT", NOW) == pytest.approx(60.0)
    assert parse_timestamp_delta("2023-11-14T22:00:00Z", NOW) == 0.0
    assert parse_timestamp_delta("not a date", NOW) is None


def test_retry_after_ms_wins() -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "9", "x-ratelimit-reset-requests": "1m"}
    assert retry_after_s(headers, NOW) == 1.5


def test_retry_after_seconds_and_date() -> None:
    assert retry_after_s({"retry-after": "7"}, NOW) == 7.0
    assert retry_after_s({"retry-after": "0.5"}, NOW) == 0.5
    date = {"retry-after": "Tue, 14 Nov 2023 22:13:32 GMT"}
    assert retry_after_s(date, NOW) == pytest.approx(12.0)


def test_invalid_retry_after_falls_through_to_resets() -> None:
    headers = {"retry-after": "soon", "x-ratelimit-reset-requests": "250ms"}
    assert retry_after_s(headers, NOW) == 0.25


def test_openai_reset_of_the_exhausted_limit() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "12",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "1m30s",
    }
    assert retry_after_s(headers, NOW) == 90.0


def test_longest_reset_when_none_is_known_exhausted() -> None:
    headers = {"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "5s"}
    assert retry_after_s(headers, NOW) == 5.0


def test_anthropic_reset_timestamps() -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:24Z",
        "anthropic-ratelimit-tokens-remaining": "5000",
        "anthropic-ratelimit-tokens-reset": "2023-11-14T22:14:20Z",
    }
    assert retry_after_s(headers, NOW) == pytest.approx(4.0)


def test_no_hint_at_all() -> None:
    assert retry_after_s({}, NOW) is None
    assert retry_after_s({"retry-after-ms": "-5"}, NOW) is None


def test_case_insensitive_headers() -> None:
    headers = CIMultiDict({"Retry-After-Ms": "200", "X-RateLimit-Remaining-Requests": "3"})
    assert retry_after_s(headers, NOW) == 0.2
    info = rate_limit_info(headers, now=NOW)
    assert info is not None
    assert info.remaining_requests == 3


def test_openai_rate_limit_info() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-tokens": "2s",
    }
    assert rate_limit_info(headers, (OPENAI_RATE_HEADERS,), NOW) == RateLimitInfo(
        limit_requests=500,
        remaining_requests=499,
        reset_requests_s=0.12,
        limit_tokens=30000,
        remaining_tokens=29000,
        reset_tokens_s=2.0,
    )


def test_anthropic_rate_limit_info() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:21Z",
        "anthropic-ratelimit-tokens-limit": "80000",
        "anthropic-ratelimit-tokens-remaining": "79000",
        "anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:26Z",
    }
    info = rate_limit_info(headers, (ANTHROPIC_RATE_HEADERS,), NOW)
    assert info == RateLimitInfo(50, 49, 1.0, 80000, 79000, 6.0)


def test_rate_limit_info_absent_or_partly_unreadable() -> None:
    assert rate_limit_info({"content-type": "application/json"}, now=NOW) is None
    info = rate_limit_info({"x-ratelimit-limit-requests": "many"}, now=NOW)
    assert info == RateLimitInfo()
    assert rate_limit_info({"x-ratelimit-limit-requests": "10"}, (ANTHROPIC_RATE_HEADERS,)) is None
