"""Server-side request cap: a sliding window of accepted arrivals, with OpenAI headers."""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RequestWindow", "openai_duration", "retry_after_headers"]


class RequestWindow:
    """At most `cap` accepted arrivals in any `window_s` seconds."""

    __slots__ = ("_arrivals", "cap", "window_s")

    def __init__(self, cap: int, window_s: float) -> None:
        self.cap = cap
        self.window_s = window_s
        self._arrivals: deque[float] = deque()

    def admit(self, now: float) -> bool:
        """Count an arrival at `now` if the window has room; False means over the cap."""
        self._expire(now)
        if len(self._arrivals) >= self.cap:
            return False
        self._arrivals.append(now)
        return True

    def _expire(self, now: float) -> None:
        arrivals = self._arrivals
        horizon = now - self.window_s
        while arrivals and arrivals[0] <= horizon:
            arrivals.popleft()

    def clear(self) -> None:
        """Forget every arrival."""
        self._arrivals.clear()

    def headers(self, now: float) -> dict[str, str]:
        """x-ratelimit-* headers describing the window after the latest decision.

        The reset time is when the window is back to its full budget.
        """
        self._expire(now)
        arrivals = self._arrivals
        reset = arrivals[-1] + self.window_s - now if arrivals else 0.0
        return {
            "x-ratelimit-limit-requests": str(self.cap),
            "x-ratelimit-remaining-requests": str(max(0, self.cap - len(arrivals))),
            "x-ratelimit-reset-requests": openai_duration(reset),
        }

    def rejection_headers(self, now: float) -> dict[str, str]:
        """Headers for a 429: the x-ratelimit-* set plus when the next slot frees."""
        wait = self._arrivals[0] + self.window_s - now if self._arrivals else 0.0
        return {**retry_after_headers(wait), **self.headers(now)}


def retry_after_headers(seconds: float) -> dict[str, str]:
    """`retry-after` (whole seconds, rounded up, at least 1) and `retry-after-ms`."""
    seconds = max(0.0, seconds)
    return {
        "retry-after": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(math.ceil(seconds * 1000)),
    }


def openai_duration(seconds: float) -> str:
    """Format a duration the way OpenAI's reset headers do: `250ms`, `1s`, `6m0s`, `1h2m3.5s`."""
    total_ms = math.ceil(max(0.0, seconds) * 1000)
    if total_ms < 1000:
        return f"{total_ms}ms"
    hours, rest_ms = divmod(total_ms, 3_600_000)
    minutes, rest_ms = divmod(rest_ms, 60_000)
    secs = f"{rest_ms / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
