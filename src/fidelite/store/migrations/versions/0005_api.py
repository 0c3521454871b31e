"""api: API keys (stored hashed) and the replay store for Idempotency-Key

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fidelite.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Time = fidelite.store.tables.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("program_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("revoked_at", Time(), nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'integration', 'analyst', 'support')", name="ck_api_keys_role"
        ),
    )
    op.create_table(
        "api_requests",
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("idem_key", sa.String(200), primary_key=True),
        sa.Column("route", sa.String(300), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("updated_at", Time(), nullable=False),
        sa.CheckConstraint("state IN ('in_flight', 'done')", name="ck_api_requests_state"),
    )


def downgrade() -> None:
    op.drop_table("api_requests")
    op.drop_table("api_keys")
