"""Alembic environment: runs migrations on the engine handed over by fidelite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from fidelite.store.tables import Base

config = context.config
engine: Engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
