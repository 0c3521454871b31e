"""redemptions: a reward taken in store (used), and look-ups by code and by member

``redemptions.used_at`` records when the reward was handed over in store (``POST
/v1/redemptions/{id}:use``, ``fidelite rewards use``), ``used_store`` where (optional)
and ``used_key`` the idempotency key of that use. Existing redemptions get NULL: not
used. ``status`` keeps its two values: a used redemption stays ``active`` in the
table, so it still counts against the reward's stock and the member's limit.

Two indexes serve the reads a till makes: a redemption by its code, and a member's
redemptions. The columns are added in place (``ALTER TABLE ... ADD COLUMN``) on both
databases: nullable columns without a default need no table rebuild on SQLite.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fidelite.store.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Time = fidelite.store.tables.UTCDateTime


def upgrade() -> None:
    op.add_column("redemptions", sa.Column("used_at", Time(timezone=True), nullable=True))
    op.add_column("redemptions", sa.Column("used_store", sa.String(200), nullable=True))
    op.add_column("redemptions", sa.Column("used_key", sa.String(200), nullable=True))
    op.create_index("ix_redemptions_code", "redemptions", ["program_id", "code"])
    op.create_index("ix_redemptions_member", "redemptions", ["program_id", "member_ref"])


def downgrade() -> None:
    op.drop_index("ix_redemptions_member", table_name="redemptions")
    op.drop_index("ix_redemptions_code", table_name="redemptions")
    # In place too (SQLite 3.35 and later drop a column without a rebuild).
    op.drop_column("redemptions", "used_key")
    op.drop_column("redemptions", "used_store")
    op.drop_column("redemptions", "used_at")
