"""webhooks: a subscription keeps the permission to reach private destinations

``webhook_subscriptions.allow_private`` records that the subscription was added with
``--allow-private`` (a development receiver on loopback or a private network), so that
the delivery worker honours that choice without being given the flag again. Existing
subscriptions get false: their delivery is checked as before.

The column is added in place (``ALTER TABLE ... ADD COLUMN``) on both databases: SQLite
takes a NOT NULL column with a constant default. A batch operation would rebuild the
table on SQLite (copy, ``DROP TABLE``, rename), and with foreign keys on the drop is
refused as soon as a delivery row references a subscription.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "webhook_subscriptions",
        sa.Column("allow_private", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    # In place too (SQLite 3.35 and later drop a column without a rebuild).
    op.drop_column("webhook_subscriptions", "allow_private")
