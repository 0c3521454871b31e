"""``event.coupon`` in a rule is the code as the purchase records it and ``event show``
shows it: upper-cased, spaces dropped. A shared flyer code rule
(``event.coupon == "HELLO30"``) gave nothing for ``hello30`` or `` HELLO30`` though the
purchase was recorded with ``HELLO30``. One event at a time, batch, import (both ways)
and ``program simulate`` agree; real databases (SQLite file, then PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, Result
from fidelite.processing.batch import process_events
from fidelite.processing.importer import import_events
from fidelite.processing.tables import events
from fidelite.program import parse_program
from fidelite.store import Database

_register()

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
  - {id: flyer, on: [purchase], when: 'event.coupon == "HELLO30"', fixed: 30}
  - {id: hello, on: [purchase], when: 'event.coupon.startsWith("HELLO3")', fixed: 5}
"""
AT = datetime.fromisoformat("2026-11-15T10:00:00+01:00")
TYPED = {"a": "HELLO30", "b": "hello30", "c": " HELLO30", "d": "Hel lo30 ", "e": "HELLO31"}
EXPECTED = {"a": 45, "b": 45, "c": 45, "d": 45, "e": 15}  # 10 + 30 + 5; HELLO31: 10 + 5
RECORDED = {"a": "HELLO30", "b": "HELLO30", "c": "HELLO30", "d": "HELLO30", "e": "HELLO31"}


def purchase(member: str) -> Event:
    return Event(id=f"p-{member}", type="purchase", member=member, at=AT, amount=Decimal(10),
                 coupon=TYPED[member])  # fmt: skip


def setup(db: Database) -> EventProcessor:
    p = EventProcessor(db, parse_program(PROGRAM))
    for member in TYPED:
        p.enrol(member, at=AT)
    return p


def balances(p: EventProcessor) -> dict[str, int]:
    out = {}
    for member in TYPED:
        b = p.ledger.balance("shop", member, "points", as_of=AT)
        out[member] = b.pending + b.available
    return out


def recorded(db: Database) -> dict[str, str]:
    with db.read() as conn:
        rows = conn.execute(select(events.c.member_ref, events.c.coupon)).all()
    return {r.member_ref: r.coupon for r in rows}


def test_one_event_at_a_time(pdb: Database) -> None:
    p = setup(pdb)
    for member in TYPED:
        result = p.process(purchase(member))
        assert result.decision is not None
        assert result.decision.points("points") == EXPECTED[member]
    assert balances(p) == EXPECTED
    assert recorded(pdb) == RECORDED
    assert_invariants(pdb, "shop")


def test_one_batch(pdb: Database) -> None:
    p = setup(pdb)
    with pdb.write() as conn:
        answers = process_events(p, conn, [purchase(m) for m in TYPED])
    got = {}
    for answer in answers:
        assert isinstance(answer, Result) and answer.decision is not None
        got[answer.event_id[2:]] = answer.decision.points("points")
    assert got == EXPECTED
    assert balances(p) == EXPECTED
    assert recorded(pdb) == RECORDED
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("batch", [True, False])
def test_imported(pdb: Database, tmp_path: Path, batch: bool) -> None:
    p = setup(pdb)
    file = tmp_path / "sales.csv"
    lines = [f'p-{m},purchase,{m},2026-11-15T10:00:00+01:00,10,"{c}"' for m, c in TYPED.items()]
    file.write_text("event_id,type,member,at,amount,coupon\n" + "\n".join(lines) + "\n",
                    encoding="utf-8")  # fmt: skip
    report = import_events(p, file, batch=batch)
    assert (report.rows, report.processed, report.rejected) == (5, 5, [])
    assert balances(p) == EXPECTED
    assert recorded(pdb) == RECORDED
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("member", sorted(TYPED))
def test_simulated(tmp_path: Path, member: str) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"id": "p1", "type": "purchase", "member": member,
                                 "at": AT.isoformat(), "amount": "10",
                                 "coupon": TYPED[member]}), encoding="utf-8")  # fmt: skip
    result = CliRunner().invoke(
        app, ["program", "simulate", str(program), str(event), "-f", "json"]
    )
    assert result.exit_code == 0, result.stdout
    out = json.loads(result.stdout)
    assert sum(e["points"] for e in out["earnings"]) == EXPECTED[member]
    assert out["coupon"]["code"] == RECORDED[member]
