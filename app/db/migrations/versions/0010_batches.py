"""The OpenAI-compatible Batch API: ``files`` (uploads and batch output files) and
``batches`` (a batch's API state beside its job); a job may run no graph (a batch), so
``jobs.graph_version_id`` becomes nullable.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.alter_column("graph_version_id", existing_type=sa.String(36), nullable=True)
    _files()
    _batches()


def _files() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(36),
            sa.ForeignKey("tenants.id", ondelete="CASCADE", name="fk_files_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(40), nullable=True),
        sa.Column("batch_part", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_files_tenant_id_created_at_id", "files", ["tenant_id", "created_at", "id"])


def _batches() -> None:
    op.create_table(
        "batches",
        sa.Column(
            "id",
            sa.String(36),
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_batches_id_jobs"),
            primary_key=True,
        ),
        sa.Column(
            "tenant_id",
            sa.String(36),
            sa.ForeignKey("tenants.id", ondelete="CASCADE", name="fk_batches_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("input_file_id", sa.String(40), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(16), nullable=False),
        sa.Column("batch_metadata", JSON_DOC, nullable=True),
        sa.Column("idempotency_key", sa.String(256), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelling_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output_file_id", sa.String(40), nullable=True),
        sa.Column("error_file_id", sa.String(40), nullable=True),
        sa.Column("expired_lines", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name="uq_batches_tenant_id_idempotency_key"
        ),
    )
    op.create_index(
        "ix_batches_tenant_id_request_hash_created_at",
        "batches",
        ["tenant_id", "request_hash", "created_at"],
    )
    op.create_index(
        "ix_batches_tenant_id_created_at_id", "batches", ["tenant_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("batches")
    op.drop_table("files")
    with op.batch_alter_table("jobs") as jobs:
        jobs.alter_column("graph_version_id", existing_type=sa.String(36), nullable=False)
