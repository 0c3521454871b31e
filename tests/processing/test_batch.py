"""The batch path of bulk import gives, row for row, what one event at a time gives.

Two copies of the example program live in one database: one imports every file one
event at a time (``batch=False``), the other through the batch path. Between files the
same jobs run on both (pending points released, rewards redeemed, tiers reviewed). The
whole of each program's data is then compared: ledger transactions with their receipts
and fingerprints, lots, postings, balances, events with traces, earnings, counters,
budgets, coupons, member states, tier changes and webhook events. Database ids differ
between the copies, so rows are compared by their natural keys and ids by rank.
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from fidelite.engine import Event
from fidelite.engine.coupon import generate_codes
from fidelite.ledger import Ledger, Rejected, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_batch
from fidelite.processing.importer import import_events
from fidelite.processing.processor import MemberProfile, ProcessingError, Result
from fidelite.processing.tables import coupons
from fidelite.program import parse_program
from fidelite.store import Database
from tests.conftest import make_database

EXAMPLE = Path(__file__).parents[2] / "src" / "fidelite" / "program" / "example.yaml"
START = datetime(2026, 11, 2, 8, tzinfo=UTC)
HEADER = ["event_id", "type", "member", "at", "amount", "channel", "coupon", "refund_of",
          "items", "attributes"]  # fmt: skip
MEMBERS = [f"m{i}" for i in range(40)]
VIPS = MEMBERS[:8]
SPENDERS = MEMBERS[:3]  # spend all they can before their purchases are refunded


def program_text(program_id: str) -> str:
    """The example program under another id, with a spring budget small enough to run out."""
    source = EXAMPLE.read_text(encoding="utf-8")
    source = source.replace("id: cafe_club", f"id: {program_id}", 1)
    return source.replace("budget: 100000", "budget: 900", 1)


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def purchases(rng: random.Random, first: int, count: int, start: datetime,
              codes: list[str]) -> list[dict[str, str]]:  # fmt: skip
    rows = []
    for i in range(first, first + count):
        items = [
            {"sku": f"S{rng.randrange(9)}", "category": rng.choice(["beans", "pastry", "tea"]),
             "quantity": rng.randint(1, 3), "price": f"{rng.randint(100, 2500) / 100:.2f}"}
            for _ in range(rng.randint(0, 3))
        ]  # fmt: skip
        kind = rng.choices(["purchase", "signup", "review", "social", "workshop"],
                           [80, 5, 5, 5, 5])[0]  # fmt: skip
        row = {"event_id": f"e{i}", "type": kind, "member": rng.choice(MEMBERS),
               "at": (start + timedelta(hours=7 * (i - first), minutes=rng.randrange(60)))
               .isoformat()}  # fmt: skip
        if kind == "purchase":
            row["amount"] = f"{rng.randint(100, 25000) / 100:.2f}"
            row["channel"] = rng.choice(["web", "store"])
            row["items"] = json.dumps(items)
            if codes and rng.random() < 0.1:
                row["coupon"] = rng.choice(codes)
        if kind == "review":
            row["attributes"] = json.dumps({"stars": rng.randint(0, 5)})
        if kind == "signup" and codes:  # no coupon rule handles sign-ups: the code stays
            row["coupon"] = codes[i % len(codes)]
        rows.append(row)
    return rows


def refunds(
    rng: random.Random, earlier: list[dict[str, str]], at: datetime
) -> list[dict[str, str]]:
    bought = [r for r in earlier if r["type"] == "purchase"]
    spenders = [r for r in bought if r["member"] in SPENDERS][:6]
    rows = []
    for n, original in enumerate(spenders + rng.sample(bought, 10)):
        amount = original["amount"] if n % 3 == 0 else f"{float(original['amount']) / 4:.2f}"
        rows.append({"event_id": f"r{n}", "type": "refund", "member": original["member"],
                     "at": (at + timedelta(hours=n)).isoformat(), "amount": amount,
                     "refund_of": original["event_id"]})  # fmt: skip
    rows.append({"event_id": "r-unknown", "type": "refund", "member": "m1",
                 "at": at.isoformat(), "amount": "5.00", "refund_of": "nope"})  # fmt: skip
    last = bought[-1]  # refused: dated before its purchase
    early = datetime.fromisoformat(last["at"]) - timedelta(days=1)
    rows.append({"event_id": "r-early", "type": "refund", "member": last["member"],
                 "at": early.isoformat(), "amount": "1.00",
                 "refund_of": last["event_id"]})  # fmt: skip
    return rows


def late_refunds(earlier: list[dict[str, str]], at: datetime) -> list[dict[str, str]]:
    """Half of some purchases refunded once their points have expired, a purchase, and
    a purchase of 0 refunded."""
    bought = [r for r in earlier if r["type"] == "purchase"][100:130:3]
    rows = [{"event_id": f"late-{n}", "type": "refund", "member": original["member"],
             "at": (at + timedelta(hours=n)).isoformat(),
             "amount": f"{float(original['amount']) / 2:.2f}", "refund_of": original["event_id"]}
            for n, original in enumerate(bought)]  # fmt: skip
    rows.append({"event_id": "late-buy", "type": "purchase", "member": bought[0]["member"],
                 "at": (at + timedelta(days=1)).isoformat(), "amount": "30.00"})  # fmt: skip
    # A free order refunded in full by a refund of 0, once (a second is refused, and so
    # is a refund of 0 of a paid purchase), then the member's next purchase.
    for n, (event_id, kind, amount, of) in enumerate([
        ("zero-buy", "purchase", "0.00", ""), ("zero-refund", "refund", "0.00", "zero-buy"),
        ("zero-again", "refund", "0", "zero-buy"), ("zero-of-paid", "refund", "0", "late-buy"),
        ("zero-next", "purchase", "12.00", ""),
    ]):  # fmt: skip
        rows.append({"event_id": event_id, "type": kind, "member": "newcomer",
                     "at": (at + timedelta(days=2, hours=n)).isoformat(), "amount": amount,
                     "refund_of": of})  # fmt: skip
    rows[-2]["member"] = bought[0]["member"]
    return rows


def bad_rows() -> list[dict[str, str]]:
    return [
        {"event_id": "bad-1", "type": "purchase", "member": "m3", "at": "yesterday",
         "amount": "10"},
        {"event_id": "bad-2", "type": "purchase", "member": "m3",
         "at": START.isoformat()},  # a purchase without amount
    ]  # fmt: skip


def setup(db: Database, program_id: str, codes: list[str]) -> EventProcessor:
    processor = EventProcessor(db, parse_program(program_text(program_id)))
    for ref in MEMBERS[:20]:  # half the members exist before the import
        segments = ["vip", "regulars"] if ref in VIPS else ["regulars"] if ref < "m15" else []
        processor.enrol(ref, at=START - timedelta(days=30), profile=MemberProfile(segments))
    with db.write() as conn:
        conn.execute(insert(coupons), [
            {"program_id": program_id, "code": code, "campaign": "vip_welcome",
             "status": "issued", "created_at": START} for code in codes
        ])  # fmt: skip
    return processor


def run_everything(db: Database, tmp_path: Path, chunk: int) -> tuple[EventProcessor, ...]:
    """The same files and jobs through both paths; returns (one-at-a-time, batch)."""
    rng = random.Random(7)
    codes = generate_codes("VIPWELC", 12)
    first = purchases(rng, 0, 700, START, codes)
    first[10:10] = bad_rows()
    first[20:20] = [dict(first[5])]  # a duplicate inside the file
    spring = START.replace(year=2027, month=3, day=25)
    second = refunds(rng, first, START + timedelta(days=200))
    second += purchases(rng, 1000, 300, spring, codes)
    second[40:40] = refunds(random.Random(9), second[16:], spring + timedelta(days=40))[:4]
    second += [{"event_id": f"w-{ref}", "type": "workshop", "member": ref,
                "at": (spring + timedelta(days=100)).isoformat()} for ref in SPENDERS]  # fmt: skip
    late = datetime(2028, 1, 3, 9, tzinfo=UTC)
    files = [write_rows(tmp_path / "one.csv", first), write_rows(tmp_path / "two.csv", second),
             write_rows(tmp_path / "three.csv", late_refunds(first, late))]  # fmt: skip
    paths = []
    for program_id, batch in (("cafe_one", False), ("cafe_batch", True)):
        processor = setup(db, program_id, codes)
        reports = [import_events(processor, files[0], batch=batch, chunk=chunk)]
        after = START + timedelta(days=230)
        processor.ledger.release_due(program_id, after)
        for n, ref in enumerate(MEMBERS[:12]):
            with contextlib.suppress(Rejected, ProcessingError):
                processor.redeem(ref, "five_euro_off", key=f"red-{n}", at=after)
        for ref in SPENDERS:
            with contextlib.suppress(Rejected, ProcessingError):
                for n in range(200):
                    processor.redeem(ref, "free_coffee", key=f"coffee-{ref}-{n}", at=after)
        processor.review_tiers(START + timedelta(days=400))
        reports.append(import_events(processor, files[1], batch=batch, chunk=chunk))
        reports.append(import_events(processor, files[1], batch=batch, chunk=chunk))
        program = processor.program  # a year on, the first points have expired
        processor.ledger.expire(program_id, late, policy=program.expiry, zone=program.zone)
        reports.append(import_events(processor, files[2], batch=batch, chunk=chunk))
        paths.append((processor, [r.summary() | {"rejects": r.rejected} for r in reports]))
    (one, one_reports), (fast, fast_reports) = paths
    assert fast_reports == one_reports
    assert one_reports[0]["rejected"] == 2 and one_reports[2]["processed"] == 0
    assert one_reports[1]["rejected_by_code"]["refund_before_purchase"] == 1
    assert one_reports[3]["rejected_by_code"] == {
        "refund_exceeds_purchase": 1,
        "refund_invalid_amount": 1,
    }
    return one, fast


def ledger_key(key: str, digest: str, kind: str, txns: dict[int, int]) -> tuple[str, str]:
    """A transaction's key and fingerprint, with the transaction ids some keys (and the
    fingerprints of releases and reversals) carry replaced by their rank."""
    parts = key.split(":")
    if parts[0] == "release":
        return f"release:{txns[int(parts[1])]}", "(names a transaction id)"
    if parts[0] in ("refund", "tier-bonus"):
        return f"{parts[0]}:{parts[1]}:{txns[int(parts[2])]}", "(names a transaction id)"
    return key, digest


def by_repr(items: Any) -> list[Any]:
    """Rows in a stable order (they hold None, so plain sorting is not possible)."""
    return sorted(items, key=repr)


def dump(db: Database, program_id: str) -> dict[str, Any]:
    """Everything a program holds, with database ids replaced by natural keys or ranks."""
    p = {"p": program_id}
    with db.read() as conn:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(text(sql), p)]

        members = dict(rows("SELECT id, ref FROM members WHERE program_id = :p"))
        accounts = {
            r[0]: (members.get(r[1]), r[2], r[3])
            for r in rows(
                "SELECT id, member_id, currency, kind FROM accounts WHERE program_id = :p"
            )
        }
        txns = {r[0]: n for n, r in enumerate(rows(
            "SELECT id FROM ledger_transactions WHERE program_id = :p ORDER BY id"))}  # fmt: skip
        lots = {r[0]: n for n, r in enumerate(rows(
            "SELECT id FROM lots WHERE program_id = :p ORDER BY id"))}  # fmt: skip

        def result(value: Any) -> Any:
            data = value if isinstance(value, dict) else json.loads(value)
            data.pop("program_id")
            data["transaction_id"] = txns[data["transaction_id"]]
            data["reverses_id"] = txns.get(data["reverses_id"])
            data["lot_moves"] = [(lots[m["lot_id"]], m["points"]) for m in data["lot_moves"]]
            return data

        def trace(value: Any) -> Any:
            lines = value if isinstance(value, list) else json.loads(value)
            for line in lines:
                if "transaction_id" in line:  # refunds: the purchase's transactions
                    line["transaction_id"] = txns[int(line["transaction_id"])]
            return lines

        def payload(value: Any) -> Any:
            data = value if isinstance(value, dict) else json.loads(value)
            for key in ("transaction_id", "reverses_transaction_id"):
                if key in data:
                    data[key] = txns[data[key]]
            data.pop("code", None)  # reward codes are random; redemptions are not imported
            data.pop("redemption_id", None)
            return data

        return {
            "members": by_repr(members.values()),
            "balances": by_repr(
                (accounts[r[0]], r[1])
                for r in rows(
                    "SELECT id, balance FROM accounts WHERE program_id = :p "
                    "AND member_id IS NOT NULL"
                )
            ),
            "transactions": [
                (
                    txns[r[0]],
                    members[r[1]],
                    *ledger_key(r[2], r[3], r[4], txns),
                    r[5:10],
                    txns.get(r[10]),
                    str(r[11]),
                    result(r[12]),
                )
                for r in rows(
                    "SELECT id, member_id, idempotency_key, request_hash, kind, currency, points,"
                    " reversed_points, reason, source, reverses_id, occurred_at, result "
                    "FROM ledger_transactions WHERE program_id = :p ORDER BY id"
                )
            ],
            "lots": [
                (lots[r[0]], members[r[1]], txns[r[2]], r[3:])
                for r in rows(
                    "SELECT id, member_id, earn_transaction_id, currency, points, remaining, "
                    "state, earned_at, expires_at, pending_until FROM lots "
                    "WHERE program_id = :p ORDER BY id"
                )
            ],
            "postings": by_repr(
                (txns[r[0]], accounts[r[1]], lots.get(r[2]), r[3])
                for r in rows(
                    "SELECT p.transaction_id, p.account_id, p.lot_id, p.points FROM postings p "
                    "JOIN ledger_transactions t ON t.id = p.transaction_id "
                    "WHERE t.program_id = :p"
                )
            ),
            "events": by_repr(
                (*r[:9], trace(r[9]))
                for r in rows(
                    "SELECT event_id, member_ref, type, occurred_at, amount, refunded_amount, "
                    "coupon, coupon_accepted, refund_of, trace FROM processed_events "
                    "WHERE program_id = :p"
                )
            ),
            "earnings": by_repr(
                (r[0], r[1], txns[r[2]], r[3], r[4])
                for r in rows(
                    "SELECT event_id, currency, transaction_id, points, reversed "
                    "FROM event_earnings WHERE program_id = :p"
                )
            ),
            "usage": by_repr(
                rows(
                    "SELECT member_ref, rule_id, period, points FROM rule_usage "
                    "WHERE program_id = :p"
                )
            ),
            "budgets": by_repr(
                rows("SELECT rule_id, used FROM rule_budgets WHERE program_id = :p")
            ),
            "coupons": by_repr(
                rows("SELECT code, status, used_event_id FROM coupons WHERE program_id = :p")
            ),
            "states": by_repr(
                str(r)
                for r in rows(
                    "SELECT member_ref, tier, tier_since, review_at, grace_until, assigned_until, "
                    "segments, attributes, purchases, joined_at, birth_date FROM member_states "
                    "WHERE program_id = :p"
                )
            ),
            "tiers": [
                r
                for r in rows(
                    "SELECT member_ref, at, kind, from_tier, to_tier, value, reason, event_id "
                    "FROM tier_changes WHERE program_id = :p ORDER BY id"
                )
            ],
            "outbox": by_repr(
                (r[0], r[1], json.dumps(payload(r[2]), sort_keys=True))
                for r in rows(
                    "SELECT member_ref, event_type, payload FROM outbox WHERE program_id = :p"
                )
            ),
            "idempotency": by_repr(
                rows("SELECT key, request_hash FROM idempotency_records WHERE program_id = :p")
            ),
        }


def outbox_order(db: Database, program_id: str) -> dict[str, list[str]]:
    """Each member's webhook event types in the order they were written."""
    order: dict[str, list[str]] = {}
    with db.read() as conn:
        for ref, kind in conn.execute(
            text("SELECT member_ref, event_type FROM outbox WHERE program_id = :p ORDER BY id"),
            {"p": program_id},
        ):
            order.setdefault(ref, []).append(kind)
    return order


def test_batch_import_writes_what_one_event_at_a_time_writes(pdb: Database, tmp_path: Path) -> None:
    run_everything(pdb, tmp_path, chunk=97)
    one, fast = dump(pdb, "cafe_one"), dump(pdb, "cafe_batch")
    assert one.keys() == fast.keys()
    for table in one:
        assert fast[table] == one[table], table
    assert outbox_order(pdb, "cafe_batch") == outbox_order(pdb, "cafe_one")
    assert_invariants(pdb)
    # the data exercised what it should: tiers moved, the budget ran out, coupons were
    # used, refunds made debt that later credits repaid
    assert {t[2] for t in one["tiers"]} >= {"upgrade"}
    assert dict(one["budgets"]) == {"spring_campaign": 900}
    # codes presented with sign-ups stayed unused; a refund dated before its purchase was
    # refused; late refunds found points already expired
    traces = [line for event in one["events"] for line in event[-1]]
    # the free order's first-purchase bonus was taken back by its refund of 0, once
    recorded = {event[0]: event for event in one["events"]}
    assert [line["points"] for line in recorded["zero-refund"][-1]] == [100]
    assert "zero-again" not in recorded and "zero-of-paid" not in recorded
    assert any(line.get("outcome") == "coupon_unused" for line in traces)
    assert any(line.get("already_expired", 0) > 0 for line in traces)
    assert any(t[-1]["already_expired"] > 0 for t in one["transactions"])
    assert any(c[1] == "used" for c in one["coupons"])
    assert any(t[-1]["debt_repaid"] > 0 for t in one["transactions"])
    assert any(t[-1]["debt_added"] > 0 for t in one["transactions"])


def test_one_chunk_per_event_and_one_chunk_for_all_agree(pdb: Database, tmp_path: Path) -> None:
    run_everything(pdb, tmp_path, chunk=5000)
    assert dump(pdb, "cafe_batch") == dump(pdb, "cafe_one")


def test_a_rejected_event_in_a_batch_changes_nothing_and_the_rest_is_recorded(
    pdb: Database,
) -> None:
    processor = EventProcessor(pdb, parse_program(program_text("cafe_batch")))
    good = Event.model_validate({"id": "g1", "type": "purchase", "member": "new",
                                 "at": START, "amount": "20.00"})  # fmt: skip
    # dated long after the time of processing: refused alone (event_in_future)
    late = Event.model_validate({"id": "h1", "type": "purchase", "member": "other",
                                 "at": "2099-01-01T00:00:00+00:00", "amount": "20.00"})  # fmt: skip
    with pdb.write() as conn:
        answers = process_batch(processor, conn, [late, good, good])
    assert isinstance(answers[0], ProcessingError) and answers[0].code == "event_in_future"
    assert isinstance(answers[1], Result) and answers[1].outcome == "processed"
    assert isinstance(answers[2], Result) and answers[2].outcome == "duplicate"
    with pdb.read() as conn:
        refs = conn.execute(text("SELECT member_ref FROM member_states")).scalars().all()
        recorded = conn.execute(text("SELECT event_id FROM processed_events")).scalars().all()
    assert refs == ["new"]  # the rejected event's new member was not enrolled
    assert recorded == ["g1"]
    assert_invariants(pdb)


def test_rules_past_the_largest_award_are_turned_away_and_the_event_recorded(
    pdb: Database,
) -> None:
    """5 points per bag of beans on 2 x 10^14 bags is the largest award (10^15): with
    the 20 points of the rule before it, more than the ledger posts, so the beans rule
    gives nothing (traced) and the event is recorded with what the others gave (it used
    to be rejected whole at posting, while simulate showed the points)."""
    processor = EventProcessor(pdb, parse_program(program_text("cafe_batch")))
    huge = Event.model_validate({"id": "h1", "type": "purchase", "member": "other",
                                 "at": START, "amount": "20.00",
                                 "items": [{"sku": "B", "category": "beans",
                                            "quantity": 2 * 10**14, "price": "0"}]})  # fmt: skip
    with pdb.write() as conn:
        (answer,) = process_batch(processor, conn, [huge])
    assert isinstance(answer, Result) and answer.outcome == "processed"
    assert answer.decision is not None
    beans = next(line for line in answer.decision.trace if line.rule == "coffee_beans")
    assert (beans.outcome, beans.points, beans.note) == (
        "condition_error",
        0,
        "came to 1000000000000000 points, which with the 20 points of the rules before it "
        "is more than the largest award (1000000000000000 points)",
    )
    assert answer.decision.points("points") == 20 + 100  # base_purchase, first_purchase
    assert_invariants(pdb)


def test_an_amount_written_with_more_zeros_than_the_database_keeps(pdb: Database) -> None:
    """Trailing zeros are no decimal places: 10.00000 is recorded as 10.0000 and, sent
    again, is the same event (a finer amount is refused at validation)."""
    processor = EventProcessor(pdb, parse_program(program_text("cafe_batch")))
    zeros = Event.model_validate({"id": "f1", "type": "purchase", "member": "x", "at": START,
                                  "amount": "10.00000"})  # fmt: skip
    with pdb.write() as conn:
        answers = process_batch(processor, conn, [zeros])
    assert isinstance(answers[0], Result) and answers[0].outcome == "processed"
    with pdb.write() as conn:
        again = process_batch(processor, conn, [zeros])
    assert isinstance(again[0], Result) and again[0].outcome == "duplicate"
    # floor(10) = 10, and first_purchase's 100: this event enrols the member
    assert Ledger(pdb).balance("cafe_batch", "x", "points", as_of=START).pending == 110


UNCAPPED = """\
id: plain
name: Plain
currencies: [{id: points, name: Points, value: 0.01}]
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: signup, on: [signup], fixed: 100, cap_per_member: {points: 100, period: ever}}
"""


def _statements(database: Database, program: str, batch: list[Event]) -> list[str]:
    """The SQL a batch sends on SQLite (where every statement passes through SQLAlchemy)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    processor = EventProcessor(database, parse_program(program))
    event.listen(database.writer, "before_cursor_execute", record)
    try:
        with database.writer.begin() as conn:
            answers = process_batch(processor, conn, batch)
    finally:
        event.remove(database.writer, "before_cursor_execute", record)
    assert all(isinstance(a, Result) and a.outcome == "processed" for a in answers)
    return seen


def test_rule_counters_are_read_only_for_a_batch_that_a_capped_rule_handles(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    database = make_database("sqlite", request, tmp_path)
    buy = [Event.model_validate({"id": f"p{i}", "type": "purchase", "member": f"m{i % 2}",
                                 "at": START, "amount": "12.50"}) for i in range(3)]  # fmt: skip
    sql = _statements(database, UNCAPPED, buy)  # the capped rule handles sign-ups only
    assert not [s for s in sql if "rule_usage" in s]
    # the members' accounts and the program's in one statement
    accounts = [s for s in sql if "accounts.member_id IS NULL" in s]
    assert len(accounts) == 1 and "UNION ALL" in accounts[0]
    sign = [Event.model_validate({"id": "s1", "type": "signup", "member": "m0", "at": START})]
    sql = _statements(database, UNCAPPED, sign)
    assert [s for s in sql if "FROM rule_usage" in s]
    ledger = Ledger(database)
    assert ledger.balance("plain", "m0", "points", as_of=START).available == 24 + 100
    assert ledger.balance("plain", "m1", "points", as_of=START).available == 12
    database.dispose()


STEPS = """\
id: {program_id}
name: Steps
time_zone: Europe/Paris
currencies:
  - {{id: points, name: Points, value: 0.01}}
rules:
  - {{id: base, on: [purchase], per_amount: {{points: 1}}}}
  - {{id: class, on: [workshop], fixed: 40}}
tiers:
  metric: {metric}
  window: rolling
  window_months: 2
  requalify_months: 1
  grace_months: {grace}
  downgrade: one_level
  levels:
    - {{id: bronze, name: Bronze, threshold: 0}}
    - {{id: silver, name: Silver, threshold: 100, earn_multiplier: 1.25}}
    - {{id: gold, name: Gold, threshold: 300, earn_multiplier: 1.5}}
"""


def stepping_rows(rng: random.Random, first: int, count: int,
                  start: datetime) -> list[dict[str, str]]:  # fmt: skip
    """Purchases and workshops of a few members, days to months apart: re-qualification
    dates, grace ends and assignment ends fall between two events of a chunk, before a
    chunk, and long before a member's next event."""
    rows, when = [], start
    for i in range(first, first + count):
        when += timedelta(hours=rng.choice([3, 20, 70, 200, 700]), minutes=rng.randrange(60))
        member = f"s{rng.randrange(9)}"
        if rng.random() < 0.15:
            rows.append({"event_id": f"t{i}", "type": "workshop", "member": member,
                         "at": when.isoformat()})  # fmt: skip
            continue
        rows.append(
            {
                "event_id": f"t{i}",
                "type": "purchase",
                "member": member,
                "at": when.isoformat(),
                "amount": f"{rng.randint(500, 16000) / 100:.2f}",
            }
        )
    return rows


@pytest.mark.parametrize(("metric", "grace"), [("spend", 1), ("points", 0)])
@pytest.mark.parametrize("chunk", [7, 5000])
def test_steps_due_before_events_are_applied_alike_on_both_paths(
    pdb: Database, tmp_path: Path, metric: str, grace: int, chunk: int
) -> None:
    """Re-qualifications, grace ends and assignment ends due before a member's event are
    applied before it on both paths, the batch's window read reaching back to the due
    date (never one event at a time), and the databases agree row for row."""
    from fidelite.processing import batch as batch_module

    wider: list[int] = []
    due_early = batch_module._Batch._due_early

    def spy(self: Any, *args: Any) -> Any:
        found = due_early(self, *args)
        wider.append(len(found))
        return found

    rng = random.Random(11)
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    first = stepping_rows(rng, 0, 90, start)
    middle = datetime.fromisoformat(first[-1]["at"])
    second = stepping_rows(rng, 1000, 90, middle)
    files = [write_rows(tmp_path / "a.csv", first), write_rows(tmp_path / "b.csv", second)]
    reports = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch_module._Batch, "_due_early", spy)
        patch.setattr(batch_module, "process_one", _no_fallback(batch_module.process_one))
        for program_id, batch in (("steps_one", False), ("steps_batch", True)):
            text_ = STEPS.format(program_id=program_id, metric=metric, grace=grace)
            processor = EventProcessor(pdb, parse_program(text_), clock=lambda: late_clock())
            for n, ref in enumerate(["s1", "s4", "s7"]):  # by hand, ending between events
                processor.enrol(ref, at=start - timedelta(days=10))
                processor.assign_tier(ref, ["gold", "silver", "gold"][n], at=start,
                                      until=start + timedelta(days=20 + 45 * n, hours=n),
                                      reason=f"goodwill {n}")  # fmt: skip
            got = [import_events(processor, files[0], batch=batch, chunk=chunk)]
            processor.review_tiers(middle)  # what no event of the member applied
            # by hand again, ending before the second file's first event
            processor.assign_tier("s2", "gold", at=middle, until=middle + timedelta(hours=2),
                                  reason="goodwill 3")  # fmt: skip
            got.append(import_events(processor, files[1], batch=batch, chunk=chunk))
            reports.append([r.summary() for r in got])
            assert processor.review_tiers(late_clock()) is not None
    assert reports[0] == reports[1]
    oracle = _with_the_job_before_each_event(pdb, metric, grace, start, middle, first + second)
    one, fast = dump(pdb, "steps_one"), dump(pdb, "steps_batch")
    # each member's timeline and points are what the job run before each event gives
    assert _timelines(one) == _timelines(dump(pdb, oracle))
    assert by_repr(e[:2] + e[3:] for e in one["earnings"]) == by_repr(
        e[:2] + e[3:] for e in dump(pdb, oracle)["earnings"])  # fmt: skip
    for table in one:
        assert fast[table] == one[table], table
    assert outbox_order(pdb, "steps_batch") == outbox_order(pdb, "steps_one")
    assert_invariants(pdb)
    # the data went through every kind of step, some applied by an event (no event id,
    # written before an event's own entries), and the batch read back to a due date
    kinds = {(t[2], t[7] is None) for t in one["tiers"]}
    assert {("upgrade", False), ("downgrade", True), ("assignment_expired", True)} <= kinds
    if grace:
        assert ("grace_started", True) in kinds and ("requalified", False) in kinds
    assert any(wider)
    # no step written after an event it should have come before: each member's timeline
    # is in date order
    for ref in {t[0] for t in one["tiers"]}:
        dates = [t[1] for t in one["tiers"] if t[0] == ref]
        assert dates == sorted(dates), ref


def _with_the_job_before_each_event(
    db: Database, metric: str, grace: int, start: datetime, middle: datetime,
    rows: list[dict[str, str]],
) -> str:  # fmt: skip
    """The same history, one event at a time, with the daily job run at each event's
    instant just before it (what the tiers should be); returns the program id."""
    text_ = STEPS.format(program_id="steps_oracle", metric=metric, grace=grace)
    processor = EventProcessor(db, parse_program(text_), clock=lambda: late_clock())
    for n, ref in enumerate(["s1", "s4", "s7"]):
        processor.enrol(ref, at=start - timedelta(days=10))
        processor.assign_tier(ref, ["gold", "silver", "gold"][n], at=start,
                              until=start + timedelta(days=20 + 45 * n, hours=n),
                              reason=f"goodwill {n}")  # fmt: skip
    for row in rows:
        when = datetime.fromisoformat(row["at"])
        if when > middle and processor.tier_standing("s2") is None:
            processor.enrol("s2", at=middle)
        if when > middle and not [t for t in processor.tier_timeline("s2")
                                  if t["reason"] == "goodwill 3"]:  # fmt: skip
            processor.review_tiers(middle)
            processor.assign_tier("s2", "gold", at=middle, until=middle + timedelta(hours=2),
                                  reason="goodwill 3")  # fmt: skip
        processor.review_tiers(when)
        fields = {k: v for k, v in row.items() if v and k in ("type", "member", "at", "amount")}
        processor.process(Event.model_validate({"id": row["event_id"], **fields}))
    processor.review_tiers(late_clock())
    return "steps_oracle"


def _timelines(data: dict[str, Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for t in data["tiers"]:
        found.setdefault(t[0], []).append(t[1:])
    return found


def late_clock() -> datetime:
    return datetime(2031, 1, 1, tzinfo=UTC)


def _no_fallback(original: Any) -> Any:
    """``process_one`` refusing to run for the batch path: a fallback to one event at a
    time would hide a difference (the single path, ``batch=False``, calls it directly)."""

    def guarded(processor: EventProcessor, conn: Any, event: Event) -> Any:
        if processor.program.id == "steps_batch":
            raise AssertionError("the batch path fell back to one event at a time")
        return original(processor, conn, event)

    return guarded
