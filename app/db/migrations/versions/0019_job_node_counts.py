"""Per-node state counts of a job: ``job_node_counts`` (one row per job, node and status, with
how many of the job's node results it has), kept by the result writer in the transaction that
writes the node results, so the job page reads a few rows instead of counting every result.
Existing jobs are counted from their node results.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = sa.text(
    "INSERT INTO job_node_counts (job_id, node_id, status, n) "
    "SELECT job_id, node_id, status, COUNT(*) FROM node_results "
    "GROUP BY job_id, node_id, status"
)


def upgrade() -> None:
    op.create_table(
        "job_node_counts",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_node_counts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "node_id", "status", name=op.f("pk_job_node_counts")),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("job_node_counts")
