"""Datasets and active graph versions: ``datasets`` and ``dataset_items`` hold immutable
``(input, expected)`` sets, identified per tenant by content hash; ``graphs.active_version`` is
what a job or run uses when it names no version, and ``graph_activations`` records each move of
it (so a rollback knows where to go back to). Existing graphs start on their newest version.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NEWEST = sa.text(
    "UPDATE graphs SET active_version = "
    "(SELECT max(version) FROM graph_versions WHERE graph_versions.graph_id = graphs.id)"
)


def upgrade() -> None:
    with op.batch_alter_table("graphs") as graphs:
        graphs.add_column(sa.Column("active_version", sa.Integer(), nullable=True))
    op.execute(NEWEST)
    create_graph_activations()
    create_datasets()
    create_dataset_items()


def create_graph_activations() -> None:
    op.create_table(
        "graph_activations",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("graph_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["graph_id"],
            ["graphs.id"],
            name=op.f("fk_graph_activations_graph_id_graphs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_activations")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_graph_activations_graph_id_id"), "graph_activations", ["graph_id", "id"]
    )


def create_datasets() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_datasets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("tenant_id", "hash", name=op.f("uq_datasets_tenant_id_hash")),
    )
    op.create_index(
        op.f("ix_datasets_tenant_id_created_at"), "datasets", ["tenant_id", "created_at"]
    )


def create_dataset_items() -> None:
    op.create_table(
        "dataset_items",
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=True),
        sa.Column("input", JSON_DOC, nullable=False),
        sa.Column("expected", JSON_DOC, nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_items_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "item_index", name=op.f("pk_dataset_items")),
    )


def downgrade() -> None:
    op.drop_table("dataset_items")
    op.drop_index(op.f("ix_datasets_tenant_id_created_at"), table_name="datasets")
    op.drop_table("datasets")
    op.drop_index(op.f("ix_graph_activations_graph_id_id"), table_name="graph_activations")
    op.drop_table("graph_activations")
    with op.batch_alter_table("graphs") as graphs:
        graphs.drop_column("active_version")
