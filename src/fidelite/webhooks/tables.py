"""Tables of webhooks and data protection (created by migration ``0004_webhooks``;
``webhook_subscriptions.allow_private`` by ``0008``).

They share the store's metadata (and naming convention) like the processing tables.
Invariants backed by constraints: a delivery exists once per subscription and outbox
item (unique pair); its state is one of ``pending``, ``failed`` (retry scheduled),
``delivered``, ``dead``; attempts are never negative; an outbox item's ``dedup_key``
(for events that must be announced once, e.g. ``points.expiring`` per lot) is unique
per program; a member is erased at most once (unique per program and member; the
same reference may be enrolled again and erased again, so its digest repeats).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from fidelite.store.tables import Base, BigId, UTCDateTime

metadata = Base.metadata

subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", String(64), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("secret", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("description", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("allow_private", Boolean, nullable=False, server_default=false()),
    Index("ix_webhook_subscriptions_program", "program_id", "active"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("member_ref", String(200), nullable=True),
    Column("dedup_key", String(200), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("dispatched", Boolean, nullable=False),
    UniqueConstraint("program_id", "dedup_key", name="uq_outbox_program_dedup"),
    Index("ix_outbox_member", "program_id", "member_ref"),
    Index("ix_outbox_dispatched", "dispatched", "id"),
)

deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subscription_id", BigInteger, ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("outbox_id", BigInteger, ForeignKey("outbox.id"), nullable=False),
    Column("program_id", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("lease_token", String(64), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("last_attempt_at", UTCDateTime(), nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("state IN ('pending','failed','delivered','dead')", name="state_known"),
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    UniqueConstraint("subscription_id", "outbox_id", name="uq_webhook_deliveries_pair"),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
)

attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("status", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("response", Text, nullable=True),
    Index("ix_webhook_attempts_delivery", "delivery_id", "number"),
)

erasures = Table(
    "member_erasures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("program_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("ref_digest", String(64), nullable=False),
    Column("tombstone", String(200), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("erased_at", UTCDateTime(), nullable=False),
    UniqueConstraint("program_id", "member_id", name="uq_member_erasures_member"),
    Index("ix_member_erasures_digest", "program_id", "ref_digest"),
)
