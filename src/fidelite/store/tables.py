"""Table definitions of the program database.

Invariants the database itself enforces (the last line of defence, see DESIGN.md):

* member-side balances never go negative (``available``/``pending`` >= 0) and a debt
  account never goes positive (it holds what a member owes as a negative number);
* program-side accounts keep no cached balance (their balance is the sum of their
  postings), so no single hot row serialises every earn of a program;
* a posting's amount is never zero, lots stay within ``0 <= remaining <= amount``,
  a transaction's reversed amount never exceeds what it moved;
* an idempotency key is unique per program; a member reference is unique per program;
  a member has exactly one account per currency and kind;
* postings and ledger transactions are append-only: triggers (created by the
  migration) refuse UPDATE and DELETE on ``postings`` and any UPDATE of a ledger
  transaction other than its ``reversed_points`` counter (and, since migration 0004,
  the pseudonymisation of its stored ``result`` and ``idempotency_key`` on erasure).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite has no time zone type, so values are stored as naive UTC there; PostgreSQL
    stores ``timestamptz``. Naive datetimes are refused: a business time without a zone
    is ambiguous and would shift expiry dates silently.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} (a time zone is required)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention used by migrations."""

    metadata = MetaData(naming_convention=NAMING)


class Program(Base):
    """A loyalty program: the tenant every other row belongs to."""

    __tablename__ = "programs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Currency(Base):
    """A point currency of a program (e.g. ``points``, ``miles``)."""

    __tablename__ = "currencies"

    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)


class Member(Base):
    """A member of a program, known to tills and shops by ``ref`` (card number)."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("program_id", "ref", name="uq_members_program_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    ref: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Account(Base):
    """A ledger account: member-side (cached balance) or program-side (no cache)."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint(
            "program_id", "currency", "kind", "member_id", name="uq_accounts_owner_kind"
        ),
        CheckConstraint(
            "kind IN ('available','pending','debt','issued','redeemed','expired',"
            "'adjustment','written_off')",
            name="kind_known",
        ),
        CheckConstraint(
            "(member_id IS NULL) = (kind NOT IN ('available','pending','debt'))",
            name="member_side_has_member",
        ),
        CheckConstraint("(member_id IS NULL) = (balance IS NULL)", name="only_member_side_cached"),
        CheckConstraint(
            "balance IS NULL OR (kind = 'debt' AND balance <= 0)"
            " OR (kind <> 'debt' AND balance >= 0)",
            name="balance_sign",
        ),
        Index("ix_accounts_member", "member_id"),
        # NULL member ids are distinct in a UNIQUE constraint: a partial unique index
        # keeps program-side accounts single too (SQLite and PostgreSQL both have them).
        Index(
            "uq_accounts_program_side",
            "program_id",
            "currency",
            "kind",
            unique=True,
            sqlite_where=text("member_id IS NULL"),
            postgresql_where=text("member_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    balance: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class LedgerTransaction(Base):
    """One atomic ledger operation (earn, spend, ...) and the result returned for it.

    ``request_hash`` is the fingerprint of the request that created it: a retry with the
    same idempotency key and the same hash returns ``result``; a different hash is refused.
    """

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        UniqueConstraint("program_id", "idempotency_key", name="uq_ledger_transactions_key"),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint(
            "reversed_points >= 0 AND reversed_points <= points", name="reversed_within"
        ),
        CheckConstraint(
            "kind IN ('earn','release','spend','expire','reverse','adjust')", name="kind_known"
        ),
        Index("ix_ledger_transactions_member", "member_id", "id"),
        Index("ix_ledger_transactions_reverses", "reverses_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    currency: Mapped[str] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(BigInteger)
    reversed_points: Mapped[int] = mapped_column(BigInteger, default=0)
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), nullable=True
    )
    reason: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    result: Mapped[dict[str, Any]] = mapped_column(JSON)


class Lot(Base):
    """Points earned together, with their dates; spending and expiry draw lots down."""

    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_within"),
        CheckConstraint(
            "state IN ('pending','available','spent','expired','reversed')", name="state_known"
        ),
        CheckConstraint(
            "(state IN ('pending','available')) = (remaining > 0)", name="open_iff_remaining"
        ),
        Index("ix_lots_open", "member_id", "currency", "state", "expires_at"),
        Index("ix_lots_due", "program_id", "state", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    currency: Mapped[str] = mapped_column(String(32))
    earn_transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pending_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Posting(Base):
    """One side of a double entry: ``points`` (signed) on one account, maybe one lot.

    Append-only. Every posting on a member's available or pending account names the lot
    it moves, so a lot's remainder always equals the sum of its member-side postings.
    """

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("points <> 0", name="points_nonzero"),
        Index("ix_postings_transaction", "transaction_id"),
        Index("ix_postings_account", "account_id"),
        Index("ix_postings_lot", "lot_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"), nullable=True)
    points: Mapped[int] = mapped_column(BigInteger)


class IdempotencyRecord(Base):
    """Idempotency for operations that are not ledger transactions (e.g. member creation)."""

    __tablename__ = "idempotency_records"

    program_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


__all__ = [
    "Account",
    "Base",
    "Currency",
    "IdempotencyRecord",
    "LedgerTransaction",
    "Lot",
    "Member",
    "Posting",
    "Program",
]
