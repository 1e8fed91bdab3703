"""How many runner processes died while holding each job (a job that keeps killing its runner
is failed instead of being run again).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(
            sa.Column("runner_crashes", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("jobs") as jobs:
        jobs.alter_column("runner_crashes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("runner_crashes")
