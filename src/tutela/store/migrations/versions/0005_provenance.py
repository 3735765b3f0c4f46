"""provenance: generation records of the output registry and the account-lookup log.

Revision ID: 0005_provenance
Revises: 0001_core
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_provenance"
down_revision = "0001_core"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "provenance_generations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("watermark_key", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.String(256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prompt_sha256", sa.String(64), nullable=True),
        sa.Column("pdq", sa.JSON(), nullable=False),
        sa.Column("pdq_quality", sa.Integer(), nullable=True),
        sa.Column("decision_id", sa.String(64), nullable=True),
        sa.Column("external_ref", sa.String(256), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_provenance_generations"),
        sa.UniqueConstraint("watermark_key", name="uq_provenance_generations_watermark_key"),
    )
    op.create_table(
        "provenance_lookups",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("generation_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_provenance_lookups"),
    )
    op.create_index("ix_provenance_lookups_generation_id", "provenance_lookups",
                    ["generation_id"])


def downgrade() -> None:
    op.drop_index("ix_provenance_lookups_generation_id", table_name="provenance_lookups")
    op.drop_table("provenance_lookups")
    op.drop_table("provenance_generations")
