"""Every row lock and conditional update of the ledger lives here.

Concurrency model (DESIGN.md invariant 7, "no check-then-act"):

* **SQLite**: writers open their transaction with ``BEGIN IMMEDIATE`` (see
  :mod:`fidelite.store.database`), so one writer at a time; the lock functions below
  are no-ops there.
* **PostgreSQL**: each operation touches one member, and starts by locking that
  member's row (``SELECT ... FOR UPDATE``). Everything read afterwards (balances, lots,
  the idempotency key) reflects every earlier committed operation on the member, and
  no other writer can interleave. One lock per operation means no lock-order deadlocks.
* **PostgreSQL, several members at once** (a batch of events, an import chunk): the
  enrolled members' row locks in id order, then one advisory lock per member
  *reference* the batch names that no member holds yet (:func:`lock_refs`, in one
  sorted order), then the members' rows again (a member enrolled meanwhile). A reference not
  enrolled yet has no row to lock: without the reference lock two batches naming the
  same new members would both enrol them (one collides with the other's row, or each
  waits for a row the other enrolled first: a deadlock). With it, the second batch
  waits for the first to commit, then reads the members the first enrolled. Lock
  order everywhere: member rows, then references, then shared locks
  (:func:`lock_shared`).
* Either way, balance and lot updates are *conditional* (``WHERE balance + :d >= 0``,
  ``WHERE remaining >= :p``) and a CHECK constraint stands behind them: a bug that
  slips past the lock still cannot make a balance negative.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

if TYPE_CHECKING:
    from fidelite.store.script import Script


class ConcurrentUpdateError(RuntimeError):
    """A conditional update matched no row: the state changed under a held lock (a bug)."""


def lock_member(conn: Connection, member_id: int) -> None:
    """Serialise writers on one member (PostgreSQL row lock; SQLite already serial)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT id FROM members WHERE id = :m FOR UPDATE"), {"m": member_id})


def lock_members(conn: Connection, member_ids: list[int]) -> None:
    """Lock many members at once, in id order (two batch writers cannot deadlock)."""
    if conn.dialect.name != "postgresql" or not member_ids:
        return
    ordered = sorted(member_ids)
    for start in range(0, len(ordered), 1000):
        part = ordered[start : start + 1000]
        conn.execute(
            text("SELECT id FROM members WHERE id IN :ids ORDER BY id FOR UPDATE").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": part},
        )


# The references no member holds yet, locked in the order of their keys (the CTE keeps
# that order, whatever the plan of the filter).
_REF_LOCKS = text(
    "WITH new AS MATERIALIZED (SELECT v.k FROM unnest(CAST(:keys AS bigint[]), "
    "CAST(:refs AS text[])) AS v(k, ref) WHERE NOT EXISTS (SELECT 1 FROM members m "
    "WHERE m.program_id = :pid AND m.ref = v.ref) ORDER BY v.k) "
    "SELECT count(pg_advisory_xact_lock(k)) FROM new"
)


def lock_refs(conn: Connection | Script, program_id: str, refs: Iterable[str]) -> None:
    """Serialise writers enrolling the same new members (PostgreSQL; SQLite is serial):
    one transaction-level advisory lock per reference of ``refs`` that no member holds
    yet, all in one statement, in the sorted order of their keys, so two writers naming
    some of the same references in any order cannot deadlock. Taken after the enrolled
    members' row locks, before any shared lock: a batch that enrols new members then
    waits for another batch enrolling any of them to commit, and reads them enrolled
    (and locks their rows), instead of enrolling them a second time. A reference
    enrolled already needs no such lock (its row lock serialises its writers), so a
    batch of known members takes none. Taking a lock already held is immediate. Given
    a :class:`~fidelite.store.script.Script`, the locks are taken when it runs."""
    if conn.dialect.name != "postgresql":
        return
    keyed = sorted({(shared_lock_key(f"member:{program_id}:{ref}"), ref) for ref in refs})
    if keyed:
        conn.execute(_REF_LOCKS, {"keys": [k for k, _ in keyed], "refs": [r for _, r in keyed],
                                  "pid": program_id})  # fmt: skip


def lock_member_refs(conn: Connection, program_id: str, refs: set[str]) -> None:
    """Lock the enrolled members among ``refs`` (a program's member references) at once,
    in id order, then the references themselves (:func:`lock_refs`: new members too),
    then the members enrolled meanwhile, before anything else of a transaction that
    applies several units of work in turn (a bulk import chunk holding refunds between
    its purchases). Without it, the shared locks the first unit takes (a campaign
    budget, coupons) would be held while a later unit locks its member, which another
    writer may hold while it waits for those shared locks: a deadlock. PostgreSQL only
    (SQLite is serial)."""
    if conn.dialect.name != "postgresql" or not refs:
        return
    _lock_enrolled(conn, program_id, refs)
    lock_refs(conn, program_id, refs)
    _lock_enrolled(conn, program_id, refs)  # enrolled by a writer that has committed since


def _lock_enrolled(conn: Connection, program_id: str, refs: set[str]) -> None:
    ordered = sorted(refs)
    for start in range(0, len(ordered), 1000):
        conn.execute(
            text(
                "SELECT id FROM members WHERE program_id = :pid AND ref IN :refs "
                "ORDER BY id FOR UPDATE"
            ).bindparams(bindparam("refs", expanding=True)),
            {"pid": program_id, "refs": ordered[start : start + 1000]},
        )


def add_to_balance(conn: Connection, account_id: int, delta: int) -> int:
    """Add ``delta`` to a member-side account's cached balance; return the new balance.

    The update only applies if the sign rule still holds (``available``/``pending``
    stay >= 0, ``debt`` stays <= 0).
    """
    row = conn.execute(
        text(
            "UPDATE accounts SET balance = balance + :d WHERE id = :id AND ("
            "(kind = 'debt' AND balance + :d <= 0) OR (kind <> 'debt' AND balance + :d >= 0)"
            ") RETURNING balance"
        ),
        {"d": delta, "id": account_id},
    ).first()
    if row is None:
        raise ConcurrentUpdateError(f"account {account_id}: balance change {delta} refused")
    return int(row[0])


def draw_lot(conn: Connection, lot_id: int, points: int, closed_state: str) -> None:
    """Take ``points`` out of a lot; the lot closes (``closed_state``) when it reaches 0."""
    result = conn.execute(
        text(
            "UPDATE lots SET remaining = remaining - :p, "
            "state = CASE WHEN remaining - :p = 0 THEN :closed ELSE state END "
            "WHERE id = :id AND remaining >= :p AND state IN ('available', 'pending')"
        ),
        {"p": points, "id": lot_id, "closed": closed_state},
    )
    if result.rowcount != 1:
        raise ConcurrentUpdateError(f"lot {lot_id}: drawing {points} refused")


def refill_lot(conn: Connection, lot_id: int, points: int) -> None:
    """Put ``points`` back into a lot (reversal of a spend/expiry); it becomes available."""
    result = conn.execute(
        text(
            "UPDATE lots SET remaining = remaining + :p, state = 'available' "
            "WHERE id = :id AND remaining + :p <= points AND state <> 'pending'"
        ),
        {"p": points, "id": lot_id},
    )
    if result.rowcount != 1:
        raise ConcurrentUpdateError(f"lot {lot_id}: refilling {points} refused")


def release_lot(conn: Connection, lot_id: int) -> None:
    """Turn a pending lot available."""
    result = conn.execute(
        text("UPDATE lots SET state = 'available' WHERE id = :id AND state = 'pending'"),
        {"id": lot_id},
    )
    if result.rowcount != 1:
        raise ConcurrentUpdateError(f"lot {lot_id}: release refused")


def count_reversal(conn: Connection, transaction_id: int, points: int) -> bool:
    """Record ``points`` more reversed on a transaction, unless that exceeds its size."""
    result = conn.execute(
        text(
            "UPDATE ledger_transactions SET reversed_points = reversed_points + :p "
            "WHERE id = :id AND reversed_points + :p <= points"
        ),
        {"p": points, "id": transaction_id},
    )
    return result.rowcount == 1


def insert_ignoring_duplicates(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING``: concurrent creators of the same row both win."""
    if not rows:
        return
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect_insert(table).on_conflict_do_nothing(), rows)


def next_id(conn: Connection, table: str) -> int:
    """Allocate the next primary key of ``table`` before inserting.

    Receipts store the ids of the rows they create, and rows are append-only, so ids
    are allocated first. PostgreSQL draws from the column's sequence; on SQLite the
    writer holds the database lock (``BEGIN IMMEDIATE``), so ``MAX(id) + 1`` is safe.
    """
    if conn.dialect.name == "postgresql":
        value = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id'))"), {"t": table}
        ).scalar_one()
    else:
        value = conn.execute(text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")).scalar_one()
    return int(value)


def next_ids(conn: Connection, table: str, count: int) -> list[int]:
    """Allocate ``count`` primary keys of ``table`` at once (see :func:`next_id`).

    PostgreSQL draws them from the sequence in one query (ascending; other writers may
    take numbers in between); on SQLite the writer holds the database lock, so the
    next ``count`` numbers after ``MAX(id)`` are free.
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table, "n": count},
        ).all()
        return sorted(int(r[0]) for r in rows)
    first = int(conn.execute(text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")).scalar_one())
    return list(range(first, first + count))


def next_ids_for(conn: Connection, counts: dict[str, int]) -> dict[str, list[int]]:
    """:func:`next_ids` for several tables; one query on PostgreSQL (a round trip each
    counts for a busy server's small batches)."""
    wanted = {table: count for table, count in counts.items() if count > 0}
    found: dict[str, list[int]] = {table: [] for table in counts}
    if conn.dialect.name != "postgresql" or len(wanted) < 2:
        return {table: next_ids(conn, table, count) for table, count in counts.items()}
    parts: list[str] = []
    params: dict[str, object] = {}
    for i, (table, count) in enumerate(wanted.items()):
        parts.append(f"SELECT {i} AS t, nextval(pg_get_serial_sequence(:t{i}, 'id')) AS id "
                     f"FROM generate_series(1, :n{i})")  # fmt: skip
        params |= {f"t{i}": table, f"n{i}": count}
    names = list(wanted)
    for t, new_id in conn.execute(text(" UNION ALL ".join(parts)), params):
        found[names[int(t)]].append(int(new_id))
    return {table: sorted(ids) for table, ids in found.items()}


def lock_shared(conn: Connection | Script, *names: str) -> None:
    """Serialise writers on program-wide counters (a campaign budget, a reward's stock).

    Member locks alone let two members' events interleave, so both could read the same
    budget or stock count and together overrun it. PostgreSQL takes one transaction-level
    advisory lock per name, always in sorted order and always after the member lock, so
    lock order is fixed and cannot deadlock; SQLite writers are serial already. Given a
    :class:`~fidelite.store.script.Script`, the locks are taken when it runs.
    """
    if conn.dialect.name != "postgresql":
        return
    for name in sorted(set(names)):
        conn.execute(_ADVISORY_LOCK, {"k": shared_lock_key(name)})


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def shared_lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
