"""The database handle's connections: lookups run outside transactions on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from fidelite.store import Database


def test_lookup_reads_committed_rows_and_leaves_the_pool_transactional(db: Database) -> None:
    with db.write() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t_lookup (k INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t_lookup VALUES (1), (2)"))
    with db.lookup() as conn:
        assert conn.execute(text("SELECT k FROM t_lookup ORDER BY k")).scalars().all() == [1, 2]
        if db.is_postgres:  # no transaction block: each statement is its own
            in_block = conn.execute(text("SELECT now() <> statement_timestamp()")).scalar()
            assert in_block is False
    if db.is_postgres:  # the connection went back to the pool as it came: snapshot reads
        with db.read() as conn:
            level = conn.execute(text("SELECT current_setting('transaction_isolation')"))
            assert level.scalar() == "repeatable read"
    with db.write() as conn:
        conn.execute(text("DROP TABLE t_lookup"))
