"""The initial schema: tenants, API keys, graphs and versions, jobs, items, node results, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COUNTERS = ("item_count", "running", "succeeded", "failed", "cancelled")
OPEN_ITEMS = sa.text("status IN ('pending', 'running')")


def timestamp(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    name = op.f(f"fk_{table}_tenant_id_tenants")
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=name, ondelete="CASCADE")


def job_fk(table: str) -> sa.ForeignKeyConstraint:
    name = op.f(f"fk_{table}_job_id_jobs")
    return sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=name, ondelete="CASCADE")


def upgrade() -> None:
    create_tenants()
    create_graphs()
    create_jobs()
    create_job_items()
    create_node_results()
    create_job_events()


def create_tenants() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        timestamp("created_at"),
        timestamp("revoked_at", nullable=True),
        tenant_fk("api_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"])


def create_graphs() -> None:
    op.create_table(
        "graphs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        timestamp("created_at"),
        tenant_fk("graphs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graphs")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_graphs_tenant_id_name")),
    )
    op.create_table(
        "graph_versions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("graph_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("definition", JSON_DOC, nullable=False),
        timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["graph_id"],
            ["graphs.id"],
            name=op.f("fk_graph_versions_graph_id_graphs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_versions")),
        sa.UniqueConstraint("graph_id", "hash", name=op.f("uq_graph_versions_graph_id_hash")),
        sa.UniqueConstraint("graph_id", "version", name=op.f("uq_graph_versions_graph_id_version")),
    )


def create_jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("graph_version_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS],
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        timestamp("lease_expires_at", nullable=True),
        timestamp("created_at"),
        timestamp("started_at", nullable=True),
        timestamp("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["graph_version_id"],
            ["graph_versions.id"],
            name=op.f("fk_jobs_graph_version_id_graph_versions"),
        ),
        tenant_fk("jobs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_finished_at"), "jobs", ["finished_at"])
    op.create_index(
        op.f("ix_jobs_status_priority_created_at"), "jobs", ["status", "priority", "created_at"]
    )
    op.create_index(
        op.f("ix_jobs_tenant_id_created_at_id"), "jobs", ["tenant_id", "created_at", "id"]
    )


def create_job_items() -> None:
    op.create_table(
        "job_items",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("input", JSON_DOC, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("output", JSON_DOC, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        timestamp("finished_at", nullable=True),
        job_fk("job_items"),
        sa.PrimaryKeyConstraint("job_id", "item_index", name=op.f("pk_job_items")),
    )
    op.create_index(
        op.f("ix_job_items_job_id_item_index"),
        "job_items",
        ["job_id", "item_index"],
        postgresql_where=OPEN_ITEMS,
        sqlite_where=OPEN_ITEMS,
    )


def create_node_results() -> None:
    op.create_table(
        "node_results",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("output", JSON_DOC, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(128), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=True),
        sa.Column("queued_s", sa.Float(), nullable=True),
        timestamp("finished_at"),
        job_fk("node_results"),
        sa.PrimaryKeyConstraint("job_id", "item_index", "node_id", name=op.f("pk_node_results")),
    )


def create_job_events() -> None:
    op.create_table(
        "job_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", JSON_DOC, nullable=False),
        timestamp("created_at"),
        job_fk("job_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
        sqlite_autoincrement=True,  # never reuse an id (clients resume with Last-Event-ID)
    )
    op.create_index(op.f("ix_job_events_job_id_id"), "job_events", ["job_id", "id"])


def downgrade() -> None:
    for table in (
        "job_events",
        "node_results",
        "job_items",
        "jobs",
        "graph_versions",
        "graphs",
        "api_keys",
        "tenants",
    ):
        op.drop_table(table)  # drops its indexes too
