"""The response ledger: ``ledger_entries`` (a tenant's recorded model calls, by request key)
and, on ``jobs``, the job's ``cache`` mode, ``replay`` and ``calls_saved``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("cache", sa.String(16), nullable=True))
        jobs.add_column(sa.Column("replay", sa.String(16), nullable=True))
        jobs.add_column(
            sa.Column("calls_saved", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("jobs") as jobs:
        jobs.alter_column("calls_saved", server_default=None)
    _ledger_entries()


def _ledger_entries() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column(
            "tenant_id",
            sa.String(36),
            sa.ForeignKey(
                "tenants.id", ondelete="CASCADE", name="fk_ledger_entries_tenant_id_tenants"
            ),
            primary_key=True,
        ),
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("sample", sa.Integer(), nullable=False),
        sa.Column("twin", sa.Integer(), nullable=False),
        sa.Column("request", JSON_DOC, nullable=False),
        sa.Column("response", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_ledger_entries_tenant_id_node_created_at",
        "ledger_entries",
        ["tenant_id", "node", "created_at"],
    )
    op.create_index("ix_ledger_entries_created_at", "ledger_entries", ["created_at"])


def downgrade() -> None:
    op.drop_table("ledger_entries")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("calls_saved")
        jobs.drop_column("replay")
        jobs.drop_column("cache")
