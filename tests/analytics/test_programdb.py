"""Metrics read straight from a program database (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions
from fidelite.analytics.metrics.repeat import repeat_rate
from fidelite.analytics.metrics.retention import retention
from fidelite.analytics.programdb import transactions_from_program
from fidelite.analytics.summary import customer_summary
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.migrate import head_revision
from tests.cli.support import fidelite

PROGRAM = """\
id: cafe
name: Cafe
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""


def _event(event_id: str, kind: str, member: str, at: str, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at, **extra})


def _run_program(db: Database) -> None:
    processor = EventProcessor(db, parse_program(PROGRAM))
    for e in [
        _event("s1", "signup", "ann", "2024-01-02T09:00:00+01:00"),
        _event("p1", "purchase", "ann", "2024-01-05T10:00:00+01:00", amount=Decimal("20")),
        _event("p2", "purchase", "bob", "2024-01-31T23:30:00+00:00", amount=Decimal("15")),
        _event("p3", "purchase", "ann", "2024-02-10T10:00:00+01:00", amount=Decimal("30.50")),
        _event("r1", "refund", "ann", "2024-02-12T10:00:00+01:00", amount=Decimal("10"),
               refund_of="p3"),
    ]:  # fmt: skip
        processor.process(e)


def test_program_database_reads_purchases_and_refunds(db: Database) -> None:
    _run_program(db)
    table = transactions_from_program(db.url, "cafe")
    rows = table.to_pylist()
    assert [(r["customer_id"], r["amount"], r["order_id"], r["refund"]) for r in rows] == [
        ("ann", 20.0, "p1", False),
        ("bob", 15.0, "p2", False),
        ("ann", 30.5, "p3", False),
        ("ann", -10.0, "p3", True),
    ]  # the sign-up is not a sale; the refund carries its purchase's order id


def test_program_database_feeds_metrics_in_the_business_time_zone(db: Database) -> None:
    _run_program(db)
    ds = open_dataset(
        transactions_from_program(db.url, "cafe"), options=LoadOptions(timezone="Europe/Paris")
    )
    # bob's purchase at 23:30 UTC on Jan 31 is on Feb 1 in Paris.
    months = {r["period"]: r for r in retention(ds, "month").rows}
    assert list(months) == ["2024-01", "2024-02"]
    assert (months["2024-02"]["customers_start"], months["2024-02"]["new"]) == (1, 1)
    assert repeat_rate(ds, None).rows[0]["repeat_purchase_rate"] == 50.0
    summary = {r["customer_id"]: r for r in customer_summary(ds).to_pylist()}
    assert summary["ann"]["frequency"] == 1  # two purchase days; the refund is not an order


def test_program_database_without_purchases_is_a_clear_error(db: Database) -> None:
    from fidelite.ledger import Ledger

    with pytest.raises(InputError, match=r"no program 'cafe' in this database \(it holds none\)"):
        transactions_from_program(db.url, "cafe")
    Ledger(db).open_program("cafe", ["points"])
    with pytest.raises(InputError, match="program 'cafe' has no purchases"):
        transactions_from_program(db.url, "cafe")


@pytest.mark.parametrize("form", ["url", "url#program", "path"])
def test_metrics_cli_reads_a_program_database(
    form: str, sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _run_program(db)
    db.dispose()
    source = {"url": f"sqlite:///{path}", "url#program": f"sqlite:///{path}#cafe"}.get(
        form, str(path)
    )
    proc = fidelite("metrics", "repeat-rate", "--input", source, "--format", "json")
    row = json.loads(proc.stdout)["rows"][0]
    assert (row["customers"], row["repeat_customers"], row["repeat_purchase_rate"]) == (2, 1, 50.0)


def test_metrics_cli_names_the_missing_program(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _run_program(db)
    db.dispose()
    proc = fidelite(
        "metrics", "retention", "--input", f"sqlite:///{path}#shop", "--format", "json", ok=False
    )
    assert proc.returncode != 0
    assert "no program 'shop' in this database (it holds cafe)" in proc.stdout + proc.stderr


def test_program_source_finds_a_program_without_processed_events(
    sqlite_template: Path, tmp_path: Path
) -> None:
    from fidelite.analytics.programdb import program_source
    from fidelite.ledger import Ledger

    path = tmp_path / "shop.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    with pytest.raises(InputError, match="the database holds no program"):
        program_source(str(path))
    ledger = Ledger(db)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "ann")  # enrolled straight in the ledger, no event
    assert program_source(str(path)) == (f"sqlite:///{path.resolve()}", "shop")
    # its transactions: none, and the error says so rather than "no processed events"
    proc = fidelite("metrics", "retention", "--input", path, "--format", "json", ok=False)
    assert proc.returncode != 0
    assert "program 'shop' has no purchases" in proc.stdout + proc.stderr
    ledger.open_program("bar", ["points"])
    db.dispose()
    with pytest.raises(InputError, match=r"several programs \(bar, shop\)"):
        program_source(str(path))


def test_metrics_cli_refuses_a_database_of_a_newer_fidelite(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """A database upgraded by a newer fidelite is named as such, not sent to `db upgrade`
    (which refuses it), and the file is left as it is."""
    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _run_program(db)
    head = head_revision(db)
    assert head is not None
    newer = f"{int(head) + 1:04d}"
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
    db.dispose()
    before = path.read_bytes()
    proc = fidelite(
        "metrics", "retention", "--input", f"sqlite:///{path}#cafe", "--format", "json", ok=False
    )
    assert proc.returncode != 0
    error = json.loads(proc.stdout)["error"]
    assert error["message"] == (
        f"sqlite:///{path}: the database was upgraded by a newer fidelite: "
        f"it is at schema revision {newer}, "
        f"which this fidelite does not know (its newest is {head}); use that newer fidelite"
    )
    assert path.read_bytes() == before


def test_a_missing_or_unnamed_program_lists_ten_programs_and_how_many_more(
    sqlite_template: Path, tmp_path: Path
) -> None:
    from fidelite.ledger import Ledger

    path = tmp_path / "many.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    ledger = Ledger(db)
    for n in range(13):
        ledger.open_program(f"p{n:02d}", ["points"])
    db.dispose()
    name = f"sqlite:///{path}"
    ten = ", ".join(f"p{n:02d}" for n in range(10))
    for source, message in (
        (f"{name}#nope", f"no program 'nope' in this database (it holds {ten} and 3 more)"),
        (name, f"the database holds several programs ({ten} and 3 more); name one with "
               "#PROGRAM after the database"),
    ):  # fmt: skip
        proc = fidelite("metrics", "retention", "--input", source, "-f", "json", ok=False)
        assert json.loads(proc.stdout)["error"]["message"] == f"{name}: {message}"
