"""Learned rates of the shared limiter: each alias's row in ``rate_limits`` also keeps the rates
learned from the provider (its stated limits, or cuts on its 429s), when they were set, the idle
time since and the grants of the last two 60-s buckets
(``app.engine.resources.learning``), in epoch seconds of the database clock.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLOATS = (
    "learned_rpm",
    "learned_tpm",
    "learned_at",
    "idle_s",
    "grants_start",
    "grants_cur",
    "grants_prev",
)


def upgrade() -> None:
    with op.batch_alter_table("rate_limits") as batch:
        for name in FLOATS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column(
                "learned_from_headers", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_limits") as batch:
        for name in ("learned_from_headers", *reversed(FLOATS)):
            batch.drop_column(name)
