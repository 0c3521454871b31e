"""``fidelite demo``: a guided tour of the ledger on a fresh SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from fidelite.cli.common import upgrade_database
from fidelite.cli.options import TableJsonOption
from fidelite.cli.output import OutputFormat, console, fail, print_json
from fidelite.ledger import Ledger, Rejected, check_invariants

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DEMO_PROGRAM = "cafe"
DEMO_MEMBERS = {"ana", "ben"}
DEMO_KEYS = {"order-1", "promo-1", "order-2", "redeem-1", "redeem-3", "refund-2", "goodwill-1",
             "release:3"}  # fmt: skip
DEMO_KEY_PREFIXES = ("expire:points:2026-01-20T09:00:00+00:00:",)
"""The ledger transactions' idempotency keys the tour writes (its expiry job's key ends
with a digest)."""
DEMO_TABLES = {"alembic_version", "programs", "currencies", "members", "accounts",
               "ledger_transactions", "lots", "postings", "idempotency_records"}  # fmt: skip
"""The tables the tour writes to; in a demo's database every other table is empty."""


def _check_target(db_file: Path, force: bool, fmt: OutputFormat) -> None:
    """Refuse a ``--db-file`` the tour cannot create (a directory, a directory that does
    not exist) or must not replace: an existing file that is not a demo's database,
    unless ``force``. An empty file holds nothing to lose."""
    if db_file.is_dir():
        fail(f"{db_file} is a directory: give a file name for --db-file (e.g. "
             f"{db_file / 'fidelite-demo.db'})", code="invalid_file", fmt=fmt)  # fmt: skip
    parent = db_file.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        fail(f"cannot create {db_file}: {parent} {what}", code="invalid_file", fmt=fmt)
    if force or not db_file.exists() or db_file.stat().st_size == 0:
        return
    if not _is_demo(db_file):
        fail(f"{db_file} exists and is not a database made by `fidelite demo`: it is left "
             "as it is (choose another --db-file, or --force to replace it)", code="exists",
             fmt=fmt)  # fmt: skip


def _is_demo(db_file: Path) -> bool:
    """Whether ``db_file`` is a database an earlier tour made: program cafe alone, its
    members ana and ben, the tour's ledger transactions and nothing else. Read only;
    a file SQLite cannot read is not one."""
    try:
        conn = sqlite3.connect(f"{db_file.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"programs", "members", "ledger_transactions"} <= tables:
            return False
        for table in tables - DEMO_TABLES:
            if table.startswith("sqlite_"):
                continue
            if conn.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None:
                return False
        programs = {r[0] for r in conn.execute("SELECT id FROM programs")}
        members = {r[0] for r in conn.execute("SELECT ref FROM members")}
        keys = {r[0] for r in conn.execute("SELECT idempotency_key FROM ledger_transactions")}
        answers = {r[0] for r in conn.execute("SELECT key FROM idempotency_records")} \
            if "idempotency_records" in tables else set()  # fmt: skip
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return (
        programs == {DEMO_PROGRAM}
        and members <= DEMO_MEMBERS
        and all(k in DEMO_KEYS or k.startswith(DEMO_KEY_PREFIXES) for k in keys)
        and answers <= {f"member:{m}" for m in DEMO_MEMBERS}
    )


def demo(
    db_file: Path = typer.Option(
        Path("fidelite-demo.db"),
        "--db-file",
        help="SQLite file to create. An existing file is replaced only if an earlier demo "
        "made it (nothing else in it); any other file is refused unless --force.",
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace the --db-file even if it is not a demo's database."
    ),
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Run a café's first weeks through the points ledger and show every balance.

    Creates a fresh SQLite database, enrols two members and walks through earning,
    pending points, spending (soonest-expiring first), a refund that claws back points
    already spent, a goodwill credit, an idempotent retry, a refused double spend and
    the expiry job — then checks that the books balance.

    The --db-file is created fresh. An existing one is replaced only if it holds a
    demo's café and nothing else (an earlier `fidelite demo`, even explored with
    `ledger history`); a program database is refused (code exists, exit 1) and stays as
    it is, unless --force.

    Example: fidelite demo --db-file /tmp/cafe.db
    """
    _check_target(db_file, force, fmt)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    db = upgrade_database(f"sqlite:///{db_file}", fmt)
    ledger = Ledger(db)
    steps: list[dict[str, object]] = []

    def step(when: datetime, what: str, outcome: str) -> None:
        b = ledger.balance("cafe", "ana", "points", as_of=when)
        steps.append(
            {
                "date": when.date().isoformat(),
                "what": what,
                "outcome": outcome,
                "available": b.available,
                "pending": b.pending,
                "debt": b.debt,
            }
        )

    ledger.open_program("cafe", ["points"])
    ledger.create_member("cafe", "ana")
    ledger.create_member("cafe", "ben")
    year = START + 365 * DAY
    e1 = ledger.earn(
        "cafe",
        "ana",
        "points",
        120,
        key="order-1",
        at=START,
        expires_at=year,
        reason="purchase €12.00",
        source="order:1",
    )
    step(
        START,
        "Ana buys €12.00 of coffee: 10 points per euro",
        f"+{e1.points}, expires {year:%Y-%m-%d}",
    )
    soon = START + 15 * DAY
    ledger.earn(
        "cafe",
        "ana",
        "points",
        80,
        key="promo-1",
        at=START + DAY,
        expires_at=soon,
        reason="double-points week bonus",
    )
    step(START + DAY, "Bonus campaign, short-lived points", f"+80, expire {soon:%Y-%m-%d}")
    online = ledger.earn(
        "cafe",
        "ana",
        "points",
        300,
        key="order-2",
        at=START + 2 * DAY,
        pending_until=START + 16 * DAY,
        expires_at=year,
        reason="online order €30.00",
        source="order:2",
    )
    step(START + 2 * DAY, "Online order: points pending 14 days (return window)", "+300 pending")
    s = ledger.spend(
        "cafe", "ana", "points", 40, key="redeem-1", at=START + 3 * DAY, reason="reward: free cake"
    )
    moves = ", ".join(f"lot {m.lot_id}: {m.points}" for m in s.lot_moves)
    step(START + 3 * DAY, "Ana redeems a free cake (40)", f"soonest-expiring first ({moves})")
    retry = ledger.spend(
        "cafe", "ana", "points", 40, key="redeem-1", at=START + 3 * DAY, reason="reward: free cake"
    )
    step(
        START + 3 * DAY,
        "The till retries the same request",
        f"replayed={retry.replayed}, nothing posted twice",
    )
    try:
        ledger.spend("cafe", "ana", "points", 500, key="redeem-2", at=START + 4 * DAY)
    except Rejected as rejected:
        step(START + 4 * DAY, "Ana tries to spend 500", f"refused: {rejected.code.value}")
    report = ledger.expire("cafe", soon)
    step(
        soon,
        "Expiry job: the bonus points' date has passed",
        f"{report.points.get('points', 0)} points expired",
    )
    ledger.release_due("cafe", START + 16 * DAY)
    step(START + 16 * DAY, "Return window closed: release job", "300 now available")
    ledger.spend(
        "cafe",
        "ana",
        "points",
        400,
        key="redeem-3",
        at=START + 17 * DAY,
        reason="reward: coffee machine",
    )
    step(START + 17 * DAY, "Ana redeems a coffee machine (400)", "-400")
    r = ledger.reverse(
        "cafe",
        online.transaction_id,
        key="refund-2",
        shortfall="debt",
        at=START + 20 * DAY,
        reason="refund of order:2",
    )
    step(
        START + 20 * DAY,
        "Order 2 refunded after the points were spent (policy: debt)",
        f"-{r.points}: {r.points - r.shortfall} taken back, {r.debt_added} owed",
    )
    g = ledger.adjust(
        "cafe",
        "ana",
        "points",
        200,
        key="goodwill-1",
        at=START + 21 * DAY,
        reason="card terminal outage",
        actor="ops@cafe",
    )
    step(
        START + 21 * DAY,
        "Goodwill credit after an outage (200)",
        f"debt repaid first: {g.debt_repaid}",
    )
    problems = check_invariants(db)

    if fmt is OutputFormat.json:
        print_json(
            {
                "database": str(db_file),
                "member": "ana",
                "steps": steps,
                "books_balance": not problems,
                "violations": problems,
            }
        )
    else:
        table = Table(title="fidelite demo — Ana at the café")
        for col in ("date", "what", "outcome", "available", "pending", "debt"):
            table.add_column(
                col, justify="right" if col in ("available", "pending", "debt") else "left"
            )
        for row in steps:
            table.add_row(
                *(str(row[c]) for c in ("date", "what", "outcome", "available", "pending", "debt"))
            )
        console.print(table)
        verdict = (
            "[green]✓ the books balance[/]" if not problems else "[red]✗ " + "; ".join(problems)
        )
        console.print(verdict)
        console.print(f"Explore it: fidelite ledger history ana --program cafe --db {db_file}")
    db.dispose()
    if problems:
        fail("invariants violated", code="invariants", fmt=fmt)
