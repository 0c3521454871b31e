"""Transactions from a program database, in the shape :func:`load_transactions` reads.

A business that runs its program on fidelite measures loyalty from the same database
(SQLite file or PostgreSQL), without exporting a file first. The purchases and refunds
the program processed (table ``processed_events``) become transaction rows:

==============  ==========================================================
customer_id     the member reference
timestamp       when the event happened (UTC, with its offset, so the loader
                converts it to the business time zone like any file)
amount          the purchase amount; a refund's amount, negated
order_id        the purchase's event id; a refund carries its purchase's id
coupon_code     the coupon the purchase was made with (:func:`bought_with`): a
                single-use code the program accepted, or a shared code
refund          true for refund events
==============  ==========================================================

Invariant: only purchase and refund events with an amount are read (sign-ups, reviews
and custom events are not sales); the table is sorted by time, then event id, so the
same database always yields the same rows. A program the database does not hold is one
error naming the programs it holds (:func:`missing_program`), whichever command reads
it; a program it holds without any purchase is :class:`NoPurchases`, which
``fidelite report`` answers with the program's own sections only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, select

from fidelite.analytics.errors import InputError
from fidelite.engine.event import PURCHASE, REFUND
from fidelite.processing.tables import events
from fidelite.store import Database
from fidelite.store.tables import Program
from fidelite.store.urls import display_url

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),
        ("order_id", pa.string()),
        ("coupon_code", pa.string()),
        ("refund", pa.bool_()),
    ]
)


SQLITE_MAGIC = b"SQLite format 3\x00"


class NoPurchases(InputError):
    """The program is in the database but has no purchase or refund with an amount
    (members and points entered straight in the ledger, as ``fidelite demo`` does)."""


def is_program_source(text: str) -> bool:
    """True when ``text`` names a program database rather than a transactions file:
    a database URL (``sqlite:///fidelite.db``, ``postgresql+psycopg://...``, optionally
    ending in ``#PROGRAM``) or a path to a SQLite file."""
    if "://" in text:
        return True
    path = Path(text)
    if not path.is_file():
        path = Path(text.partition("#")[0])
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def read_program_source(text: str) -> pa.Table:
    """Transactions for ``URL[#PROGRAM]`` (or ``FILE.db[#PROGRAM]``).

    Without ``#PROGRAM`` the database must hold exactly one program; otherwise the error
    lists the programs to choose from.
    """
    return transactions_from_program(*program_source(text))


def program_source(text: str) -> tuple[str, str]:
    """``(database URL, program id)`` named by ``URL[#PROGRAM]`` or ``FILE.db[#PROGRAM]``."""
    target, _, program_id = text.partition("#")
    url = target if "://" in target else f"sqlite:///{Path(target).resolve()}"
    found = _programs(url)
    if not program_id:
        return url, _only_program(url, found)
    if program_id not in found:
        raise missing_program(program_id, found, url)
    return url, program_id


def program_ids(conn: Connection) -> list[str]:
    """Every program of the database, sorted (table ``programs``: every program has a
    row there, whether its members and points came through processed events or straight
    through the ledger, as with ``fidelite member add`` given a program id, not the
    program file, and ``fidelite demo``)."""
    return sorted(str(r[0]) for r in conn.execute(select(Program.id)).all())


LISTED_PROGRAMS = 10
"""How many program ids an error lists: a database may hold thousands, each up to 64
characters, and one line must stay readable."""


def listed(ids: Sequence[str]) -> str:
    """``ids`` joined with commas, the first :data:`LISTED_PROGRAMS` of them and how many
    more there are."""
    shown = ", ".join(ids[:LISTED_PROGRAMS])
    more = len(ids) - LISTED_PROGRAMS
    return f"{shown} and {more:,} more" if more > 0 else shown


def missing_program(program_id: str, held: Sequence[str], url: str) -> InputError:
    """The error for a program the database does not hold (a mistyped ``#PROGRAM``),
    naming those it holds (the first ten, :func:`listed`)."""
    holds = f"it holds {listed(held)}" if held else "it holds none"
    return InputError(
        f"no program '{program_id}' in this database ({holds})", file=database_name(url)
    )


def _programs(url: str) -> list[str]:
    db = Database(url)
    try:
        with db.read() as conn:
            return program_ids(conn)
    finally:
        db.dispose()


def _only_program(url: str, found: list[str]) -> str:
    """The database's one program (``found``: its programs)."""
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError("the database holds no program", file=database_name(url))
    raise InputError(
        f"the database holds several programs ({listed(found)}); "
        "name one with #PROGRAM after the database",
        file=database_name(url),
    )


def transactions_from_program(url: str, program_id: str) -> pa.Table:
    """Read ``program_id``'s purchases and refunds from the database at ``url``.

    Raises :class:`NoPurchases` (naming the database) when the program has none, and
    :class:`InputError` naming the programs the database holds when it holds no
    ``program_id``.
    """
    db = Database(url)
    try:
        with db.read() as conn:
            rows = conn.execute(
                select(
                    events.c.member_ref,
                    events.c.occurred_at,
                    events.c.amount,
                    events.c.type,
                    events.c.event_id,
                    events.c.refund_of,
                    events.c.coupon,
                    events.c.coupon_accepted,
                )
                .where(events.c.program_id == program_id)
                .where(events.c.type.in_([PURCHASE, REFUND]))
                .where(events.c.amount.is_not(None))
                .order_by(events.c.occurred_at, events.c.event_id)
            ).all()
            held = program_ids(conn) if not rows else []
    finally:
        db.dispose()
    if not rows:
        if program_id not in held:
            raise missing_program(program_id, held, url)
        raise NoPurchases(f"program '{program_id}' has no purchases", file=database_name(url))
    return _to_arrow(rows)


def _to_arrow(rows: Sequence[Any]) -> pa.Table:
    columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
    for member, at, amount, kind, event_id, refund_of, coupon, accepted in rows:
        is_refund = kind == REFUND
        columns["customer_id"].append(member)
        columns["timestamp"].append(_utc(at))
        columns["amount"].append(-float(amount) if is_refund else float(amount))
        columns["order_id"].append(refund_of if is_refund and refund_of else event_id)
        columns["coupon_code"].append(bought_with(coupon, accepted))
        columns["refund"].append(is_refund)
    return pa.table(columns, schema=SCHEMA)


def bought_with(coupon: str | None, accepted: int | None) -> str | None:
    """The code a purchase counts as bought with, from its record (``coupon`` as read:
    upper-cased, spaces dropped; ``coupon_accepted``), else None.

    A single-use code counts when the program accepted (used) it; a later refund giving
    the code back does not undo the purchase made with it. A shared code (a flyer's
    ``HELLO30``, which a rule reads as ``event.coupon``) is never a campaign's, so it is
    recorded not accepted: it counts as the text recorded, when that holds no dash. A
    single-use code is always written with its dashes (``SPRING-7KQ2-M9XD-4HRT-B``), and
    read back with them when typed without, so a recorded code with a dash that was not
    accepted is a refused, unused or mistyped campaign code and does not count; a
    mistyped one recorded without its dashes is given, but it is no targeting
    ``code_prefix`` followed by a dash, so it counts only for a campaign without one.
    """
    if not coupon:
        return None
    if accepted:
        return coupon
    return coupon if "-" not in coupon else None


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"unexpected timestamp {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def program_source_name(url: str, program_id: str) -> str:
    """How outputs name a program's data: ``URL#PROGRAM``, the URL without a password
    (as ``fidelite metrics --input`` names a program database's transactions)."""
    return f"{database_name(url)}#{program_id}"


def database_name(url: str) -> str:
    """The database URL without a password, for error messages (see
    :func:`fidelite.store.urls.display_url`)."""
    return display_url(url)
