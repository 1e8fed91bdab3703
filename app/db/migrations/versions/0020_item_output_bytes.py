"""A finished item's output size as a file line: ``job_items.output_bytes`` (a Batch API
line's bytes in its output or error file; null for other items and for lines stored before).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_items") as items:
        items.add_column(sa.Column("output_bytes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_items") as items:
        items.drop_column("output_bytes")
