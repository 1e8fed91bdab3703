"""Mutable server state: behaviour, counters, request log, rule budgets, seeded RNG."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Any

from app.llm.simulation import noise

from .behaviour import Behaviour, Rule
from .limits import RequestWindow
from .replies import ChatRequest
from .windows import window_summary

__all__ = ["Fault", "LogEntry", "ServerState"]


class Fault:
    """Random fault kinds drawn from the global rates."""

    ERROR = "error"
    TIMEOUT = "timeout"
    MALFORMED = "malformed"


class LogEntry:
    """One request as seen by the server; appended on arrival, completed on answer."""

    __slots__ = (
        "body",
        "headers",
        "in_flight_at_arrival",
        "max_tokens",
        "model",
        "path",
        "prompt",
        "query",
        "status",
        "system",
        "t_arrival",
        "t_done",
        "tokens",
    )

    def __init__(self, t_arrival: float, path: str, in_flight: int) -> None:
        self.t_arrival = t_arrival
        self.t_done: float | None = None
        self.path = path
        self.status: int | None = None
        self.model: str | None = None
        self.system: str | None = None
        self.prompt: str | None = None
        self.max_tokens: int | None = None
        self.tokens: int | None = None  # prompt + completion served, once answered with usage
        self.in_flight_at_arrival = in_flight
        self.body: Any = None
        self.headers: dict[str, str] | None = None
        self.query: dict[str, str] | None = None

    def capture(self, body: Any, headers: Mapping[str, str], query: Mapping[str, str]) -> None:
        """Keep the request as sent: the decoded body, the headers (lowercase) and query."""
        self.body = body
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.query = dict(query)

    def describe(self, req: ChatRequest) -> None:
        """Record the parsed request."""
        self.model, self.system, self.prompt = req.model, req.system, req.prompt
        self.max_tokens = req.max_tokens

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {name: getattr(self, name) for name in _LOG_FIELDS}


_LOG_FIELDS = (
    "t_arrival",
    "t_done",
    "path",
    "status",
    "model",
    "system",
    "prompt",
    "max_tokens",
    "tokens",
    "in_flight_at_arrival",
    "body",
    "headers",
    "query",
)


class ServerState:
    """Everything the handlers read and update; single-threaded (one event loop)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.started = time.monotonic()
        self.in_flight = 0
        self.next_id = 0
        self.hanging: set[asyncio.BaseTransport] = set()
        self.configure(behaviour)

    def configure(self, behaviour: Behaviour) -> None:
        """Replace the behaviour; also resets stats, log, rule budgets and the rate window."""
        self.behaviour = behaviour
        self.rules = behaviour.rules
        self.fault_rate = behaviour.fault_rate
        self.latency_s = behaviour.latency_ms / 1000.0
        self.jitter_s = behaviour.jitter_ms / 1000.0
        cap = behaviour.rate_cap
        self.window = None if cap is None else RequestWindow(cap, behaviour.rate_window_s)
        self.reset()

    def reset(self) -> None:
        """Clear stats, log, rule budgets, attempt counts, the rate window; reseed the RNG."""
        self.requests = 0
        self.by_status: dict[int, int] = {}
        self.peak_in_flight = self.in_flight
        self.log: list[LogEntry] = []
        self.rules_left: list[int | None] = [rule.times for rule in self.rules]
        self.rng = random.Random(self.behaviour.seed)
        self.malformed_count = 0
        self.attempts = noise.Attempts()
        if self.window is not None:
            self.window.clear()

    def arrive(self, path: str, now: float) -> LogEntry | None:
        """Count a request that is now in flight; returns its log entry when logging."""
        self.in_flight = in_flight = self.in_flight + 1
        if in_flight > self.peak_in_flight:
            self.peak_in_flight = in_flight
        if not self.behaviour.log:
            return None
        entry = LogEntry(now - self.started, path, in_flight)
        self.log.append(entry)
        return entry

    def depart(self, entry: LogEntry | None, status: int, now: float) -> None:
        """The request was answered (or abandoned) with `status`."""
        self.in_flight -= 1
        self.count_status(status)
        if entry is not None:
            entry.status, entry.t_done = status, now - self.started

    def count_status(self, status: int) -> None:
        """Add one answer with `status` to the stats."""
        by_status = self.by_status
        by_status[status] = by_status.get(status, 0) + 1

    def take_rule(self, text: str) -> Rule | None:
        """First live rule whose `match` occurs in `text`; spends one of its `times`."""
        left = self.rules_left
        for i, rule in enumerate(self.rules):
            remaining = left[i]
            if remaining != 0 and rule.match in text:
                if remaining is not None:
                    left[i] = remaining - 1
                return rule
        return None

    def next_malformed_is_invalid_json(self) -> bool:
        """Malformed answers alternate: invalid JSON first, then JSON missing the reply."""
        self.malformed_count += 1
        return self.malformed_count % 2 == 1

    def draw_fault(self) -> str | None:
        """Random fault for this request from the global rates, or None."""
        if self.fault_rate <= 0.0:
            return None
        draw = self.rng.random()
        behaviour = self.behaviour
        if draw < behaviour.error_rate:
            return Fault.ERROR
        if draw < behaviour.error_rate + behaviour.timeout_rate:
            return Fault.TIMEOUT
        if draw < self.fault_rate:
            return Fault.MALFORMED
        return None

    def scheduled_fault(self, req: ChatRequest) -> int | None:
        """The status a simulated role's 429/500 schedule gives this attempt, counted."""
        if not noise.scheduled(req.model):
            return None
        attempt = self.attempts.next(req.model, req.system, req.prompt)
        return noise.fault(req.model, req.system, req.prompt, attempt)

    def delay_s(self, rule: Rule | None) -> float:
        """How long to wait before answering: the rule's delay, else latency plus jitter."""
        if rule is not None and rule.delay_ms is not None:
            return rule.delay_ms / 1000.0
        if self.jitter_s > 0.0:
            return self.latency_s + self.rng.uniform(0.0, self.jitter_s)
        return self.latency_s

    def new_id(self) -> int:
        """A process-unique response id number."""
        self.next_id += 1
        return self.next_id

    def stats(self) -> dict[str, Any]:
        """The `/_stats` document."""
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "started": self.started,
        }

    def busiest(self, window_s: float, model_suffix: str = "") -> dict[str, Any]:
        """The busiest ``window_s`` window and peak in flight of logged requests whose model
        ends with ``model_suffix`` (all by default); times are seconds since ``started``."""
        entries = [e for e in self.log if (e.model or "").endswith(model_suffix)]
        return window_summary(entries, window_s, time.monotonic() - self.started)
