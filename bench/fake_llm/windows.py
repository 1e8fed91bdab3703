"""What the server saw over time: the busiest sliding window and the peak in flight.

Pure functions over arrival times (seconds) and answer spans, as the request log records them,
so that a rate or concurrency limit is checked where it matters: at the server.

>>> busiest_window([0.0, 0.5, 1.0, 2.5], window_s=1.0)
2.0
>>> busiest_window([0.0, 0.5, 1.0], window_s=2.0, weights=[10, 1, 1])
12.0
>>> peak_overlap([(0.0, 2.0), (1.0, 3.0), (2.0, None)], now=5.0)
2
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["busiest_window", "peak_overlap", "window_summary"]


def busiest_window(
    times: Sequence[float], window_s: float, weights: Sequence[float] | None = None
) -> float:
    """The largest total weight (default: count) of arrivals within any ``window_s`` span.

    A window is half-open, ``[t, t + window_s)``: an arrival exactly ``window_s`` after
    another is already in the next window, as a provider's sliding minute counts it.
    """
    order = sorted(range(len(times)), key=times.__getitem__)
    weight = [1.0] * len(times) if weights is None else [float(w) for w in weights]
    best = total = 0.0
    first = 0
    for index in order:
        total += weight[index]
        while times[order[first]] <= times[index] - window_s:
            total -= weight[order[first]]
            first += 1
        best = max(best, total)
    return best


def peak_overlap(spans: Iterable[tuple[float, float | None]], now: float) -> int:
    """The most spans open at one instant; a span still open (end ``None``) ends at ``now``.

    A span ending when another starts does not overlap it (the server answered first).
    """
    edges = sorted(
        edge for start, end in spans for edge in ((start, 1), (now if end is None else end, -1))
    )
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def window_summary(entries: Sequence[Any], window_s: float, now: float) -> dict[str, Any]:
    """Requests, tokens served, busiest window and peak in flight of some log entries."""
    arrivals = [entry.t_arrival for entry in entries]
    tokens = [entry.tokens or 0 for entry in entries]
    return {
        "window_s": window_s,
        "requests": len(entries),
        "tokens": sum(tokens),
        "max_requests_in_window": int(busiest_window(arrivals, window_s)),
        "max_tokens_in_window": int(busiest_window(arrivals, window_s, tokens)),
        "peak_in_flight": peak_overlap(((e.t_arrival, e.t_done) for e in entries), now),
    }
