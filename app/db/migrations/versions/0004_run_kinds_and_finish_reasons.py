"""Run kinds and finish reasons: ``jobs.kind`` names the run kind that runs a job (existing jobs
are ``batch``), ``node_results.finish_reason`` keeps the last field of a model call's usage, so
a stored node comes back as the record it was.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="batch")
        )
    with op.batch_alter_table("jobs") as jobs:
        jobs.alter_column("kind", server_default=None)
    with op.batch_alter_table("node_results") as nodes:
        nodes.add_column(sa.Column("finish_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_results") as nodes:
        nodes.drop_column("finish_reason")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("kind")
