"""processing: coupon rollbacks on full refunds; the end of each manual tier assignment

``coupon_rollbacks`` records a single-use code given back by the full refund of the
purchase that used it. ``tier_changes.assigned_until`` keeps the end of a manual
assignment on its timeline entry, so a refund can play the member's history again from
it even after it ended; an index on each member's timeline serves that read (and the
timeline's).

Existing assignments get their end only where the store knows it (see
:func:`_backfill_assignment_ends`); elsewhere it stays NULL: unknown.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import fidelite.store.tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_rollbacks",
        sa.Column("program_id", sa.String(length=64), nullable=False),
        sa.Column("purchase_event_id", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("refund_event_id", sa.String(length=200), nullable=False),
        sa.Column(
            "rolled_back_at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("recorded_at", fidelite.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "purchase_event_id", name=op.f("pk_coupon_rollbacks")
        ),
    )
    op.create_index(
        "ix_coupon_rollbacks_code", "coupon_rollbacks", ["program_id", "code"], unique=False
    )
    with op.batch_alter_table("tier_changes") as batch:
        batch.add_column(
            sa.Column(
                "assigned_until", fidelite.store.tables.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.create_index(
        "ix_tier_changes_member", "tier_changes", ["program_id", "member_ref"], unique=False
    )
    _backfill_assignment_ends()


def _backfill_assignment_ends() -> None:
    """Each ``assigned`` entry gets the end the store knows, from the member's next
    timeline entry in time order (``at``, then ``id``: ids need not follow time):

    - an ``assignment_expired``: the assignment ran to its end, the entry's ``at``;
    - an ``assigned``: it was replaced there, and held until then: that entry's ``at``
      (a refund dated after it plays the history again from the later one, one dated
      before it holds this one until then, as it did);
    - none (it is the member's latest entry): the member's current ``assigned_until``;
    - anything else (an upgrade replaced it): NULL. The end the operator set was not
      stored before 0007 and the upgrade's date is not it: a refund that undoes the
      upgrade must not end the assignment there, so it plays the history from the
      base level instead.

    Timestamps compare alike on both stores (naive UTC text on SQLite, ``timestamptz``
    on PostgreSQL)."""
    following = """
        FROM tier_changes n
        WHERE n.program_id = tier_changes.program_id
          AND n.member_ref = tier_changes.member_ref
          AND (n.at > tier_changes.at OR (n.at = tier_changes.at AND n.id > tier_changes.id))
    """
    op.execute(
        f"""
        UPDATE tier_changes SET assigned_until = CASE
            WHEN EXISTS (SELECT 1 {following})
            THEN (SELECT CASE WHEN n.kind IN ('assignment_expired', 'assigned') THEN n.at END
                  {following}
                  ORDER BY n.at, n.id LIMIT 1)
            ELSE (SELECT m.assigned_until FROM member_states m
                  WHERE m.program_id = tier_changes.program_id
                    AND m.member_ref = tier_changes.member_ref)
        END
        WHERE kind = 'assigned'
        """
    )


def downgrade() -> None:
    op.drop_index("ix_tier_changes_member", table_name="tier_changes")
    with op.batch_alter_table("tier_changes") as batch:
        batch.drop_column("assigned_until")
    op.drop_index("ix_coupon_rollbacks_code", table_name="coupon_rollbacks")
    op.drop_table("coupon_rollbacks")
