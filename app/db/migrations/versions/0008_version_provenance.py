"""Version provenance: a graph version an optimization run created records the version it
was trained from (``parent_version``), the run (``run_id``, a job id) and its step
(``run_step``), and the parameter diff of that step (``diff``: name -> unified diff). Null for
versions a user uploaded.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("graph_versions") as versions:
        versions.add_column(sa.Column("parent_version", sa.Integer(), nullable=True))
        versions.add_column(sa.Column("run_id", sa.String(36), nullable=True))
        versions.add_column(sa.Column("run_step", sa.Integer(), nullable=True))
        versions.add_column(sa.Column("diff", JSON_DOC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("graph_versions") as versions:
        for column in ("diff", "run_step", "run_id", "parent_version"):
            versions.drop_column(column)
