"""The two daily jobs at once, with each other and with members spending and earning,
on PostgreSQL (SQLite admits one writer at a time: nothing races there).

``expire`` releases a member's ended holds itself, in the member's transaction, with
the key and time ``release_due`` would use; members' spends release them too. Each
test races the jobs (and members) behind a :class:`threading.Barrier`, each worker on
its own :class:`~fidelite.ledger.Ledger` and pooled connection, over several members
and several days, and checks after every day:

* the books are sound (``assert_invariants``: every balance equals its entries);
* no lot is released or expired twice, no key is recorded twice, no member is expired
  twice on one day, and no spend draws a lot after its expiry took it;
* points are conserved: per member, earned = available + pending + spent + expired
  + reversed - owed, and the program's own accounts agree;
* the books equal those of the same calls made one after another in a second program
  (``ref``) of the same database: the jobs in either order (jobs alone), or the
  members' calls in the order they took their member's lock (with spends and earns),
  which each member's entries give by their ids. Every member call must answer the
  same there as in the race.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.ledger import Ledger, Rejected, assert_invariants
from fidelite.ledger.receipts import Receipt
from fidelite.ledger.service import JobReport
from fidelite.store import Database
from tests.conftest import make_database
from tests.support import T0

# Dozens of connections at once: never beside another such test (tests/conftest.py).
pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("one_at_a_time")]

DAY, HOUR = timedelta(days=1), timedelta(hours=1)
DAYS = range(4)
SETUP_AT = T0 + DAY
RACED, SERIAL = "shop", "ref"
KINDS = ("earn", "spend", "expire", "reverse")  # the entries that move points in or out


def day(k: int) -> datetime:
    """The as-of of day ``k``'s jobs (and the time of members' calls made "now")."""
    return T0 + (10 + k) * DAY


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = make_database("postgresql", request, tmp_path)
    yield database
    database.dispose()


# ------------------------------------------------------------------ the books


def books(db: Database, program: str) -> dict[str, Any]:
    """A program's books without ids, recording times or its name: entries (member, kind,
    key, points, time, currency, postings by account kind, member and lot), accounts
    (cached balance and sum of postings) and lots. A release's key names its earn by the
    earn's key instead of its id, so two programs with the same calls compare equal."""
    with db.read() as conn:
        keys = dict(
            conn.execute(
                text("SELECT id, idempotency_key FROM ledger_transactions WHERE program_id = :p"),
                {"p": program},
            ).all()
        )
        postings: dict[int, list[tuple[Any, ...]]] = {}
        for txn, kind, ref, earn, points in conn.execute(
            text(
                "SELECT p.transaction_id, a.kind, m.ref, l.earn_transaction_id, p.points "
                "FROM postings p JOIN accounts a ON a.id = p.account_id "
                "LEFT JOIN members m ON m.id = a.member_id "
                "LEFT JOIN lots l ON l.id = p.lot_id WHERE a.program_id = :p"
            ),
            {"p": program},
        ):
            lot = None if earn is None else keys[earn]
            postings.setdefault(txn, []).append((kind, ref, lot, int(points)))
        entries = sorted(
            (ref, kind, _named(key, keys), int(points), at, currency,
             tuple(sorted(postings.get(txn, []), key=repr)))
            for txn, ref, kind, key, points, at, currency in conn.execute(
                text(
                    "SELECT t.id, m.ref, t.kind, t.idempotency_key, t.points, t.occurred_at, "
                    "t.currency FROM ledger_transactions t "
                    "LEFT JOIN members m ON m.id = t.member_id WHERE t.program_id = :p"
                ),
                {"p": program},
            )
        )  # fmt: skip
        accounts = sorted(
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT COALESCE(m.ref, '-'), a.currency, a.kind, a.balance, "
                    "(SELECT COALESCE(SUM(p.points), 0) FROM postings p "
                    "WHERE p.account_id = a.id) FROM accounts a "
                    "LEFT JOIN members m ON m.id = a.member_id WHERE a.program_id = :p"
                ),
                {"p": program},
            )
        )
        lots = sorted(
            (keys[earn], points, remaining, state)
            for earn, points, remaining, state in conn.execute(
                text(
                    "SELECT earn_transaction_id, points, remaining, state FROM lots "
                    "WHERE program_id = :p"
                ),
                {"p": program},
            )
        )
    return {"entries": entries, "accounts": accounts, "lots": lots}


def _named(key: str, keys: dict[int, str]) -> str:
    if key.startswith("release:"):
        return "release:" + keys[int(key.removeprefix("release:"))]
    return key


def check_books(db: Database, program: str, ended_by: datetime) -> None:
    """The rules every state of the books keeps, races or not (see the module docstring);
    ``ended_by``: every hold ended by then has been released exactly once."""
    assert_invariants(db, program)
    p = {"p": program}
    with db.read() as conn:

        def rows(sql: str, params: dict[str, Any] = p) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(text(sql), params).all()]

        assert (
            rows(
                "SELECT idempotency_key FROM ledger_transactions WHERE program_id = :p "
                "GROUP BY idempotency_key HAVING COUNT(*) > 1"
            )
            == []
        )
        # each lot: at most one release and one expiry; a release for every ended hold
        per_lot = "SELECT l.id, t.kind, COUNT(DISTINCT t.id) FROM lots l " \
            "JOIN postings s ON s.lot_id = l.id JOIN ledger_transactions t " \
            "ON t.id = s.transaction_id WHERE l.program_id = :p " \
            "AND t.kind IN ('release', 'expire') GROUP BY l.id, t.kind"  # fmt: skip
        assert [r for r in rows(per_lot) if r[2] != 1] == []
        assert (
            rows(
                "SELECT l.id FROM lots l WHERE l.program_id = :p AND l.pending_until <= :at "
                "AND (l.state = 'pending' OR NOT EXISTS (SELECT 1 FROM ledger_transactions t "
                "WHERE t.kind = 'release' AND t.idempotency_key = 'release:' "
                "|| CAST(l.earn_transaction_id AS VARCHAR)))",
                p | {"at": ended_by},
            )
            == []
        )
        assert (
            rows(
                "SELECT member_id, currency, occurred_at FROM ledger_transactions "
                "WHERE program_id = :p AND kind = 'expire' "
                "GROUP BY member_id, currency, occurred_at HAVING COUNT(*) > 1"
            )
            == []
        )
        # no spend draws a lot after the expiry of that lot (its points are gone)
        assert (
            rows(
                "SELECT e.lot_id, s.transaction_id FROM postings e "
                "JOIN ledger_transactions te ON te.id = e.transaction_id AND te.kind = 'expire' "
                "JOIN postings s ON s.lot_id = e.lot_id AND s.transaction_id > e.transaction_id "
                "JOIN ledger_transactions ts ON ts.id = s.transaction_id AND ts.kind = 'spend' "
                "WHERE te.program_id = :p"
            )
            == []
        )
        moved = {
            (ref, currency): dict(zip(KINDS, map(int, r), strict=True))
            for ref, currency, *r in rows(
                "SELECT m.ref, t.currency, "
                + ", ".join(
                    f"COALESCE(SUM(CASE WHEN t.kind = '{kind}' THEN t.points END), 0)"
                    for kind in KINDS
                )
                + " FROM ledger_transactions t JOIN members m ON m.id = t.member_id "
                "WHERE t.program_id = :p GROUP BY m.ref, t.currency"
            )
        }
        # a spend dated before a lot's date that the expiry took claims those points
        # back from expired: they are counted in both the expiry and the spend
        claimed: dict[tuple[str, str], int] = {}
        for ref, currency, detail in rows(
            "SELECT m.ref, t.currency, t.detail FROM ledger_transactions t "
            "JOIN members m ON m.id = t.member_id WHERE t.program_id = :p "
            "AND t.kind = 'spend' AND t.detail IS NOT NULL"
        ):
            stored = json.loads(detail) if isinstance(detail, str) else detail
            claimed[(ref, currency)] = claimed.get((ref, currency), 0) + int(
                (stored or {}).get("from_expired_points", 0)
            )
        held: dict[tuple[str, str], dict[str, int]] = {}
        program: dict[tuple[str, str], int] = {}
        for ref, currency, kind, balance in rows(
            "SELECT COALESCE(m.ref, '-'), a.currency, a.kind, CASE WHEN a.member_id IS NULL "
            "THEN (SELECT COALESCE(SUM(s.points), 0) FROM postings s WHERE s.account_id = a.id) "
            "ELSE a.balance END FROM accounts a LEFT JOIN members m ON m.id = a.member_id "
            "WHERE a.program_id = :p"
        ):
            if ref == "-":
                program[(currency, kind)] = int(balance)
            else:
                held.setdefault((ref, currency), {})[kind] = int(balance)
    assert moved.keys() <= held.keys()
    totals = dict.fromkeys(KINDS, 0)
    for member, m in moved.items():
        have = held[member]
        assert m["earn"] == (
            have["available"] + have["pending"] + m["spend"] + m["expire"] + m["reverse"]
            + have["debt"] - claimed.get(member, 0)
        ), member  # fmt: skip
        totals = {kind: totals[kind] + m[kind] for kind in totals}
    for currency in {c for _, c in moved}:
        ours = {k: sum(v[k] for (_, c), v in moved.items() if c == currency) for k in totals}
        assert program.get((currency, "issued"), 0) == -(ours["earn"] - ours["reverse"])
        assert program.get((currency, "redeemed"), 0) == ours["spend"]
        assert program.get((currency, "expired"), 0) == ours["expire"] - sum(
            n for (_, c), n in claimed.items() if c == currency
        )


def last_id(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM ledger_transactions"))
                   .scalar_one())  # fmt: skip


def race(work: list[Callable[[], Any]]) -> list[Any]:
    """Run every callable on its own thread, all released at once by a barrier."""
    start = threading.Barrier(len(work))

    def run(job: Callable[[], Any]) -> Any:
        start.wait()
        return job()

    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        futures = [pool.submit(run, job) for job in work]
        return [f.result() for f in futures]


def summed(reports: list[JobReport]) -> tuple[int, int, dict[str, int]]:
    points: dict[str, int] = {}
    for report in reports:
        for currency, n in report.points.items():
            points[currency] = points.get(currency, 0) + n
    return sum(r.transactions for r in reports), sum(r.lots for r in reports), points


def flat(report: JobReport) -> tuple[int, int, dict[str, int]]:
    return report.transactions, report.lots, report.points


def open_programs(db: Database, refs: list[str]) -> Ledger:
    ledger = Ledger(db)
    for program in (RACED, SERIAL):
        ledger.open_program(program, ["points", "miles"])
        for ref in refs:
            ledger.create_member(program, ref)
    return ledger


def owe(ledger: Ledger, program: str, ref: str, points: int) -> None:
    """Leave ``ref`` owing ``points``: an earn spent, then reversed (shortfall to debt).
    Made before the member's other earns (a reversal's shortfall takes them first)."""
    owed = ledger.earn(program, ref, "points", points, key=f"{ref}-owed", at=T0,
                       expires_at=T0 + 2 * DAY)  # fmt: skip
    ledger.spend(program, ref, "points", points, key=f"{ref}-owing", at=T0)
    ledger.reverse(program, owed.transaction_id, key=f"{ref}-undo", shortfall="debt",
                   at=T0 + HOUR)  # fmt: skip


# ------------------------------------------------------------------ jobs with jobs

JOB_MEMBERS = [f"m{i}" for i in range(8)]


def job_history(ledger: Ledger, program: str) -> None:
    """Per member: debt (every third); a dated lot; a hold ending on day 0 expiring on
    day 2; a hold ending and expiring on day 1 (released and expired by the same run);
    a hold ending on day 3 without a date; miles held until day 2 (odd members); a lot
    dated an hour after day 2 (some)."""
    for i, ref in enumerate(JOB_MEMBERS):
        if i % 3 == 0:
            owe(ledger, program, ref, 60 + i)

        def earn(
            name: str, points: int, currency: str = "points", ref: str = ref, **dates: datetime
        ) -> None:
            ledger.earn(program, ref, currency, points, key=f"{ref}-{name}", at=SETUP_AT,
                        **dates)  # fmt: skip

        earn("free", 20 + i, expires_at=day(1))
        earn("hold-a", 100, pending_until=day(0) - HOUR, expires_at=day(2))
        earn("hold-b", 50 + i, pending_until=day(1) - 2 * HOUR, expires_at=day(1) - HOUR)
        earn("hold-c", 30, pending_until=day(3))
        if i % 2:
            earn("miles", 7 + i, "miles", pending_until=day(2), expires_at=day(3))
        if i % 4 == 1:
            earn("late", 15, expires_at=day(2) + HOUR)


@pytest.mark.parametrize("round_", range(2))
def test_expiry_and_release_jobs_at_once_write_the_books_of_one_after_the_other(
    db: Database, round_: int
) -> None:
    """Two expiry runs and two release runs at once, on each of four days: every ended
    hold is released once and every due point expired once, as by the jobs in turn."""
    ledger = open_programs(db, JOB_MEMBERS)
    for program in (RACED, SERIAL):
        job_history(ledger, program)
    workers = [Ledger(db) for _ in range(4)]
    for k in DAYS:
        when = day(k)
        expire = [lambda w=w, when=when: w.expire(RACED, when) for w in workers[:2]]
        release = [lambda w=w, when=when: w.release_due(RACED, when) for w in workers[2:]]
        jobs = expire + release if round_ % 2 == 0 else release + expire
        reports = race(jobs)

        first, second = (ledger.release_due, ledger.expire)
        if (k + round_) % 2:
            first, second = second, first
        serial = {f.__name__: f(SERIAL, when) for f in (first, second)}
        expired = reports[:2] if round_ % 2 == 0 else reports[2:]
        assert summed(expired) == flat(serial["expire"])
        for program in (RACED, SERIAL):
            check_books(db, program, when)
        assert books(db, RACED) == books(db, SERIAL), f"day {k}"
    # nothing left to release or expire; every lot expired but the undated holds and the
    # three spent then reversed (a dated earn that only repaid debt made no lot)
    assert flat(ledger.release_due(RACED, day(3))) == (0, 0, {})
    assert flat(ledger.expire(RACED, day(3))) == (0, 0, {})
    states = Counter(state for *_, state in books(db, RACED)["lots"])
    assert states == {"expired": 5 + 8 + 8 + 4 + 2, "spent": 3, "available": 8}


# ------------------------------------------------------------------ jobs with members

HOLDERS = [f"h{i}" for i in range(4)]  # ended holds (even: debt), the calls of "now"
SPENDERS = [f"s{i}" for i in range(4)]  # dated lots only, spends dated before expiry


@dataclass(frozen=True)
class Call:
    """A member's call of the race, made again as it is on the serial program."""

    op: str  # "spend" | "earn"
    ref: str
    key: str
    points: int
    at: datetime
    pending_until: datetime | None = None

    def make(self, ledger: Ledger, program: str) -> Any:
        """Its receipt, without ids (or the code of its rejection)."""
        try:
            if self.op == "spend":
                receipt = ledger.spend(program, self.ref, "points", self.points, key=self.key,
                                       at=self.at)  # fmt: skip
            else:
                receipt = ledger.earn(program, self.ref, "points", self.points, key=self.key,
                                      at=self.at, pending_until=self.pending_until)  # fmt: skip
        except Rejected as rejected:
            return rejected.code.value
        return _seen(receipt)


def _seen(r: Receipt) -> tuple[Any, ...]:
    return (r.kind, r.points, r.occurred_at, r.available_after, r.pending_after, r.debt_after,
            r.debt_repaid, sorted(m.points for m in r.lot_moves))  # fmt: skip


def member_history(ledger: Ledger, program: str) -> None:
    """Holders: even ones owe 60 and hold 40 a day (ending 2 h before the day's run,
    dated an hour before it on days 0 and 2, else a month after); odd ones have 30
    undated, 100 dated 6 h before each day's run and 40 a day held as above, dated an
    hour before the run. Spenders get their day's lots just before each race."""
    for i, ref in enumerate(HOLDERS):
        if i % 2 == 0:
            owe(ledger, program, ref, 60)
        else:
            ledger.earn(program, ref, "points", 30, key=f"{ref}-b", at=SETUP_AT)
        for k in DAYS:
            if i % 2:
                ledger.earn(program, ref, "points", 100, key=f"{ref}-a{k}", at=SETUP_AT,
                            expires_at=day(k) - 6 * HOUR)  # fmt: skip
            dated = i % 2 or k % 2 == 0
            ledger.earn(program, ref, "points", 40, key=f"{ref}-c{k}", at=SETUP_AT,
                        pending_until=day(k) - 2 * HOUR,
                        expires_at=day(k) - HOUR if dated else day(k) + 30 * DAY)  # fmt: skip


def spender_lots(ledger: Ledger, program: str, k: int) -> dict[str, int]:
    """Each spender's lots of day ``k`` (100 due 6 h before the run, 70 undated); what
    each could spend 12 h before the run."""
    spendable = {}
    for ref in SPENDERS:
        ledger.earn(program, ref, "points", 100, key=f"{ref}-a{k}", at=day(k) - DAY,
                    expires_at=day(k) - 6 * HOUR)  # fmt: skip
        ledger.earn(program, ref, "points", 70, key=f"{ref}-b{k}", at=day(k) - DAY)
        spendable[ref] = ledger.balance(program, ref, "points", as_of=day(k) - 12 * HOUR).available
    return spendable


@dataclass(frozen=True)
class Thread:
    """A member thread's calls, made in order; ``after_expiry``: it starts once the
    expiry job has committed its member's expiry of the day (the spend comes after the
    expiry for sure), else at the barrier with the jobs."""

    calls: list[Call]
    after_expiry: bool = False


def day_calls(k: int, spendable: dict[str, int], rng: random.Random) -> list[Thread]:
    """The calls of day ``k``, one thread each member's calls of "now", one each
    spender's early spend.

    Holders: at the run's time, a spend of 5 and an earn held until 3 h before the next
    run (in either order). Spenders: a spend dated 12 h before the run (before their
    100 expire) and one of 5 at the run's time, on two threads. An even spender's early
    spend needs the 100, an odd one's 60 draw them: before the expiry from the lot,
    after it claimed back from the expired points. One even
    spender a day, and odd ones at random, spend early only after the expiry: the
    others race it, and mostly win (the job reaches them after their spend)."""
    now = day(k)
    threads = []
    for ref in HOLDERS:
        calls = [
            Call("spend", ref, f"{ref}-s{k}", 5, now),
            Call("earn", ref, f"{ref}-e{k}", 20, now, pending_until=day(k + 1) - 3 * HOUR),
        ]
        rng.shuffle(calls)
        threads.append(Thread(calls))
    for i, ref in enumerate(SPENDERS):
        early = spendable[ref] - 5 if i % 2 == 0 else 60
        after = i == 2 * (k % 2) if i % 2 == 0 else rng.random() < 0.5
        threads.append(Thread([Call("spend", ref, f"{ref}-early{k}", early, now - 12 * HOUR)],
                              after))  # fmt: skip
        threads.append(Thread([Call("spend", ref, f"{ref}-now{k}", 5, now)]))
    return threads


def wait_for_expiry(db: Database, ref: str, when: datetime, ended: list[bool]) -> None:
    """Return once the member's expiry at ``when`` is committed (polled); fail once both
    expiry runs have ended (``ended`` holds one entry per run) without it."""
    query = text(
        "SELECT COUNT(*) FROM ledger_transactions t JOIN members m ON m.id = t.member_id "
        "WHERE t.program_id = :p AND m.ref = :r AND t.kind = 'expire' AND t.occurred_at = :at"
    )
    for _ in range(3000):
        over = len(ended) == 2
        with db.read() as conn:
            if conn.execute(query, {"p": RACED, "r": ref, "at": when}).scalar_one():
                return
        if over:
            break
        time.sleep(0.01)
    raise AssertionError(f"no expiry of {ref} at {when}")


def replay(
    db: Database,
    ledger: Ledger,
    when: datetime,
    since: int,
    calls: dict[str, Call],
    answers: dict[str, Any],
) -> tuple[int, int, dict[str, int]]:
    """Make the race's calls again on the serial program, one after another, in the order
    each member's entries of the race took its lock (their ids): each member's entries
    before its expiry, the expiry job, the release job, then the entries after its
    expiry, then the refused calls (a refusal changes nothing, so it may come last).
    A release is made with the key and time the race recorded. Returns the expiry job's
    report; every member call must answer as it did in the race."""
    with db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT t.id, m.ref, t.kind, t.idempotency_key, t.occurred_at "
                "FROM ledger_transactions t JOIN members m ON m.id = t.member_id "
                "WHERE t.program_id = :p AND t.id > :since ORDER BY t.id"
            ),
            {"p": RACED, "since": since},
        ).all()
        keys = dict(conn.execute(text("SELECT id, idempotency_key FROM ledger_transactions "
                                      "WHERE program_id = :p"), {"p": RACED}).all())  # fmt: skip
        serial_ids = {key: txn for txn, key in conn.execute(text(
            "SELECT id, idempotency_key FROM ledger_transactions WHERE program_id = :p"),
            {"p": SERIAL}).all()}  # fmt: skip
    before: list[Any] = []
    after: list[Any] = []
    expired: set[str] = set()
    for row in rows:
        if row.kind == "expire":
            assert row.ref not in expired, f"{row.ref} expired twice"
            expired.add(row.ref)
        else:
            (after if row.ref in expired else before).append(row)

    def again(row: Any) -> None:
        if row.kind == "release":
            earn = serial_ids[keys[int(row.idempotency_key.removeprefix("release:"))]]
            ledger.release(SERIAL, earn, key=f"release:{earn}", at=row.occurred_at)
            return
        assert row.kind in ("spend", "earn"), row
        call = calls[row.idempotency_key]
        assert call.make(ledger, SERIAL) == answers[call.key], call

    for row in before:
        again(row)
    report = ledger.expire(SERIAL, when)
    assert flat(ledger.release_due(SERIAL, when)) == (0, 0, {})
    for row in after:
        again(row)
    written = {row.idempotency_key for row in rows}
    for call in calls.values():
        if call.key not in written:
            assert isinstance(answers[call.key], str), call
            assert call.make(ledger, SERIAL) == answers[call.key], call
    return flat(report)


@dataclass
class Day:
    when: datetime
    calls: dict[str, Call] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    expired: list[bool] = field(default_factory=list)  # an entry per expiry run ended


@pytest.mark.parametrize("round_", range(2))
def test_spends_and_earns_racing_the_jobs_write_the_books_of_their_order(
    db: Database, round_: int
) -> None:
    """Each day: two expiry runs, a release run and twelve member threads at once.
    Spends dated before their lots' expiry race that expiry: a spend draws those lots
    whether the expiry ran first or not (claiming back the points it took), and no
    point is both spent and expired."""
    rng = random.Random(round_)
    # interleaved: the expiry job meets spenders and holders in turn (member id order)
    ledger = open_programs(
        db, [ref for pair in zip(SPENDERS, HOLDERS, strict=True) for ref in pair]
    )
    for program in (RACED, SERIAL):
        member_history(ledger, program)
    for k in DAYS:
        spendable = spender_lots(ledger, RACED, k)
        assert spender_lots(ledger, SERIAL, k) == spendable
        since = last_id(db)
        when = day(k)
        today = Day(when)
        threads = day_calls(k, spendable, rng)
        today.calls = {c.key: c for thread in threads for c in thread.calls}

        def member(thread: Thread, today: Day = today) -> None:
            own = Ledger(db)
            if thread.after_expiry:
                wait_for_expiry(db, thread.calls[0].ref, today.when, today.expired)
            for call in thread.calls:
                today.answers[call.key] = call.make(own, RACED)

        def expire(today: Day = today) -> Any:
            try:
                return Ledger(db).expire(RACED, today.when)
            finally:
                today.expired.append(True)

        jobs: list[Callable[[], Any]] = [
            expire,
            expire,
            lambda when=when: Ledger(db).release_due(RACED, when),
        ]
        work = jobs + [lambda thread=thread: member(thread) for thread in threads]
        order = list(range(len(work)))
        rng.shuffle(order)
        done = dict(zip(order, race([work[i] for i in order]), strict=True))
        expired = summed([done[0], done[1]])

        answers = today.answers
        refused = {key for key, answer in answers.items() if isinstance(answer, str)}
        assert {answers[key] for key in refused} <= {"insufficient_points"}
        # refused: on day 0 the holders who owe more than that day's release repays; an
        # early spend is not, even after the expiry (it claims the expired points back)
        assert refused == ({"h0-s0", "h2-s0"} if k == 0 else set())
        check_books(db, RACED, day(k))

        assert replay(db, ledger, when, since, today.calls, answers) == expired
        check_books(db, SERIAL, day(k))
        assert books(db, RACED) == books(db, SERIAL), f"day {k}"
    # nothing left for the jobs of the last day
    assert flat(ledger.expire(RACED, day(3))) == (0, 0, {})
    assert flat(ledger.release_due(RACED, day(3))) == (0, 0, {})
