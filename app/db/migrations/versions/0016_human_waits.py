"""Human-input nodes: ``human_waits`` (one row per job, item and human node: the wait, or an
answer that came before it) and ``jobs.waiting``, the count of items waiting for an answer.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("waiting", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("jobs") as jobs:
        jobs.alter_column("waiting", server_default=None)
    op.create_table(
        "human_waits",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_human_waits_job_id_jobs"),
            nullable=False,
        ),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("answer", JSON_DOC, nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "job_id", "item_index", "node_id", name="uq_human_waits_job_id_item_index_node_id"
        ),
    )
    op.create_index("ix_human_waits_job_id_status", "human_waits", ["job_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_human_waits_job_id_status", table_name="human_waits")
    op.drop_table("human_waits")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("waiting")
