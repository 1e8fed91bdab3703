"""Webhooks (a signing secret per tenant, a delivery state per job, every attempt recorded) and
the end time of each node result (for job traces).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEBHOOK_PENDING = sa.text("webhook_state = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as tenants:
        tenants.add_column(sa.Column("webhook_secret", sa.String(64), nullable=True))
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("webhook_state", sa.String(16), nullable=True))
        jobs.add_column(
            sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        jobs.add_column(sa.Column("webhook_next_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("jobs") as jobs:
        jobs.alter_column("webhook_attempts", server_default=None)
    op.create_index(
        op.f("ix_jobs_webhook_next_at"),
        "jobs",
        ["webhook_next_at"],
        postgresql_where=WEBHOOK_PENDING,
        sqlite_where=WEBHOOK_PENDING,
    )
    create_webhook_attempts()
    with op.batch_alter_table("node_results") as node_results:
        node_results.add_column(sa.Column("ended_s", sa.Float(), nullable=True))


def create_webhook_attempts() -> None:
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_webhook_attempts_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
        sa.UniqueConstraint("job_id", "attempt", name=op.f("uq_webhook_attempts_job_id_attempt")),
    )


def downgrade() -> None:
    with op.batch_alter_table("node_results") as node_results:
        node_results.drop_column("ended_s")
    op.drop_table("webhook_attempts")
    op.drop_index(op.f("ix_jobs_webhook_next_at"), table_name="jobs")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("webhook_next_at")
        jobs.drop_column("webhook_attempts")
        jobs.drop_column("webhook_state")
    with op.batch_alter_table("tenants") as tenants:
        tenants.drop_column("webhook_secret")
