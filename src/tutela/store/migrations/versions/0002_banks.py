"""banks: PDQ hash banks and their entries (tutela.hashes.models).

Revision ID: 0002_banks
Revises: 0001_core
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_banks"
down_revision = "0001_core"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hash_banks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hash_banks"),
        sa.UniqueConstraint("name", name="uq_hash_banks_name"),
    )
    op.create_table(
        "hash_entries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("bank_id", _ID, nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(200), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hash_entries"),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["hash_banks.id"],
            ondelete="CASCADE",
            name="fk_hash_entries_bank_id_hash_banks",
        ),
    )
    op.create_index("ix_hash_entries_bank_id_signal", "hash_entries", ["bank_id", "signal"])
    op.create_index("ix_hash_entries_updated_at", "hash_entries", ["updated_at"])
    op.create_index("ix_hash_entries_bank_id_ref", "hash_entries", ["bank_id", "ref"])


def downgrade() -> None:
    op.drop_index("ix_hash_entries_bank_id_ref", table_name="hash_entries")
    op.drop_index("ix_hash_entries_updated_at", table_name="hash_entries")
    op.drop_index("ix_hash_entries_bank_id_signal", table_name="hash_entries")
    op.drop_table("hash_entries")
    op.drop_table("hash_banks")
