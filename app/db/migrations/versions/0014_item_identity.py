"""Job rows with identity: ``job_items.custom_id`` and ``job_items.item_metadata``, given by the
submitter per input row and carried into results; ``custom_id`` is unique per job (a partial
unique index over the rows that have one, which also serves a lookup by it).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WITH_CUSTOM_ID = sa.text("custom_id IS NOT NULL")
INDEX = "ix_job_items_job_id_custom_id"


def upgrade() -> None:
    with op.batch_alter_table("job_items") as items:
        items.add_column(sa.Column("custom_id", sa.String(512), nullable=True))
        items.add_column(sa.Column("item_metadata", JSON_DOC, nullable=True))
    op.create_index(
        INDEX,
        "job_items",
        ["job_id", "custom_id"],
        unique=True,
        postgresql_where=WITH_CUSTOM_ID,
        sqlite_where=WITH_CUSTOM_ID,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="job_items")
    with op.batch_alter_table("job_items") as items:
        items.drop_column("item_metadata")
        items.drop_column("custom_id")
