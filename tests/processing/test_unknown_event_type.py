"""An event of a type the program does not handle (a typo such as ``purchse``) is
refused with ``unknown_event_type`` before anything is written, one at a time, in a
batch and in an import; its id stays free for the real event. A type the program
records without a rule is declared in ``events``."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
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
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: welcome, on: [signup], fixed: 100}
events: [page_view]
"""
AT = datetime(2026, 11, 2, 10, tzinfo=UTC)
TYPO = (
    "unknown event type 'purchse' (did you mean 'purchase'?): this program handles "
    "purchase, refund, birthday, page_view, profile_completed, review, signup, social; a type "
    "to record without points is listed under 'events' in the program file"
)


def event(event_id: str, kind: str, amount: str | None = None, member: str = "ann") -> Event:
    return Event(id=event_id, type=kind, member=member, at=AT,
                 amount=None if amount is None else Decimal(amount))  # fmt: skip


def written(db: Database) -> tuple[list[tuple[str, str]], int, int]:
    """The events recorded (id, type), the members and the ledger transactions."""
    with db.read() as conn:
        recorded = conn.execute(select(events.c.event_id, events.c.type)
                                .order_by(events.c.event_id)).all()  # fmt: skip
        members = conn.execute(select(func.count()).select_from(member_states)).scalar_one()
        rows = conn.execute(select(func.count()).select_from(LedgerTransaction)).scalar_one()
    return [(r.event_id, r.type) for r in recorded], int(members), int(rows)


def points(db: Database, member: str = "ann") -> int:
    balance = Ledger(db).balance("shop", member, "points", as_of="2026-12-01T00:00:00Z")
    return balance.available


def test_the_program_knows_the_types_it_handles() -> None:
    program = parse_program(PROGRAM)
    assert program.event_types == {"purchase", "refund", "signup", "page_view", "birthday",
                                   "profile_completed", "review", "social"}  # fmt: skip
    pending = parse_program(PROGRAM + "pending: {days: 14, event_types: [signup]}\n")
    assert pending.event_types == program.event_types


def test_a_typo_is_refused_and_its_id_stays_free(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    with pytest.raises(ProcessingError) as caught:
        p.process(event("typo-2", "purchse", "50"))
    assert (caught.value.code, caught.value.message, caught.value.detail) == (
        "unknown_event_type", TYPO, {},
    )  # fmt: skip
    assert written(pdb) == ([], 0, 0)
    assert p.process(event("typo-2", "purchase", "50")).outcome is Outcome.processed
    assert points(pdb) == 50


def test_a_type_without_a_close_match_is_named_with_the_types_handled(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    with pytest.raises(ProcessingError) as caught:
        p.process(event("x", "newsletter_open"))
    assert caught.value.message == (
        "unknown event type 'newsletter_open': this program handles purchase, refund, "
        "birthday, page_view, profile_completed, review, signup, social; a type to record "
        "without points is listed under 'events' in the program file"
    )
    assert written(pdb) == ([], 0, 0)


def test_a_declared_type_is_recorded_without_points(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    result = p.process(event("v1", "page_view"))
    assert result.outcome is Outcome.processed and result.decision is not None
    assert result.decision.earnings == []
    assert written(pdb) == ([("v1", "page_view")], 1, 0)


def test_an_event_recorded_before_the_program_dropped_its_type_is_a_duplicate(
    pdb: Database,
) -> None:
    EventProcessor(pdb, parse_program(PROGRAM)).process(event("v1", "page_view"))
    narrower = EventProcessor(pdb, parse_program(PROGRAM.replace("events: [page_view]\n", "")))
    assert narrower.process(event("v1", "page_view")).outcome is Outcome.duplicate
    with pytest.raises(ProcessingError) as caught:
        narrower.process(event("v2", "page_view"))
    assert caught.value.code == "unknown_event_type"
    assert written(pdb) == ([("v1", "page_view")], 1, 0)


def test_a_batch_refuses_the_typo_in_place(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    batch = [event("e1", "purchase", "10"), event("e2", "purchse", "50"),
             event("e3", "signup", member="bob")]  # fmt: skip
    with pdb.write() as conn:
        answers = process_events(p, conn, batch)
    assert [type(a) for a in answers] == [Result, ProcessingError, Result]
    refused = answers[1]
    assert isinstance(refused, ProcessingError)
    assert (refused.code, refused.message) == ("unknown_event_type", TYPO)
    assert written(pdb)[0] == [("e1", "purchase"), ("e3", "signup")]
    assert (points(pdb), points(pdb, "bob")) == (10, 100)


@pytest.mark.parametrize("batch", [True, False])
def test_an_import_rejects_the_row_with_its_number(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = tmp_path / "events.csv"
    file.write_text("event_id,type,member,at,amount\n"
                    "e1,purchase,ann,2026-11-02T10:00:00Z,10\n"
                    "e2,purchasse,ann,2026-11-02T11:00:00Z,50\n"
                    "e3,page_view,ann,2026-11-02T12:00:00Z,\n", "utf-8")  # fmt: skip
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, batch=batch)
    message = TYPO.replace("'purchse'", "'purchasse'")
    assert report.rejected == [RejectedRow(3, "e2", "unknown_event_type", message)]
    assert (report.processed, report.summary()["rejected_by_code"]) == (
        2, {"unknown_event_type": 1},
    )  # fmt: skip
    assert written(pdb)[0] == [("e1", "purchase"), ("e3", "page_view")]
    assert points(pdb) == 10


def test_the_import_command_writes_the_rejected_row(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = tmp_path / "events.csv"
    file.write_text("event_id,type,member,at,amount\n"
                    "e1,purchasse,ann,2026-11-02T11:00:00Z,50\n", "utf-8")  # fmt: skip
    _register()
    args = ["import", "events", str(file), "--program", str(program),
            "--db", f"sqlite:///{tmp_path / 'shop.db'}", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["rejected"]) == (0, 1)
    with (tmp_path / "events.csv.rejects.csv").open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert rejects == [{"row": "2", "event_id": "e1", "code": "unknown_event_type",
                        "message": TYPO.replace("'purchse'", "'purchasse'")}]  # fmt: skip
