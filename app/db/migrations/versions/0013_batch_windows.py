"""Batch create dedupe in the database: ``batches.dedupe_hash`` (the request hash of a batch
created without an ``Idempotency-Key``, held while it is within the dedupe window) is unique
per tenant, as ``idempotency_key`` already is, so two identical creates at once make one
batch. The index on ``(tenant_id, request_hash, created_at)`` it replaces goes.

Batches made before this upgrade hold no hash: an identical create within the window of one
of them makes a new batch.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("dedupe_hash", sa.String(64), nullable=True))
        batches.create_unique_constraint(
            "uq_batches_tenant_id_dedupe_hash", ["tenant_id", "dedupe_hash"]
        )
        batches.drop_index("ix_batches_tenant_id_request_hash_created_at")


def downgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.create_index(
            "ix_batches_tenant_id_request_hash_created_at",
            ["tenant_id", "request_hash", "created_at"],
        )
        batches.drop_constraint("uq_batches_tenant_id_dedupe_hash", type_="unique")
        batches.drop_column("dedupe_hash")
