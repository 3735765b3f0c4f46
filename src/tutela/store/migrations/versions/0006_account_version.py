"""accounts: a version number on each account's state row.

Checks of one account run concurrently (threads of one worker, several workers on
PostgreSQL); each reads the state, applies the ladder and writes the new state. The version
makes that write conditional (``WHERE version = <what was read>``): a check whose state
changed under it is recomputed on the fresh state instead of overwriting a strike or an
action another check just wrote.

Revision ID: 0006_account_version
Revises: 0003_accounts
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_account_version"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None


# A plain ALTER TABLE on both databases, never Alembic's batch mode: on SQLite that copies
# the table, drops the old one and renames the copy, and dropping account_state with foreign
# keys on deletes every attempt, verification and action of every account (ON DELETE
# CASCADE). SQLite adds a NOT NULL column with a constant default in place (and drops one in
# place since 3.35); tests/test_accounts_store.py upgrades a populated 0003 database.


def upgrade() -> None:
    op.add_column(
        "account_state",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_column("account_state", "version")
