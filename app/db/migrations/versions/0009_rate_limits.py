"""Shared rate limits: ``rate_limits`` holds each endpoint alias's GCRA state (request and
token theoretical arrival times, ``blocked_until``) and ``rate_slots`` its concurrency leases,
all in epoch seconds of the database clock.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("alias", sa.String(200), primary_key=True),
        sa.Column("requests_tat", sa.Float(), nullable=False),
        sa.Column("tokens_tat", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
    )
    op.create_table(
        "rate_slots",
        sa.Column("alias", sa.String(200), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_slots")
    op.drop_table("rate_limits")
