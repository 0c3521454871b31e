"""A review date in the hour skipped by the change to summer time is the instant after
the gap (02:30 becomes 03:30), so the next review keeps 03:30 however the reviews run:
one job late or one each month, events one at a time or a batch."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_events, process_one
from fidelite.processing.tables import member_states, tier_changes
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: {pid}
name: Skipped hour
time_zone: Europe/Paris
currencies: [{{id: points, name: Points, value: 0.01}}]
rules:
  - {{id: base, on: [purchase], per_amount: {{points: 1}}}}
tiers:
  metric: spend
  window: rolling
  window_months: {window}
  requalify_months: 1
  grace_months: 0
  levels:
    - {{id: bronze, name: Bronze, threshold: 0}}
    - {{id: silver, name: Silver, threshold: 300}}
"""


def program(pid: str, window: int) -> str:
    return PROGRAM.format(pid=pid, window=window)


def purchase(event_id: str, at: str, amount: int) -> Event:
    return Event(id=event_id, type="purchase", member="x", at=datetime.fromisoformat(at),
                 amount=Decimal(amount))  # fmt: skip


def steps(db: Database, pid: str) -> list[tuple[str, datetime]]:
    with db.read() as conn:
        rows = conn.execute(
            select(tier_changes.c.kind, tier_changes.c.at)
            .where(tier_changes.c.program_id == pid)
            .order_by(tier_changes.c.at)
        ).all()  # fmt: skip
    return [(kind, at.astimezone(UTC)) for kind, at in rows]


def review_at(db: Database, pid: str) -> datetime:
    with db.read() as conn:
        found = conn.execute(
            select(member_states.c.review_at).where(member_states.c.program_id == pid)
        ).scalar_one()  # fmt: skip
    return found.astimezone(UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# 28 March 2027 02:30 is skipped in Paris: that review is at 03:30+02:00 (01:30Z), and
# the 28 April one at 03:30+02:00 too (01:30Z; 00:30Z when 02:30 was kept in memory).
REVIEWS = [("upgrade", at("2027-01-28T02:30:00+01:00")),
           ("requalified", at("2027-02-28T02:30:00+01:00")),
           ("requalified", at("2027-03-28T03:30:00+02:00")),
           ("requalified", at("2027-04-28T03:30:00+02:00"))]  # fmt: skip


def test_one_late_job_and_a_job_each_month_write_the_same_review_dates(pdb: Database) -> None:
    jobs = {"late": ["2027-05-01T12:00:00+02:00"],
            "monthly": ["2027-02-28T12:00:00+01:00", "2027-03-29T12:00:00+02:00",
                        "2027-05-01T12:00:00+02:00"]}  # fmt: skip
    for pid, dates in jobs.items():
        processor = EventProcessor(pdb, parse_program(program(pid, 12)))
        processor.process(purchase("a", "2027-01-28T02:30:00+01:00", 2000))
        for job in dates:
            processor.review_tiers(datetime.fromisoformat(job))
        assert steps(pdb, pid) == REVIEWS
        assert review_at(pdb, pid) == at("2027-05-28T03:30:00+02:00")


def test_a_batch_and_one_event_at_a_time_write_the_same_review_dates(pdb: Database) -> None:
    events = [purchase("a", "2027-02-28T02:30:00+01:00", 400),
              purchase("b", "2027-03-20T10:00:00+01:00", 400),
              purchase("c", "2027-04-20T10:00:00+02:00", 400),
              purchase("d", "2027-05-01T10:00:00+02:00", 1)]  # fmt: skip
    single = EventProcessor(pdb, parse_program(program("single", 1)))
    batched = EventProcessor(pdb, parse_program(program("batched", 1)))
    with pdb.write() as conn:
        for event in events:
            process_one(single, conn, event)
    with pdb.write() as conn:
        process_events(batched, conn, events)
    expected = [("upgrade", at("2027-02-28T02:30:00+01:00")),
                ("requalified", at("2027-03-28T03:30:00+02:00")),
                ("requalified", at("2027-04-28T03:30:00+02:00"))]  # fmt: skip
    for pid in ("single", "batched"):
        assert steps(pdb, pid) == expected
        assert review_at(pdb, pid) == at("2027-05-28T03:30:00+02:00")
