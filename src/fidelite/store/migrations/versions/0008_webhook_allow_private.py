"""webhooks: a subscription keeps the permission to reach private destinations

``webhook_subscriptions.allow_private`` records that the subscription was added with
``--allow-private`` (a development receiver on loopback or a private network), so that
the delivery worker honours that choice without being given the flag again. Existing
subscriptions get false: their delivery is checked as before.

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
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(
            sa.Column("allow_private", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("allow_private")
