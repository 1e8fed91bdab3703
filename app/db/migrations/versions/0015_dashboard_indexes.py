"""Indexes for the dashboard's counts: a tenant's jobs by kind and status (the jobs list's
live counts) and a job's node records by node and status (the job graph's per-node state
counts). Both cover their query, so a count reads the index alone, not the rows.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOBS_INDEX = "ix_jobs_tenant_id_kind_status"
NODES_INDEX = "ix_node_results_job_id_node_id_status"


def upgrade() -> None:
    op.create_index(JOBS_INDEX, "jobs", ["tenant_id", "kind", "status"])
    op.create_index(NODES_INDEX, "node_results", ["job_id", "node_id", "status"])


def downgrade() -> None:
    op.drop_index(NODES_INDEX, table_name="node_results")
    op.drop_index(JOBS_INDEX, table_name="jobs")
