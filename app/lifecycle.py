"""The lifecycle of jobs, items, webhooks and active graph versions: every status and event
kind, written once.

Statuses are ``StrEnum`` members, so they compare equal to the strings stored in the database
and sent over HTTP (``JobStatus.QUEUED == "queued"``). Terminal sets and allowed transitions are
defined here and nowhere else; the database, the services, the client and the CLI import them.

    >>> JobStatus.RUNNING in TERMINAL_JOB_STATUSES
    False
    >>> can_transition(JobStatus.QUEUED, JobStatus.RUNNING)
    True
    >>> EventKind.JOB_COMPLETED in TERMINAL_EVENTS
    True
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is: waiting, being run by a lease holder, or ended."""

    UPLOADING = "uploading"  # a JSONL upload still storing its items: seen and run by no one
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"  # every item ended (succeeded or failed)
    FAILED = "failed"  # the job itself could not run (bad graph, its runner died repeatedly)
    CANCELLED = "cancelled"


class ItemStatus(StrEnum):
    """Where one item of a job is."""

    PENDING = "pending"
    RUNNING = "running"
    # At a human node with no answer yet: out of the runner's window, holding no slot, until
    # an answer (or the node's timeout) makes it pending again.
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WaitStatus(StrEnum):
    """One human wait (a row of ``human_waits``): an item at a human node, or an answer that
    came first (the mailbox: kept until the wait begins)."""

    WAITING = "waiting"  # the item waits for this answer
    ANSWERED = "answered"  # an answer is stored (before or during the wait)
    TIMED_OUT = "timed_out"  # the deadline passed first
    CANCELLED = "cancelled"  # the job was cancelled while the item waited


class EventKind(StrEnum):
    """The kinds of stored job event, in the order a job emits them."""

    JOB_SUBMITTED = "job_submitted"
    JOB_STARTED = "job_started"
    ITEM_SUCCEEDED = "item_succeeded"  # one success, as the runner reports it
    ITEMS_SUCCEEDED = "items_succeeded"  # successes of one stored batch, as the stream carries them
    ITEM_FAILED = "item_failed"
    ITEM_WAITING = "item_waiting"  # an item reached a human node with no answer: it waits
    ITEM_ANSWERED = "item_answered"  # a wait's answer arrived (or its timeout passed)
    PROGRESS = "progress"  # the job's item counts, sent now and then while it runs
    JOB_COMPLETED = "job_completed"
    JOB_FAILED = "job_failed"
    JOB_CANCELLED = "job_cancelled"
    # An optimization run's training events (the engine's TrainingEvent), then its test score.
    RUN_STARTED = "run_started"
    STEP_STARTED = "step_started"
    BATCH_SCORED = "batch_scored"
    FEEDBACK = "feedback"
    PROPOSAL = "proposal"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    VALIDATED = "validated"
    BUDGET = "budget"
    FINISHED = "finished"
    VERSION_CREATED = "version_created"  # an accepted step's new (not active) graph version
    TESTED = "tested"  # the best values scored once on the test split


class OptimizationState(StrEnum):
    """An optimization run's state, from its job's status and how its one item ended."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WebhookState(StrEnum):
    """A job's webhook once the job ended: due (retried at its next time), delivered, given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class RunStatus(StrEnum):
    """How a one-shot run of a graph on one input (``POST /v1/runs``) ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ActivationReason(StrEnum):
    """What moved a graph's active version (a row of ``graph_activations``)."""

    UPLOAD = "upload"  # a user's upload, of new content or of an old version's
    PROMOTE = "promote"
    ROLLBACK = "rollback"


TERMINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_JOB_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
TERMINAL_ITEM_STATUSES = frozenset({ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.CANCELLED})
OPEN_ITEM_STATUSES = frozenset({ItemStatus.PENDING, ItemStatus.RUNNING})
TERMINAL_EVENTS = frozenset(
    {EventKind.JOB_COMPLETED, EventKind.JOB_FAILED, EventKind.JOB_CANCELLED}
)

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.UPLOADING: frozenset({JobStatus.QUEUED}),  # (a failed upload is deleted)
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    # A running job whose lease lapsed goes back to running under a new holder.
    JobStatus.RUNNING: frozenset(
        {JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
ITEM_TRANSITIONS: dict[ItemStatus, frozenset[ItemStatus]] = {
    ItemStatus.PENDING: frozenset({ItemStatus.RUNNING, ItemStatus.WAITING, ItemStatus.CANCELLED}),
    # A running item of a job taken over after a crash is run again.
    ItemStatus.RUNNING: frozenset(
        {
            ItemStatus.RUNNING,
            ItemStatus.WAITING,
            ItemStatus.SUCCEEDED,
            ItemStatus.FAILED,
            ItemStatus.CANCELLED,
        }
    ),
    # Answered (or timed out): runnable again, its finished nodes kept.
    ItemStatus.WAITING: frozenset({ItemStatus.PENDING, ItemStatus.CANCELLED}),
    ItemStatus.SUCCEEDED: frozenset(),
    ItemStatus.FAILED: frozenset(),
    ItemStatus.CANCELLED: frozenset(),
}
END_EVENT = {
    JobStatus.COMPLETED: EventKind.JOB_COMPLETED,
    JobStatus.FAILED: EventKind.JOB_FAILED,
    JobStatus.CANCELLED: EventKind.JOB_CANCELLED,
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    """Whether a job in ``current`` may move to ``target``."""
    return target in JOB_TRANSITIONS[current]


def item_can_transition(current: ItemStatus, target: ItemStatus) -> bool:
    """Whether an item in ``current`` may move to ``target``."""
    return target in ITEM_TRANSITIONS[current]


def end_event(status: JobStatus) -> EventKind:
    """The terminal event a job ending in ``status`` emits: ``job_completed`` for completed."""
    return END_EVENT[status]


class BatchStatus(StrEnum):
    """A Batch API batch's status, as OpenAI names it; derived from its job (see
    ``app.services.batches.views``)."""

    VALIDATING = "validating"  # checked and queued, not yet claimed by a runner
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"  # every line ended; the output and error files are being made
    COMPLETED = "completed"
    EXPIRED = "expired"  # the completion window closed before every line ended
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class FilePurpose(StrEnum):
    """What an OpenAI-style file is for: uploads name one; batch output files are made."""

    BATCH = "batch"
    BATCH_OUTPUT = "batch_output"
    ASSISTANTS = "assistants"
    FINE_TUNE = "fine-tune"
    VISION = "vision"
    USER_DATA = "user_data"
    EVALS = "evals"


class BatchPart(StrEnum):
    """Which of a batch's two files an output file is."""

    OUTPUT = "output"
    ERRORS = "errors"
