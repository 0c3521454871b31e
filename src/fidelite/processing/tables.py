"""Tables of event processing (created by migration ``0002_processing``).

They share the store's metadata (and naming convention) so one Alembic history covers
the whole database. Invariants backed by constraints: an event is recorded once per
program (primary key); points and counters are never negative; a coupon code is
unique per program; a redemption's spend transaction is unique; a purchase's coupon
use is rolled back at most once (``coupon_rollbacks``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    UniqueConstraint,
)

from fidelite.store.tables import Base, BigId, UTCDateTime

metadata = Base.metadata
Money = Numeric(18, 4)
# Points as the ledger counts them (up to 10^15): 64-bit. SQLite's INTEGER already is.
Points = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "processed_events",
    metadata,
    Column("program_id", String(64), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("member_ref", String(200), nullable=False),
    Column("type", String(64), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("amount", Money, nullable=True),
    Column("refunded_amount", Money, nullable=False, server_default="0"),
    Column("coupon", String(64), nullable=True),
    Column("coupon_accepted", Integer, nullable=True),
    Column("refund_of", String(200), nullable=True),
    Column("trace", JSON, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    CheckConstraint("refunded_amount >= 0", name="refunded_not_negative"),
    Index("ix_processed_events_member", "program_id", "member_ref"),
)

earnings = Table(
    "event_earnings",
    metadata,
    Column("program_id", String(64), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("currency", String(32), primary_key=True),
    Column("transaction_id", BigInteger, nullable=False),
    Column("points", Points, nullable=False),
    Column("reversed", Points, nullable=False, server_default="0"),
    CheckConstraint("points > 0 AND reversed >= 0 AND reversed <= points", name="points_range"),
)

rule_usage = Table(
    "rule_usage",
    metadata,
    Column("program_id", String(64), primary_key=True),
    Column("member_ref", String(200), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("points", Points, nullable=False),
    CheckConstraint("points >= 0", name="points_not_negative"),
)

rule_budgets = Table(
    "rule_budgets",
    metadata,
    Column("program_id", String(64), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("used", BigInteger, nullable=False),
    CheckConstraint("used >= 0", name="used_not_negative"),
)

member_states = Table(
    "member_states",
    metadata,
    Column("program_id", String(64), primary_key=True),
    Column("member_ref", String(200), primary_key=True),
    Column("tier", String(64), nullable=True),
    Column("tier_since", UTCDateTime(), nullable=True),
    Column("review_at", UTCDateTime(), nullable=True),
    Column("grace_until", UTCDateTime(), nullable=True),
    Column("assigned_until", UTCDateTime(), nullable=True),
    Column("segments", JSON, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("purchases", Integer, nullable=False, server_default="0"),
    Column("joined_at", UTCDateTime(), nullable=True),
    Column("birth_date", Date, nullable=True),
    CheckConstraint("purchases >= 0", name="purchases_not_negative"),
)

tier_changes = Table(
    "tier_changes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", String(64), nullable=False, index=True),
    Column("member_ref", String(200), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("from_tier", String(64), nullable=False),
    Column("to_tier", String(64), nullable=False),
    Column("value", Money, nullable=False),
    Column("reason", String(300), nullable=False),
    Column("event_id", String(200), nullable=True),
    # A manual assignment's end (kind ``assigned`` only): a refund plays the member's
    # history again from the assignment, which may have ended early (an upgrade) since.
    Column("assigned_until", UTCDateTime(), nullable=True),
    Index("ix_tier_changes_member", "program_id", "member_ref"),
)

coupons = Table(
    "coupons",
    metadata,
    Column("program_id", String(64), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("campaign", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("member_ref", String(200), nullable=True),
    Column("used_event_id", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("status IN ('issued', 'used')", name="status_known"),
)

coupon_rollbacks = Table(
    "coupon_rollbacks",
    metadata,
    Column("program_id", String(64), primary_key=True),
    Column("purchase_event_id", String(200), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("refund_event_id", String(200), nullable=False),
    Column("rolled_back_at", UTCDateTime(), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Index("ix_coupon_rollbacks_code", "program_id", "code"),
)
"""A single-use code given back by the full refund of the purchase that used it (the
code is ``issued`` again): one row per purchase (primary key), never updated. The use
stays on the purchase's ``processed_events`` row (``coupon``, ``coupon_accepted``)."""

redemptions = Table(
    "redemptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", String(64), nullable=False),
    Column("member_ref", String(200), nullable=False),
    Column("reward_id", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("points", Points, nullable=False),
    Column("transaction_id", BigInteger, nullable=False, unique=True),
    Column("code", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("redeemed_at", UTCDateTime(), nullable=False),
    Column("cancel_transaction_id", BigInteger, nullable=True),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("used_store", String(200), nullable=True),
    Column("used_key", String(200), nullable=True),
    Column("used_by", String(200), nullable=True),
    CheckConstraint("status IN ('active', 'cancelled')", name="status_known"),
    UniqueConstraint("program_id", "key", name="uq_redemptions_program_key"),
    Index("ix_redemptions_code", "program_id", "code"),
    Index("ix_redemptions_member", "program_id", "member_ref"),
)
"""A reward redeemed. ``status`` is ``active`` or ``cancelled`` (points returned, code
void); an active one taken in store has ``used_at`` (and ``used_store`` when the till
said which, ``used_key`` the idempotency key of the use, ``used_by`` who recorded it,
e.g. ``api-key:<id>``): it still counts against the reward's stock and the member's
limit, and can no longer be cancelled."""
