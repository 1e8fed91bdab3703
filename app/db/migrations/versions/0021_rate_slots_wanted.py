"""When a process was last refused one of an alias's concurrency slots:
``rate_limits.slots_wanted_at`` (epoch seconds of the store's clock; 0 = never). Processes
holding slot leases give them back while it is recent, and keep them otherwise.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rate_limits") as limits:
        limits.add_column(
            sa.Column("slots_wanted_at", sa.Float(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_limits") as limits:
        limits.drop_column("slots_wanted_at")
