"""accounts: account state, remembered attempts, age verifications, action history, and the
fingerprints of blocked prompts (cross-account reuse index and learned prompt bank).

Mirrors :mod:`tutela.accounts.tables`; ``tests/test_accounts_store.py`` checks the two agree.

Revision ID: 0003_accounts
Revises: 0001_core
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_accounts"
down_revision = "0001_core"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "account_state",
        sa.Column("id", sa.String(256), nullable=False),
        sa.Column("age_tier", sa.String(20), nullable=False),
        sa.Column("age_method", sa.String(100), nullable=True),
        sa.Column("age_years", sa.Integer(), nullable=True),
        sa.Column("age_verified_at", _TS, nullable=True),
        sa.Column("jurisdiction", sa.String(2), nullable=True),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("risk_at", _TS, nullable=True),
        sa.Column("strikes", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("action_since", _TS, nullable=True),
        sa.Column("action_until", _TS, nullable=True),
        sa.Column("action_reason", sa.String(500), nullable=True),
        sa.Column("report", sa.Boolean(), nullable=False),
        sa.Column("last_block_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account_state"),
    )
    op.create_table(
        "account_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(256), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("blocked_category", sa.String(40), nullable=True),
        sa.Column("content_verdict", sa.String(10), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("obfuscation", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=True),
        sa.Column("shingles", sa.Integer(), nullable=False),
        sa.Column("probe", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account_state.id"],
            name="fk_account_attempts_account_id_account_state",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_account_attempts"),
    )
    op.create_index("ix_account_attempts_account_at", "account_attempts", ["account_id", "at"])
    op.create_table(
        "account_verifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(256), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("method", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(200), nullable=True),
        sa.Column("age_years", sa.Integer(), nullable=True),
        sa.Column("jurisdiction", sa.String(2), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("verified_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account_state.id"],
            name="fk_account_verifications_account_id_account_state",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_account_verifications"),
    )
    op.create_index("ix_account_verifications_account_id", "account_verifications", ["account_id"])
    op.create_table(
        "account_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(256), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("until", _TS, nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("report", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account_state.id"],
            name="fk_account_actions_account_id_account_state",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_account_actions"),
    )
    op.create_index("ix_account_actions_account_id", "account_actions", ["account_id"])
    op.create_table(
        "blocked_prompts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("account_id", sa.String(256), nullable=True),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("shingles", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_blocked_prompts"),
    )
    op.create_index("ix_blocked_prompts_source", "blocked_prompts", ["source"])


def downgrade() -> None:
    op.drop_index("ix_blocked_prompts_source", table_name="blocked_prompts")
    op.drop_table("blocked_prompts")
    op.drop_index("ix_account_actions_account_id", table_name="account_actions")
    op.drop_table("account_actions")
    op.drop_index("ix_account_verifications_account_id", table_name="account_verifications")
    op.drop_table("account_verifications")
    op.drop_index("ix_account_attempts_account_at", table_name="account_attempts")
    op.drop_table("account_attempts")
    op.drop_table("account_state")
