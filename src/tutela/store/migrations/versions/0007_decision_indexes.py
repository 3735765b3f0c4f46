"""core: only the decision indexes a query uses.

Every prompt check inserts one decision, and each index on the table is one more B-tree
insert and, in a batch of checks, one more page written per commit. No query reads
decisions by verdict alone or by time alone (an account's history is read through
``ix_decisions_account_created_at``, a decision by its id), so those two indexes went; on
SQLite they were a fifth of the pages each batch wrote. The hourly purge of expired prompt
text, which scanned the whole table, gets a partial index holding only the rows that keep
text. Building it reads the table once (on PostgreSQL, writes to the table wait meanwhile).

Revision ID: 0007_decision_indexes
Revises: 0001_core
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_decision_indexes"
down_revision = "0001_core"
branch_labels = None
depends_on = None

_KEPT = sa.text("prompt_expires_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_decisions_verdict", table_name="decisions")
    op.drop_index("ix_decisions_created_at", table_name="decisions")
    op.create_index("ix_decisions_prompt_expires_at", "decisions", ["prompt_expires_at"],
                    sqlite_where=_KEPT, postgresql_where=_KEPT)


def downgrade() -> None:
    op.drop_index("ix_decisions_prompt_expires_at", table_name="decisions")
    op.create_index("ix_decisions_created_at", "decisions", ["created_at"])
    op.create_index("ix_decisions_verdict", "decisions", ["verdict"])
