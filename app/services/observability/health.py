"""The job runner's health as ``/healthz``, ``/readyz`` and ``inf_runner_up`` report it."""

from __future__ import annotations

from dataclasses import dataclass

RUNNER_STATES = (
    "starting",
    "up",
    "stalled",
    "down",
    "restarting",
    "stopped",
    "disabled",
    "external",
)


@dataclass(frozen=True)
class RunnerHealth:
    """The runner's last known state, read without waiting on it.

    ``up``: running and answering; ``stalled``: alive, but its event loop answers no ping or
    scrape; ``down``: dead, waiting to be restarted; ``restarting``: a new runner is starting;
    ``starting``, ``stopped``: before start and after stop; ``disabled``: this process runs no
    jobs; ``external``: ``inf-engine worker`` processes run them (``runner_mode = none``).
    ``restarts`` counts runners started after one died.
    """

    state: str
    restarts: int = 0

    def as_dict(self) -> dict[str, str | int]:
        return {"runner": self.state, "runner_restarts": self.restarts}
