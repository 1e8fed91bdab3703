"""The lifecycle's sets and transitions agree with each other."""

from __future__ import annotations

from app.lifecycle import (
    ITEM_TRANSITIONS,
    JOB_TRANSITIONS,
    TERMINAL_EVENTS,
    TERMINAL_ITEM_STATUSES,
    TERMINAL_JOB_STATUSES,
    ItemStatus,
    JobStatus,
    can_transition,
    end_event,
)


def test_terminal_statuses_are_exactly_those_without_a_way_out() -> None:
    assert {s for s, out in JOB_TRANSITIONS.items() if not out} == TERMINAL_JOB_STATUSES
    assert {s for s, out in ITEM_TRANSITIONS.items() if not out} == TERMINAL_ITEM_STATUSES
    assert set(JOB_TRANSITIONS) == set(JobStatus)
    assert set(ITEM_TRANSITIONS) == set(ItemStatus)


def test_every_terminal_status_has_its_own_terminal_event() -> None:
    events = {end_event(status) for status in TERMINAL_JOB_STATUSES}
    assert events == TERMINAL_EVENTS


def test_an_ended_job_never_runs_again() -> None:
    assert not can_transition(JobStatus.CANCELLED, JobStatus.RUNNING)
    assert can_transition(JobStatus.QUEUED, JobStatus.CANCELLED)


def test_statuses_are_the_strings_the_api_speaks() -> None:
    assert JobStatus.COMPLETED == "completed"
    assert f"{ItemStatus.SUCCEEDED}" == "succeeded"
