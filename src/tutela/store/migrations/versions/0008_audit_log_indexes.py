"""evidence: no index on the audit log's entry kind.

Every decision appends an audit-log leaf, and each index is one more B-tree insert per
leaf. Entries are read by subject (``ix_audit_log_subject``, with the kind as a filter on
those few rows), by position or by time; never by kind alone, so its index went.

Revision ID: 0008_audit_log_indexes
Revises: 0004_evidence
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0008_audit_log_indexes"
down_revision = "0004_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_audit_log_kind", table_name="audit_log")


def downgrade() -> None:
    op.create_index("ix_audit_log_kind", "audit_log", ["kind"])
