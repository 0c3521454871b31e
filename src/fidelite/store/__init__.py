"""Persistence: SQLAlchemy 2 tables, the database handle and Alembic migrations.

The store owns *how* data is kept (SQLite by default, PostgreSQL in production, one set
of migrations for both) and the locking primitives (``fidelite.store.locking``). It
knows nothing of loyalty rules: the ledger decides, the store keeps.
"""

from fidelite.store.database import Database, resolve_url

__all__ = ["Database", "resolve_url"]
