"""API keys' last use, and who used a redemption in store

``api_keys.last_used_at``: when a request last presented the key (recorded at most
once a minute per key, so it adds no write to most requests); NULL: not used since
this revision. ``redemptions.used_by``: who recorded the use in store
(``api-key:<id>``, or the CLI's ``--actor``); NULL for earlier uses. Who redeemed and
who cancelled is kept on their ledger transactions (``ledger_transactions.actor``).

Nullable columns without a default: added in place on both databases.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fidelite.store.tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Time = fidelite.store.tables.UTCDateTime


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("last_used_at", Time(timezone=True), nullable=True))
    op.add_column("redemptions", sa.Column("used_by", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("redemptions", "used_by")
    op.drop_column("api_keys", "last_used_at")
