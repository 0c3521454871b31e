"""processing: processed events, earnings, rule usage and budgets, member state, tiers, coupons, redemptions

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fidelite.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("member_ref", sa.String(length=200), nullable=True),
        sa.Column("used_event_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('issued', 'used')", name=op.f("ck_coupons_status_known")),
        sa.PrimaryKeyConstraint("program_id", "code", name=op.f("pk_coupons")),
    )
    op.create_table(
        "event_earnings",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reversed", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "points > 0 AND reversed >= 0 AND reversed <= points",
            name=op.f("ck_event_earnings_points_range"),
        ),
        sa.PrimaryKeyConstraint(
            "program_id", "event_id", "currency", name=op.f("pk_event_earnings")
        ),
    )
    op.create_table(
        "member_states",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("member_ref", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=True),
        sa.Column("tier_since", fidelite.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("grace_until", fidelite.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "assigned_until", fidelite.store.tables.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("purchases", sa.Integer(), server_default="0", nullable=False),
        sa.Column("joined_at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.CheckConstraint("purchases >= 0", name=op.f("ck_member_states_purchases_not_negative")),
        sa.PrimaryKeyConstraint("program_id", "member_ref", name=op.f("pk_member_states")),
    )
    op.create_table(
        "processed_events",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("member_ref", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column(
            "refunded_amount", sa.Numeric(precision=18, scale=4), server_default="0", nullable=False
        ),
        sa.Column("coupon", sa.String(length=64), nullable=True),
        sa.Column("coupon_accepted", sa.Integer(), nullable=True),
        sa.Column("refund_of", sa.String(length=200), nullable=True),
        sa.Column("trace", sa.JSON(), nullable=False),
        sa.Column("recorded_at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "refunded_amount >= 0", name=op.f("ck_processed_events_refunded_not_negative")
        ),
        sa.PrimaryKeyConstraint("program_id", "event_id", name=op.f("pk_processed_events")),
    )
    op.create_index("ix_processed_events_member", "processed_events", ["program_id", "member_ref"])
    op.create_table(
        "redemptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("member_ref", sa.String(length=200), nullable=False),
        sa.Column("reward_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("redeemed_at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancel_transaction_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'cancelled')", name=op.f("ck_redemptions_status_known")
        ),
        sa.UniqueConstraint("program_id", "key", name="uq_redemptions_program_key"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_redemptions_transaction_id")),
    )
    op.create_table(
        "rule_budgets",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("used >= 0", name=op.f("ck_rule_budgets_used_not_negative")),
        sa.PrimaryKeyConstraint("program_id", "rule_id", name=op.f("pk_rule_budgets")),
    )
    op.create_table(
        "rule_usage",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("member_ref", sa.String(length=200), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.CheckConstraint("points >= 0", name=op.f("ck_rule_usage_points_not_negative")),
        sa.PrimaryKeyConstraint(
            "program_id", "member_ref", "rule_id", "period", name=op.f("pk_rule_usage")
        ),
    )
    op.create_table(
        "tier_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("member_ref", sa.String(length=200), nullable=False),
        sa.Column("at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_tier", sa.String(length=64), nullable=False),
        sa.Column("to_tier", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_changes")),
    )
    op.create_index(
        op.f("ix_tier_changes_program_id"), "tier_changes", ["program_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tier_changes_program_id"), table_name="tier_changes")
    op.drop_table("tier_changes")
    op.drop_table("rule_usage")
    op.drop_table("rule_budgets")
    op.drop_table("redemptions")
    op.drop_index("ix_processed_events_member", table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("member_states")
    op.drop_table("event_earnings")
    op.drop_table("coupons")
