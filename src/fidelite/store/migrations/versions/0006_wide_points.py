"""processing: points columns 64-bit on PostgreSQL, as the ledger's

The ledger stores points as 64-bit integers; the engine's own records of them (what an
event earned and reversed, what a member used of a capped rule, what a redemption cost)
were 32-bit on PostgreSQL, so an award the ledger accepts (over 2,147,483,647 points)
failed there while SQLite, whose INTEGER is 64-bit, took it. Only PostgreSQL changes.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = [
    ("event_earnings", "points"),
    ("event_earnings", "reversed"),
    ("rule_usage", "points"),
    ("redemptions", "points"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
