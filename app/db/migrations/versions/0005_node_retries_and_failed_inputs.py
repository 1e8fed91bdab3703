"""Node retries and failed inputs: ``node_results.retries`` keeps why each retried attempt of a
node failed, ``node_results.inputs`` the rendered inputs of a node that failed (null for the
others), so a job item's node records show what a run's do.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("node_results") as nodes:
        nodes.add_column(sa.Column("retries", JSON_DOC, nullable=True))
        nodes.add_column(sa.Column("inputs", JSON_DOC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_results") as nodes:
        nodes.drop_column("inputs")
        nodes.drop_column("retries")
