"""webhooks: subscriptions, outbox, deliveries and their attempt log; member erasures

Also narrows the ledger's append-only rule for erasure: a ledger transaction's stored
receipt (``result``) and its ``idempotency_key`` may be rewritten (they can hold the
member reference, which erasure replaces by a tombstone); every column that carries
money or identity of the entry (points, kind, member, currency, times, reversals)
stays immutable, and postings stay fully append-only.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fidelite.store.tables

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = fidelite.store.tables.UTCDateTime
ERASABLE = ("reversed_points", "result", "idempotency_key")


def _ledger_update_trigger(mutable: tuple[str, ...]) -> None:
    """(Re)create the rule refusing updates of ledger transactions except ``mutable``."""
    if op.get_bind().dialect.name == "postgresql":
        minus = " ".join(f"- '{c}'" for c in mutable)
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION fidelite_append_only() RETURNS trigger AS $$
            BEGIN
              IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'ledger_transactions'
                 AND (to_jsonb(NEW) {minus}) = (to_jsonb(OLD) {minus})
              THEN
                RETURN NEW;
              END IF;
              RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        return
    fixed = ", ".join(
        c.name
        for c in fidelite.store.tables.LedgerTransaction.__table__.columns
        if c.name not in mutable
    )
    op.execute("DROP TRIGGER IF EXISTS ledger_transactions_no_update")
    op.execute(
        f"CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE OF {fixed} "
        "ON ledger_transactions BEGIN "
        "SELECT RAISE(ABORT, 'ledger_transactions are append-only'); END"
    )


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index(
        "ix_webhook_subscriptions_program", "webhook_subscriptions", ["program_id", "active"]
    )
    op.create_table(
        "outbox",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("member_ref", sa.String(length=200), nullable=True),
        sa.Column("dedup_key", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("program_id", "dedup_key", name="uq_outbox_program_dedup"),
    )
    op.create_index("ix_outbox_member", "outbox", ["program_id", "member_ref"])
    op.create_index("ix_outbox_dispatched", "outbox", ["dispatched", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", Time(timezone=True), nullable=True),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", Time(timezone=True), nullable=True),
        sa.Column("last_attempt_at", Time(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("delivered_at", Time(timezone=True), nullable=True),
        sa.Column("created_at", Time(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending','failed','delivered','dead')",
            name=op.f("ck_webhook_deliveries_state_known"),
        ),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_webhook_deliveries_attempts_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_webhook_deliveries_outbox_id_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("subscription_id", "outbox_id", name="uq_webhook_deliveries_pair"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", Time(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "number"])
    op.create_table(
        "member_erasures",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("ref_digest", sa.String(length=64), nullable=False),
        sa.Column("tombstone", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("erased_at", Time(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_erasures")),
        sa.UniqueConstraint("program_id", "member_id", name="uq_member_erasures_member"),
    )
    op.create_index("ix_member_erasures_digest", "member_erasures", ["program_id", "ref_digest"])
    _ledger_update_trigger(ERASABLE)


def downgrade() -> None:
    _ledger_update_trigger(("reversed_points",))
    op.drop_index("ix_member_erasures_digest", table_name="member_erasures")
    op.drop_table("member_erasures")
    op.drop_index("ix_webhook_attempts_delivery", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_outbox_dispatched", table_name="outbox")
    op.drop_index("ix_outbox_member", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_webhook_subscriptions_program", table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
