"""An event dated later than the time of processing plus the program's tolerance
(``future_tolerance_minutes``, 5 by default) is refused with ``event_in_future`` before
anything is written: one at a time, in a batch, in an import (row number), over the API
(problem+json 422, not stored under its Idempotency-Key). The time of processing is the
processor's clock, given here; the engine has none."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.engine import Event
from fidelite.ledger import Ledger
from fidelite.processing import EventProcessor, Outcome, ProcessingError, Result
from fidelite.processing.batch import process_events
from fidelite.processing.importer import RejectedRow, import_events
from fidelite.processing.tables import events, member_states
from fidelite.program import ProgramError, parse_program
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - id: first
    on: [purchase]
    when: member.purchases == 0
    fixed: 100
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: gold, name: Gold, threshold: 1000}
"""
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
LIMIT = NOW + timedelta(minutes=5)


def clock() -> datetime:
    return NOW


def processor(db: Database, program: str = PROGRAM) -> EventProcessor:
    return EventProcessor(db, parse_program(program), clock=clock)


def purchase(event_id: str, at: datetime, amount: str = "10", member: str = "ann") -> Event:
    return Event(id=event_id, type="purchase", member=member, at=at, amount=Decimal(amount))


def refusal(event_id: str, at: str, minutes: int = 5) -> str:
    return (f"event {event_id!r} is dated {at}, later than the time of processing "
            f"(2026-12-06T12:00:00Z) plus the program's tolerance of {minutes} minute(s) "
            "(future_tolerance_minutes): an event is sent once it has happened; check the "
            "date (a typo, or a till's clock set ahead)")  # fmt: skip


def written(db: Database) -> tuple[list[str], int, int]:
    """The events recorded, the members and the ledger transactions."""
    with db.read() as conn:
        ids = conn.execute(select(events.c.event_id).order_by(events.c.event_id)).scalars()
        recorded = list(ids)
        members = conn.execute(select(func.count()).select_from(member_states)).scalar_one()
        rows = conn.execute(select(func.count()).select_from(LedgerTransaction)).scalar_one()
    return recorded, int(members), int(rows)


def points(db: Database, member: str = "ann") -> int:
    balance = Ledger(db).balance("shop", member, "points", as_of="2040-01-01T00:00:00Z")
    return balance.available + balance.pending


def test_the_tolerance_is_a_validated_program_setting() -> None:
    assert parse_program(PROGRAM).future_tolerance == timedelta(minutes=5)
    wider = parse_program(PROGRAM + "future_tolerance_minutes: 90\n")
    assert wider.future_tolerance == timedelta(minutes=90)
    for bad in ("-1", "1441", "five"):
        with pytest.raises(ProgramError) as caught:
            parse_program(PROGRAM + f"future_tolerance_minutes: {bad}\n")
        assert "future_tolerance_minutes" in str(caught.value)


def test_a_mistyped_year_is_refused_and_changes_nothing(pdb: Database) -> None:
    """The QA case: 5,000 EUR dated 2030 would make the member gold today and take the
    first-purchase bonus from their real first purchase."""
    p = processor(pdb)
    with pytest.raises(ProcessingError) as caught:
        p.process(purchase("f1", datetime(2030, 1, 1, 9, tzinfo=UTC), "5000"))
    assert (caught.value.code, caught.value.message, caught.value.detail) == (
        "event_in_future", refusal("f1", "2030-01-01T09:00:00Z"),
        {"at": "2030-01-01T09:00:00Z", "processed_at": "2026-12-06T12:00:00Z",
         "tolerance_minutes": 5},
    )  # fmt: skip
    assert written(pdb) == ([], 0, 0)
    today = p.process(purchase("f2", NOW - timedelta(hours=1), "100"))
    assert today.decision is not None
    assert [(e.currency, e.points) for e in today.decision.earnings] == [("points", 200)]
    assert (p.member_tier("ann"), points(pdb)) == ("bronze", 200)


def test_the_limit_itself_is_accepted_a_second_later_refused(pdb: Database) -> None:
    p = processor(pdb)
    assert p.process(purchase("e1", LIMIT)).outcome is Outcome.processed
    with pytest.raises(ProcessingError) as caught:
        p.process(purchase("e2", LIMIT + timedelta(seconds=1)))
    assert caught.value.message == refusal("e2", "2026-12-06T12:05:01Z")
    assert written(pdb) == (["e1"], 1, 1)


def test_a_refund_dated_in_the_future_is_refused(pdb: Database) -> None:
    p = processor(pdb)
    p.process(purchase("e1", NOW - timedelta(days=1), "50"))
    before = written(pdb)
    refund = Event(id="r1", type="refund", member="ann", at=datetime(2027, 12, 6, tzinfo=UTC),
                   amount=Decimal("50"), refund_of="e1")  # fmt: skip
    with pytest.raises(ProcessingError) as caught:
        p.process(refund)
    assert caught.value.code == "event_in_future"
    assert (written(pdb), points(pdb)) == (before, 150)


def test_the_program_tolerance_widens_the_limit(pdb: Database) -> None:
    p = processor(pdb, PROGRAM + "future_tolerance_minutes: 60\n")
    assert p.process(purchase("e1", NOW + timedelta(minutes=60))).outcome is Outcome.processed
    with pytest.raises(ProcessingError) as caught:
        p.process(purchase("e2", NOW + timedelta(minutes=61)))
    assert caught.value.message == refusal("e2", "2026-12-06T13:01:00Z", minutes=60)


def test_a_recorded_event_is_a_duplicate_whatever_the_clock(pdb: Database) -> None:
    EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: LIMIT + timedelta(days=1)).process(
        purchase("e1", LIMIT + timedelta(hours=1)))  # fmt: skip
    assert processor(pdb).process(purchase("e1", LIMIT + timedelta(hours=1))).outcome is (
        Outcome.duplicate
    )


def test_a_batch_refuses_the_future_event_in_place(pdb: Database) -> None:
    p = processor(pdb)
    batch = [purchase("e1", NOW, "10"), purchase("e2", datetime(2030, 1, 1, tzinfo=UTC), "5000"),
             purchase("e3", NOW, "5", member="bob")]  # fmt: skip
    with pdb.write() as conn:
        answers = process_events(p, conn, batch)
    assert [type(a) for a in answers] == [Result, ProcessingError, Result]
    refused = answers[1]
    assert isinstance(refused, ProcessingError)
    assert (refused.code, refused.message) == (
        "event_in_future",
        refusal("e2", "2030-01-01T00:00:00Z"),
    )
    assert written(pdb) == (["e1", "e3"], 2, 2)
    assert (points(pdb), points(pdb, "bob"), p.member_tier("ann")) == (110, 105, "bronze")


@pytest.mark.parametrize("batch", [True, False])
def test_an_import_rejects_the_row_with_its_number(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = tmp_path / "events.csv"
    file.write_text("event_id,type,member,at,amount\n"
                    "f1,purchase,ann,2030-01-01T10:00:00+01:00,5000.00\n"
                    "f2,purchase,ann,2026-12-06T12:00:00+01:00,100.00\n"
                    "f3,purchase,bob,2026-12-06T13:05:00+01:00,10.00\n"
                    "f4,purchase,bob,2026-12-06T13:05:01+01:00,10.00\n", "utf-8")  # fmt: skip
    report = import_events(processor(pdb), file, batch=batch)
    assert report.rejected == [
        RejectedRow(2, "f1", "event_in_future", refusal("f1", "2030-01-01T09:00:00Z")),
        RejectedRow(5, "f4", "event_in_future", refusal("f4", "2026-12-06T12:05:01Z")),
    ]
    assert (report.processed, report.summary()["rejected_by_code"]) == (
        2, {"event_in_future": 2})  # fmt: skip
    assert written(pdb) == (["f2", "f3"], 2, 2)
    assert (points(pdb), points(pdb, "bob")) == (200, 110)


def test_the_default_clock_is_the_machines(pdb: Database, real_clock: None) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    now = datetime.now(UTC)
    assert p.process(purchase("e1", now - timedelta(minutes=1))).outcome is Outcome.processed
    with pytest.raises(ProcessingError) as caught:
        p.process(purchase("e2", now + timedelta(hours=1)))
    assert caught.value.code == "event_in_future"
    assert written(pdb) == (["e1"], 1, 1)


def test_the_import_command_refuses_on_the_machines_clock(tmp_path: Path, real_clock: None) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    now = datetime.now(UTC).replace(microsecond=0)
    ahead, past = now + timedelta(days=1), now - timedelta(hours=1)
    file = tmp_path / "events.csv"
    file.write_text("event_id,type,member,at,amount\n"
                    f"f1,purchase,ann,{ahead.isoformat()},5000.00\n"
                    f"f2,purchase,ann,{past.isoformat()},100.00\n", "utf-8")  # fmt: skip
    _register()
    args = ["import", "events", str(file), "--program", str(program),
            "--db", f"sqlite:///{tmp_path / 'shop.db'}", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["rejected_by_code"]) == (1, {"event_in_future": 1})
    with (tmp_path / "events.csv.rejects.csv").open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["row"], r["event_id"], r["code"]) for r in rejects] == [
        ("2", "f1", "event_in_future")
    ]
    assert rejects[0]["message"].startswith(
        f"event 'f1' is dated {ahead.isoformat().replace('+00:00', 'Z')}, later than the time "
        "of processing ("
    )
