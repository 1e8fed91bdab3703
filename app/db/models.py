"""The tables (DESIGN §6): tenants and keys, graphs, their immutable versions and the history
of which one is active, jobs, their items (inputs stored once), node results (one row per job,
item and node) and their counts per node and status, job events, webhook attempts, datasets
with their items, shared rate limits, the OpenAI-compatible files and batches, and the
response ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONDoc, UTCDateTime, new_id, utcnow
from app.lifecycle import ItemStatus, JobStatus

Timestamp = UTCDateTime()
# Items not finished yet. Statements on job_items repeat this exact text (unqualified, so only
# where job_items is the one table) so that both databases can use the partial index below.
# Spelled in this order, as in the migration that made the index.
OPEN_ITEMS = text(f"status IN ('{ItemStatus.PENDING}', '{ItemStatus.RUNNING}')")
WEBHOOK_PENDING = text("webhook_state = 'pending'")
WITH_CUSTOM_ID = text("custom_id IS NOT NULL")


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Signs the tenant's webhooks (HMAC-SHA256); kept in clear, as a signer must.
    webhook_secret: Mapped[str | None] = mapped_column(String(64), default=None)


class ApiKey(Base):
    """An API key, stored as the SHA-256 of the secret; ``prefix`` identifies it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)


class GraphRecord(Base):
    """A named graph of a tenant; its content lives in immutable versions."""

    __tablename__ = "graphs"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # The version number a job or run uses when it names none (null only before the first one).
    active_version: Mapped[int | None] = mapped_column(Integer, default=None)


class GraphVersion(Base):
    """One immutable version: the canonical graph JSON and its SHA-256."""

    __tablename__ = "graph_versions"
    __table_args__ = (UniqueConstraint("graph_id", "version"), UniqueConstraint("graph_id", "hash"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    graph_id: Mapped[str] = mapped_column(ForeignKey("graphs.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Provenance of a version an optimization run created (null for uploads): the version it
    # was trained from, the run (a job id) and step, and the step's parameter diffs.
    parent_version: Mapped[int | None] = mapped_column(Integer, default=None)
    run_id: Mapped[str | None] = mapped_column(String(36), default=None)
    run_step: Mapped[int | None] = mapped_column(Integer, default=None)
    diff: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, default=None)


class GraphActivation(Base):
    """One move of a graph's active version: from ``previous`` (null: none) to ``version``."""

    __tablename__ = "graph_activations"
    __table_args__ = (Index(None, "graph_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    graph_id: Mapped[str] = mapped_column(ForeignKey("graphs.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    previous: Mapped[int | None] = mapped_column(Integer, default=None)
    # What moved it: an upload, a promote or a rollback (app.lifecycle.ActivationReason).
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Job(Base):
    """A batch of items through one graph version.

    Item counts are kept on the row (updated with each batch of results) so that status reads
    are one primary-key lookup however large the job. ``pending`` is derived:
    ``item_count - running - succeeded - failed - cancelled``.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "status", "priority", "created_at"),
        Index(None, "tenant_id", "created_at", "id"),
        # Covers the dashboard's counts of a tenant's jobs by status (read from the index alone).
        Index(None, "tenant_id", "kind", "status"),
        Index(None, "finished_at"),
        Index(
            None,
            "webhook_next_at",
            postgresql_where=WEBHOOK_PENDING,
            sqlite_where=WEBHOOK_PENDING,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # Null only for a run of no graph (a Batch API batch: each line is its own model call).
    graph_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("graph_versions.id"), default=None
    )
    # Which run kind runs it (app.services.runner.kinds): "batch" is items through one graph.
    kind: Mapped[str] = mapped_column(String(32), default="batch")
    # What a kind other than "batch" needs to open a run (an evaluation's spec); None for batch.
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, default=None)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    # None until the job ends; then pending -> delivered | failed (app.services.runner.webhooks).
    webhook_state: Mapped[str | None] = mapped_column(String(16), default=None)
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_next_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    running: Mapped[int] = mapped_column(Integer, default=0)
    waiting: Mapped[int] = mapped_column(Integer, default=0)  # items at a human node
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    # How many runner processes died while holding the job (see app.services.runner.crashes).
    runner_crashes: Mapped[int] = mapped_column(Integer, default=0)
    # The response ledger (app.engine.ledger): the job's cache mode and replay (None: unset),
    # and how many model calls its items were answered from the ledger instead of made.
    cache: Mapped[str | None] = mapped_column(String(16), default=None)
    replay: Mapped[str | None] = mapped_column(String(16), default=None)
    calls_saved: Mapped[int] = mapped_column(BigInteger, default=0)
    # The W3C traceparent of the run's first span (OpenTelemetry): a resumed run continues it.
    trace_root: Mapped[str | None] = mapped_column(String(55), default=None)
    # The job whose failed items this job runs again (POST /v1/jobs/{id}/retry); no foreign
    # key: retention may delete the original first.
    retry_of: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)


class JobItem(Base):
    """One input of a job (stored once) and, when it ends, its outputs or error."""

    __tablename__ = "job_items"
    # Only unfinished items, in input order: what the runner pages through and cancel touches.
    # And the rows that carry a custom_id: unique per job, and how a result is looked up by it.
    __table_args__ = (
        Index(None, "job_id", "item_index", postgresql_where=OPEN_ITEMS, sqlite_where=OPEN_ITEMS),
        Index(
            None,
            "job_id",
            "custom_id",
            unique=True,
            postgresql_where=WITH_CUSTOM_ID,
            sqlite_where=WITH_CUSTOM_ID,
        ),
    )

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    item_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    input: Mapped[Any] = mapped_column(JSONDoc)
    # The row's identity as its submitter gave it (null when not given), carried into results.
    custom_id: Mapped[str | None] = mapped_column(String(512), default=None)
    item_metadata: Mapped[dict[str, str] | None] = mapped_column(JSONDoc, default=None)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.PENDING)
    output: Mapped[Any | None] = mapped_column(JSONDoc, default=None)
    # The output's bytes as a line of a file, when its run kind makes one (a Batch API line in
    # its output or error file): a file's size is then a sum, no line encoded again.
    output_bytes: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)


class HumanWait(Base):
    """One item at one ``human`` node: its wait, or an answer that came before the wait
    (the mailbox). One row per (job, item, node); see ``app.lifecycle.WaitStatus``."""

    __tablename__ = "human_waits"
    __table_args__ = (
        UniqueConstraint("job_id", "item_index", "node_id"),
        Index(None, "job_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    item_index: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str | None] = mapped_column(Text, default=None)  # null until the wait begins
    answer: Mapped[Any | None] = mapped_column(JSONDoc, default=None)
    deadline: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    waited_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    answered_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)


class NodeResult(Base):
    """How one node of one item ended: exactly one row per (job, item, node)."""

    __tablename__ = "node_results"
    # A job's results of one node (the node panel's percentiles and failures).
    __table_args__ = (Index(None, "job_id", "node_id", "status"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    item_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    output: Mapped[Any | None] = mapped_column(JSONDoc, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_type: Mapped[str | None] = mapped_column(String(64), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    alias: Mapped[str | None] = mapped_column(String(128), default=None)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    duration_s: Mapped[float | None] = mapped_column(Float, default=None)
    latency_s: Mapped[float | None] = mapped_column(Float, default=None)
    queued_s: Mapped[float | None] = mapped_column(Float, default=None)
    finish_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    # Why each retried attempt failed (usually an empty list).
    retries: Mapped[list[str] | None] = mapped_column(JSONDoc, default=None)
    # The rendered inputs of a failed node (null for the others): what a user debugging it needs.
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, default=None)
    # When the node ended (Unix seconds, from the runner's clock); ``finished_at`` is when its
    # batch was written, up to a flush interval later.
    ended_s: Mapped[float | None] = mapped_column(Float, default=None)
    finished_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class JobNodeCount(Base):
    """How many of a job's node results one node has in one status: the job page's graph
    counts, kept by the result writer in the transaction that writes the node results."""

    __tablename__ = "job_node_counts"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class JobEvent(Base):
    """Job and item state changes and progress, with increasing ids (``Last-Event-ID``)."""

    __tablename__ = "job_events"
    # AUTOINCREMENT: SQLite must never reuse an id, even after the newest events are deleted.
    __table_args__ = (Index(None, "job_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class WebhookAttempt(Base):
    """One try at delivering a job's webhook: when, the answer's status or the error, how long."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("job_id", "attempt"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)


class Dataset(Base):
    """An immutable set of ``(input, expected)`` items of a tenant, identified by the SHA-256 of
    its canonical lines (stored once per tenant)."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("tenant_id", "hash"), Index(None, "tenant_id", "created_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    hash: Mapped[str] = mapped_column(String(64))
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class DatasetItem(Base):
    """One item of a dataset, in upload order; ``item_id`` is the optional ``id`` of its line."""

    __tablename__ = "dataset_items"

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    item_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str | None] = mapped_column(String(200), default=None)
    input: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    expected: Mapped[Any | None] = mapped_column(JSONDoc)


class RateLimit(Base):
    """The shared rate budget of one endpoint alias (Postgres only): GCRA theoretical arrival
    times for requests and tokens, the end of a provider-imposed block, and the learned rates
    (``app.engine.resources.learning.Learned``), in epoch seconds of the database clock."""

    __tablename__ = "rate_limits"

    alias: Mapped[str] = mapped_column(String(200), primary_key=True)
    requests_tat: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_tat: Mapped[float] = mapped_column(Float, default=0.0)
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)
    learned_rpm: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    learned_tpm: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    learned_at: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    learned_from_headers: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    idle_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    grants_start: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    grants_cur: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    grants_prev: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # When a process was last refused a slot (holders give leases back while it is recent).
    slots_wanted_at: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class RateSlot(Base):
    """One concurrency slot of an alias, leased by ``owner`` until ``expires_at`` (epoch seconds
    of the database clock); free when ``owner`` is null or the lease has expired."""

    __tablename__ = "rate_slots"

    alias: Mapped[str] = mapped_column(String(200), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200), default=None)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)


class StoredFile(Base):
    """An OpenAI-style file of a tenant: an upload kept on disk under ``INF_FILES_DIR``, or a
    batch's output or error file, whose lines are the batch's stored items (``batch_id``)."""

    __tablename__ = "files"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(512))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Lines of an upload (counted as it is stored); the batch's file lines for an output file.
    lines: Mapped[int] = mapped_column(Integer, default=0)
    # An output (``output``) or error (``errors``) file of this batch; null for an upload.
    batch_id: Mapped[str | None] = mapped_column(String(40), default=None)
    batch_part: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)


class BatchRecord(Base):
    """A Batch API batch: the run (a job of kind ``openai_batch``, same id) and what the API
    shows of it beyond the job's own state."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        UniqueConstraint("tenant_id", "dedupe_hash"),
        Index(None, "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(
        String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    input_file_id: Mapped[str] = mapped_column(String(40))
    endpoint: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    batch_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(256), default=None)
    # SHA-256 of the create request: an identical create within the window is the same batch.
    request_hash: Mapped[str] = mapped_column(String(64))
    # The request hash while this batch is the one an identical keyless create answers (within
    # the dedupe window); unique per tenant, so two identical creates at once make one batch.
    dedupe_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    cancelling_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    # Set once the run ended and its output and error files exist.
    finalized_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    output_file_id: Mapped[str | None] = mapped_column(String(40), default=None)
    error_file_id: Mapped[str | None] = mapped_column(String(40), default=None)
    expired_lines: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerRecord(Base):
    """One recorded model call of a tenant (the response ledger): the answer to the request
    whose key is ``key``, as JSON. Only answers are kept, never errors."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index(None, "tenant_id", "node", "created_at"), Index(None, "created_at"))

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    node: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    sample: Mapped[int] = mapped_column(Integer, default=0)
    twin: Mapped[int] = mapped_column(Integer, default=0)
    request: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    response: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
