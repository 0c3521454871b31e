"""Program KPIs from the program database, per month (or quarter, year) in the business
time zone. Read-only; the ledger's program-side accounts say where points went.

Per period P (points of one currency: ``currency``, by default the program's first
declared one, see :func:`_currencies`):

* members: joined in P, total at the end of P. Every enrolled member counts, however
  enrolled, an erased one too (under their tombstone: their points stay in the books).
  A member joined at the earlier of their recorded join date (``member_states.joined_at``:
  the first event's time for a member the event processor enrolled, the enrolment's
  ``joined_at`` for one imported or enrolled through the API, default the time of
  enrolment, or through ``fidelite member add --program FILE``; for a member enrolled
  straight in the ledger, ``fidelite member add`` with a program id or the demo, the
  enrolment's wall-clock time) and their first activity (first processed event,
  first ledger entry). Invariant: nobody buys or redeems before joining, so active and
  redeeming members never exceed the total; active = members with a purchase in P;
  active-member rate = active / total x 100;
* earned = points issued in P (net of refund reversals); redeemed (burn) = points spent
  on rewards or by operators in P (net of cancellations); expired = points expired in
  P (net of the expired points of purchases refunded in P: a refund moves them back out
  of breakage); adjusted = manual credits minus debits; written off = points a refund
  in P reversed (so taken out of earned) but could not take back from the member, who
  had spent them (``refunds.shortfall: within_balance``, the default: the program gives
  them up); burn rate = redeemed / earned x 100, null when earned <= 0 (a month whose
  only issue entry is a refund's reversal) or redeemed < 0 (cancellations of earlier
  redemptions outweighing the period's): a net flow of the wrong sign is no share;
* the books balance (double entry): per period, the change of (outstanding - owed) =
  earned - redeemed - expired + adjusted + written off; summed from the first period,
  outstanding - owed at the end of P;
* breakage rate (to date) = expired / (expired + redeemed) x 100, both cumulative to the
  end of P: of the points that reached an end, the share that lapsed unused (null when
  the sum is 0 or below);
* outstanding = points held by members (available + pending) at the end of P, never
  below 0; liability = outstanding x the point's money value (``value``, else the
  currency's ``value`` in the program file; the database keeps none). What members owe (debt
  from refund clawback) is reported apart as ``points_owed``, not netted: a member's
  debt does not lower what the program owes the other members;
* redemptions in P = spends of points made in P (rewards and operator spends, the
  ledger's spend entries) minus spends cancelled in P, as ``redeemed`` nets its points:
  a spend cancelled in a later period counts +1 in its period and -1 in the
  cancellation's (a partial reversal changes the points, not the count); redeeming
  members = members with a spend in P not cancelled within P; redemption rate =
  redeeming members / total members x 100; frequency = those members' spends made in P
  and not cancelled within P / redeeming members;
* member spend = purchases minus refunds in P, and per active member;
* cost of rewards = points redeemed in P x the currency's money value.

Rows run from the first to the last period holding something the rows count: a ledger
entry in the currency, a member joining, or a processed purchase or refund (a purchase
that earns none of the currency still makes its buyer active and its amount spend).
Ledger entries of the program's other currencies count in no column: they add no row.

With a transactions file (all customers, members or not) the result adds, over the
file: enrolment rate = customers who are members / all customers x 100, and the
average net spend per member customer and per non-member customer, and the program's
return over the file's days (first to last, local). A customer has at least one
purchase line in the file (refund lines alone make no customer); their net spend is
their purchases minus their refunds in the file. A member customer's reference is a
member's, or one a member held before being erased (recognised by the erasure
record's digest of program and reference, :func:`fidelite.processing.erased.ref_digest`:
the reference itself is kept nowhere), as erased members keep counting in
``members_total``:

* incremental revenue = (spend per member customer - spend per non-member customer) x
  member customers: what members spent beyond what the same number of non-members
  would have. A naive estimate: customers who join may have spent more anyway (self
  selection); for a causal figure, measure offers against a holdout
  (``fidelite metrics coupons``);
* cost of rewards = points redeemed in those days x the point's money value;
* ROI = (incremental revenue x margin - cost of rewards) / cost of rewards x 100, with
  ``margin`` the gross margin share (1 = count revenue as profit); null when the cost is
  0 or below (cancellations in those days of earlier redemptions).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
from sqlalchemy import Connection, text

from fidelite.analytics.engine import Dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.period import Period, bounds, label
from fidelite.analytics.metrics.result import (
    MONEY_PLACES,
    MetricResult,
    money,
    money_places,
    percent,
)
from fidelite.analytics.programdb import (
    database_name,
    missing_program,
    program_ids,
    program_source_name,
)
from fidelite.processing.erased import erased_refs
from fidelite.program import ProgramDefinition
from fidelite.program.currency import minor_unit
from fidelite.store import Database

_TRUNC = {"month": "month", "quarter": "quarter", "year": "year"}


def program_kpis(
    url: str,
    program_id: str,
    *,
    period: Period = "month",
    timezone: str | None = None,
    currency: str | None = None,
    value: Decimal | None = None,
    transactions: Dataset | None = None,
    margin: float = 1.0,
    program: ProgramDefinition | None = None,
    program_file: str | None = None,
    places: int | None = None,
) -> MetricResult:
    """KPI rows per period; ``value`` is the money value of one point (for liability).

    ``margin`` (0-1] is the gross margin applied to incremental revenue in the ROI.
    The database keeps no program definition: ``program`` (read from ``program_file``)
    gives the currency's ``value`` and the program's ``time_zone`` when ``value`` and
    ``timezone`` are not given; without either, no liability and UTC. The parameters
    state where each came from.

    Money figures are rounded to ``places`` decimals when given, else to the minor unit
    of the currency's ``money`` in ``program`` (KWD 3, JPY 0), else to cents. The
    parameters name the money (``money``: null without the program file). When the
    program's currencies are priced in different moneys, ``money_warning`` says so: the
    liability and cost of rewards are in the reported currency's money, member spend in
    the purchases' money, which the database does not record.
    """
    if not 0 < margin <= 1:
        raise ValueError("margin must be above 0 % and at most 100 %")
    if period not in _TRUNC:
        raise ValueError(f"program KPIs are per month, quarter or year, not {period!r}")
    if program is not None and program.id != program_id:
        raise InputError(
            f"the program file defines program '{program.id}', not '{program_id}' (the "
            "database's program): name the database as URL#PROGRAM or give its program file",
            file=program_file or "--program-file",
        )
    from_file = f"program file {program_file}" if program_file else "program file"
    zone_from = "--timezone" if timezone is not None else from_file if program else "default"
    if timezone is None:
        timezone = program.time_zone if program is not None else "UTC"
    zone = ZoneInfo(timezone)
    customers = _customers(transactions) if transactions is not None else None
    db = Database(url)
    try:
        with db.read() as conn:
            declared = None if program is None else [c.id for c in program.currencies]
            cur, held = _currency(conn, program_id, url, currency, declared)
            con = _load(conn, program_id, cur, zone)
            erased = _erased(conn, con, program_id, customers or [])
    finally:
        db.dispose()
    value_from = "--point-value" if value is not None else None
    if value is None and program is not None:
        value = _declared_value(program, cur, program_file, held)
        value_from = from_file
    code, places, places_from, warning = _money(program, cur, places, from_file)
    with money_places(places):
        rows = _rows(con, period, value)
        summary = {}
        if transactions is not None:
            summary = _member_spend(con, customers or [], erased)
            summary.update(_return(con, transactions, summary, value, margin))
    params = {
        "program": program_id,
        "currency": cur,
        "period": period,
        "timezone": timezone,
        "database": program_source_name(url, program_id),
        "point_value": value,
        "point_value_from": value_from,
        "timezone_from": zone_from,
        "margin": round(100 * margin, 4),
        "money": code,
        "money_places": places,
        "money_places_from": places_from,
        **({"money_warning": warning} if warning else {}),
        **_transactions_facts(transactions, timezone),
    }
    definition = (
        f"Per {period} in time zone {timezone}, in currency {cur} (default: the program's "
        "first declared currency that the program file declares, else its first), "
        "from the first to the last period with a ledger entry "
        "in the currency, a member joining or a processed purchase or refund: earned = "
        "issued net of refund reversals; redeemed = spent net of cancellations; expired = "
        "points the expiry job expired, in the period of its as-of date (net of the expired "
        "points of purchases refunded in the period); written off "
        "= points a refund reversed but could not take back from the member (spent: "
        "refunds.shortfall within_balance); so, per period, the change of (outstanding - "
        "owed) = earned - redeemed - expired + adjusted + written off; burn rate = redeemed / "
        "earned x 100 (null when earned <= 0 or redeemed < 0); breakage rate = expired / "
        "(expired + redeemed) x 100, "
        "cumulative to the end of the period (null when that sum <= 0); outstanding = "
        "members' available + pending at its end (liability = "
        "outstanding x point value (--point-value, else the currency's value in the program "
        "file; null without either); points owed by members in debt are reported apart, not "
        "netted); members = every enrolled member (erased ones too), joined at the earlier "
        "of their recorded join date (enrolled in the ledger only: the enrolment) and their "
        "first event or ledger entry, so active and redeeming members never exceed the total; "
        "active-member rate = members with a purchase / total "
        "members x 100; redemptions = spends of points made in the period - spends "
        "cancelled in it (a spend cancelled in a later period counts +1 in its period and -1 "
        "in the cancellation's, as redeemed counts its points); redeeming members = members "
        "with a spend in the period not cancelled within it; redemption rate = redeeming "
        "members / total members x 100; frequency = their spends not cancelled within the "
        "period / redeeming members; adjusted = manual credits - debits (goodwill, "
        "corrections; not in earned); member spend = purchases - refunds; "
        "cost of rewards = redeemed x point value. With transactions: a customer has a "
        "purchase in the file (refund lines alone make no customer), a member customer's "
        "reference is a member's or an erased member's (by the erasure record's digest); "
        "incremental revenue = "
        "(spend per member customer - per non-member customer) x member customers (naive: "
        "ignores self-selection); ROI = (incremental revenue x margin - cost of rewards over "
        "the file's days) / that cost x 100 (null when that cost <= 0). Money figures "
        f"are rounded to {places} decimals (the minor unit of the money, parameter "
        "money_places); liability and cost of rewards are in the currency's money "
        "(parameter money), member spend in the purchases' money."
    )
    return MetricResult("program-kpis", definition, params, rows, summary)


def _money(
    program: ProgramDefinition | None, currency: str, places: int | None, from_file: str
) -> tuple[str | None, int, str, str | None]:
    """The money of ``currency`` (its ISO 4217 code in the program file, else ``None``:
    the database keeps none), the decimals money figures are rounded to, where those
    came from, and a warning when the program's currencies are priced in different
    moneys (a liability in one is not to be added to one in another, nor compared with
    spend in a third)."""
    declared = {} if program is None else {c.id: c.money for c in program.currencies}
    code = declared.get(currency)
    warning = None
    if len(set(declared.values())) > 1:
        moneys = ", ".join(f"{c} in {m}" for c, m in declared.items())
        warning = (
            f"the program's currencies are priced in different moneys ({moneys}): "
            f"liability and cost of rewards are of {currency} only, in {code or 'its money'}; "
            "never add them to another currency's; member spend, incremental revenue and "
            "the ROI compare them with purchase amounts, whose money the database does not "
            "record"
        )
    if places is not None:
        return code, places, "--money-places", warning
    if code is not None:
        return code, minor_unit(code), f"money {code} of {currency} in the {from_file}", warning
    return code, MONEY_PLACES, "default", warning


def _declared_value(
    program: ProgramDefinition, currency: str, file: str | None, held: Sequence[str]
) -> Decimal:
    """The money value of one point of ``currency`` as the program file declares it.

    Refused when the file does not declare it, naming the currencies the database holds
    (``held``) and those the file declares: e.g. a currency renamed in the file since
    the program was opened on the database, whose points the database still holds under
    the old name."""
    for declared in program.currencies:
        if declared.id == currency:
            return declared.value
    names = ", ".join(c.id for c in program.currencies)
    raise InputError(
        f"the program file declares no currency '{currency}' (it declares {names}; the "
        f"database holds {', '.join(held)}): give --point-value, or --currency with one "
        "of both",
        file=file or "--program-file",
    )


def _currency(
    conn: Connection,
    program_id: str,
    url: str,
    asked: str | None,
    declared: Sequence[str] | None = None,
) -> tuple[str, list[str]]:
    """``asked`` when the program has that currency, else (``None``) its first one that
    the program file declares (``declared``: its currency ids), else its first one; with
    the program's currencies in the database.

    Raises :class:`InputError` naming the program's currencies when it has no ``asked``
    (no KPI row would count a point of it), or naming the database's programs when it
    holds no such program.
    """
    codes = _currencies(conn, program_id)
    if not codes:
        held = program_ids(conn)
        if program_id in held:  # opened without any currency: no point to count
            raise InputError(f"program '{program_id}' has no currency", file=database_name(url))
        raise missing_program(program_id, held, url)
    if asked is None:
        both = [code for code in codes if declared is None or code in declared]
        return (both or codes)[0], codes
    if asked not in codes:
        raise InputError(
            f"program '{program_id}' has no currency '{asked}'; its currencies: {', '.join(codes)}",
            file=database_name(url),
        )
    return asked, codes


def _currencies(conn: Connection, program_id: str) -> list[str]:
    """The program's currencies, first declared first (``fidelite program init`` declares
    ``points`` before ``stars``).

    The database keeps no program definition, only what opening the program wrote: its
    currencies and, for each, the program-side accounts, created in the declared order,
    so the currency whose accounts have the lowest ids came first. A currency added to
    the definition later comes after those opened before, wherever it is declared; the
    result's parameters always name the currency reported.
    """
    return [
        str(r[0])
        for r in conn.execute(
            text(
                "SELECT c.code FROM currencies c LEFT JOIN accounts a "
                "ON a.program_id = c.program_id AND a.currency = c.code "
                "AND a.member_id IS NULL WHERE c.program_id = :p "
                "GROUP BY c.code ORDER BY min(a.id) IS NULL, min(a.id), c.code"
            ),
            {"p": program_id},
        )
    ]


def _local(values: Sequence[Any], zone: ZoneInfo) -> list[datetime]:
    """Stored UTC times (naive on SQLite) as local wall-clock times of ``zone``."""
    out = []
    for v in values:
        if isinstance(v, str):  # SQLite returns raw text for untyped queries
            v = datetime.fromisoformat(v)
        aware = v.replace(tzinfo=UTC) if v.tzinfo is None else v
        out.append(aware.astimezone(zone).replace(tzinfo=None))
    return out


def _local_or_none(values: Sequence[Any], zone: ZoneInfo) -> list[datetime | None]:
    """As :func:`_local`, keeping ``None`` (a spend never cancelled)."""
    return [None if v is None else _local([v], zone)[0] for v in values]


def _utc(value: datetime | str | None) -> datetime | None:
    """A stored time (naive UTC, or raw text on SQLite) as an aware UTC datetime."""
    if value is None:
        return None
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _joined(conn: Connection, program_id: str) -> dict[str, datetime]:
    """Every member of the program and when they joined (UTC): the earlier of their
    recorded join date and their first activity.

    The recorded join date is ``member_states.joined_at``: the time of the first event
    for a member the event processor enrolled, but the enrolment's ``joined_at`` (default
    the time of enrolment) for one imported (``fidelite import members``) or enrolled
    through ``POST /v1/members``, whose history may hold earlier purchases. A member
    enrolled straight in the ledger (as the demo does) has no such row: their
    enrolment's wall-clock time (``members.created_at``) stands for it. The first
    activity is the earliest processed event or ledger entry (business times).
    Invariant: a member is counted from no later than their first purchase and first
    redemption, so active and redeeming members never exceed the members at the end of
    a period. Erased members keep counting: every table names them by their tombstone.
    """
    p = {"p": program_id}
    recorded: dict[str, datetime] = {}  # member -> recorded join date
    first: dict[str, datetime] = {}  # member -> first activity
    for ref, created, first_entry in conn.execute(
        text(
            "SELECT m.ref, m.created_at, min(t.occurred_at) FROM members m "
            "LEFT JOIN ledger_transactions t ON t.member_id = m.id "
            "WHERE m.program_id = :p GROUP BY m.id, m.ref, m.created_at"
        ),
        p,
    ).all():
        _keep(recorded, str(ref), _utc(created))
        _keep(first, str(ref), _utc(first_entry))
    for ref, joined_at in conn.execute(
        text("SELECT member_ref, joined_at FROM member_states WHERE program_id = :p"), p
    ).all():
        at = _utc(joined_at)
        if at is not None:  # the recorded join date wins over the ledger's enrolment time
            recorded[str(ref)] = at
    for ref, first_event in conn.execute(
        text(
            "SELECT member_ref, min(occurred_at) FROM processed_events "
            "WHERE program_id = :p GROUP BY member_ref"
        ),
        p,
    ).all():
        _keep(first, str(ref), _utc(first_event))
    return {
        ref: min(t for t in (recorded.get(ref), first.get(ref)) if t is not None)
        for ref in sorted(recorded.keys() | first.keys())
    }


def _keep(times: dict[str, datetime], ref: str, at: datetime | None) -> None:
    """Record ``at`` for ``ref`` unless it is unknown or ``ref`` has an earlier time."""
    if at is not None and (ref not in times or at < times[ref]):
        times[ref] = at


def _load(conn: Connection, program_id: str, currency: str, zone: ZoneInfo) -> Any:
    """Raw rows into an in-memory DuckDB (local wall-clock times)."""
    p = {"p": program_id, "c": currency}
    flows = conn.execute(
        text(
            "SELECT t.occurred_at, a.kind, SUM(po.points) FROM postings po "
            "JOIN accounts a ON a.id = po.account_id JOIN ledger_transactions t "
            "ON t.id = po.transaction_id WHERE t.program_id = :p AND t.currency = :c "
            "GROUP BY t.occurred_at, a.kind"
        ),
        p,
    ).all()
    events = conn.execute(
        text(
            "SELECT member_ref, occurred_at, type, amount FROM processed_events "
            "WHERE program_id = :p AND type IN ('purchase', 'refund')"
        ),
        p,
    ).all()
    # Every spend, with when it was cancelled (its last reversal, once it reversed all
    # its points): a cancellation is counted in its own period, as its points are.
    redemptions = conn.execute(
        text(
            "SELECT m.ref, t.occurred_at, CASE WHEN t.reversed_points >= t.points THEN "
            "(SELECT max(r.occurred_at) FROM ledger_transactions r WHERE r.reverses_id = t.id) "
            "END FROM ledger_transactions t JOIN members m "
            "ON m.id = t.member_id WHERE t.program_id = :p AND t.currency = :c "
            "AND t.kind = 'spend'"
        ),
        p,
    ).all()
    joined = _joined(conn, program_id)
    con = duckdb.connect()
    tables = {
        "flows": {
            "ts": _local([r[0] for r in flows], zone),
            "kind": [r[1] for r in flows],
            "points": [int(r[2]) for r in flows],
        },
        "members": {"ref": list(joined), "ts": _local(list(joined.values()), zone)},
        "events": {
            "ref": [r[0] for r in events],
            "ts": _local([r[1] for r in events], zone),
            "kind": [r[2] for r in events],
            "amount": [float(r[3] or 0) for r in events],
        },
        "redemptions": {
            "ref": [r[0] for r in redemptions],
            "ts": _local([r[1] for r in redemptions], zone),
            "cancelled": pa.array(
                _local_or_none([r[2] for r in redemptions], zone), pa.timestamp("us")
            ),
        },
    }
    for name, columns in tables.items():
        con.register(f"{name}_arrow", pa.table(columns))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
    return con


def _rows(con: Any, period: Period, value: Decimal | None) -> list[dict[str, Any]]:
    # Every period from the first to the last holding anything a row counts: ledger
    # entries in the currency, joins, processed purchases and refunds (active members,
    # spend), whether or not they earned points of the currency.
    first_last = con.execute(
        "SELECT min(ts), max(ts) FROM (SELECT ts FROM flows UNION ALL SELECT ts FROM members "
        "UNION ALL SELECT ts FROM events)"
    ).fetchall()[0]
    if first_last[0] is None:
        return []
    start, end = _index(first_last[0], period), _index(first_last[1], period)
    per = {}
    for i in range(start, end + 1):
        lo, hi = bounds(i, period)
        per[i] = _period_row(con, lo, hi, value)
        per[i] = {
            "period": label(i, period),
            "start": lo.isoformat(),
            "end": hi.isoformat(),
            **per[i],
        }
    return list(per.values())


def _index(at: datetime, period: Period) -> int:
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    return (at.year * 12 + at.month - 1) // months


def _period_row(con: Any, lo: Any, hi: Any, value: Decimal | None) -> dict[str, Any]:
    window = "ts >= CAST(? AS DATE) AND ts < CAST(? AS DATE) + INTERVAL 1 DAY"
    upto = "ts < CAST(? AS DATE) + INTERVAL 1 DAY"

    def one(sql: str, *args: Any) -> Any:
        return con.execute(sql, list(args)).fetchall()[0][0]

    def flow(kind: str, cond: str, *args: Any) -> int:
        return int(
            one(
                f"SELECT coalesce(sum(points), 0) FROM flows WHERE kind = ? AND {cond}", kind, *args
            )
        )

    earned = -flow("issued", window, lo, hi)
    redeemed = flow("redeemed", window, lo, hi)
    expired = flow("expired", window, lo, hi)
    adjusted = -flow("adjustment", window, lo, hi)
    # A refund's shortfall given up: the issue account took the points back (earned went
    # down), the member kept nothing to take them from; the program account holds it as
    # a negative, as the issue account holds what was issued.
    written_off = -flow("written_off", window, lo, hi)
    redeemed_all, expired_all = flow("redeemed", upto, hi), flow("expired", upto, hi)
    outstanding = int(
        one(
            "SELECT coalesce(sum(points), 0) FROM flows WHERE kind IN "
            f"('available', 'pending') AND {upto}",
            hi,
        )
    )
    owed = -flow("debt", upto, hi)  # a debt account holds what is owed as a negative
    total = int(one(f"SELECT count(*) FROM members WHERE {upto}", hi))
    new = int(one(f"SELECT count(*) FROM members WHERE {window}", lo, hi))
    active = int(
        one(f"SELECT count(DISTINCT ref) FROM events WHERE kind = 'purchase' AND {window}", lo, hi)
    )
    spend = _decimal(  # exact, so that the mean per member rounds as written
        one(
            "SELECT coalesce(sum(CASE WHEN kind = 'refund' THEN -amount ELSE amount "
            f"END), 0) FROM events WHERE {window}",
            lo,
            hi,
        )
    )
    cancelled_in = window.replace("ts", "cancelled")
    made, kept, redeemers = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE NOT coalesce({cancelled_in}, false)), "
        f"count(DISTINCT ref) FILTER (WHERE NOT coalesce({cancelled_in}, false)) "
        f"FROM redemptions WHERE {window}",
        [lo, hi, lo, hi, lo, hi],
    ).fetchall()[0]
    cancelled = int(one(f"SELECT count(*) FROM redemptions WHERE {cancelled_in}", lo, hi))
    return {
        "members_new": new,
        "members_total": total,
        "active_members": active,
        "active_member_rate": percent(active, total),
        "points_earned": earned,
        "points_redeemed": redeemed,
        "points_expired": expired,
        "points_adjusted": adjusted,
        "points_written_off": written_off,
        "burn_rate": _share(redeemed, earned) if redeemed >= 0 else None,
        "breakage_rate_to_date": _share(expired_all, expired_all + redeemed_all),
        "points_outstanding": outstanding,
        "points_owed": owed,
        "liability": money(outstanding * value) if value is not None else None,
        "redemptions": int(made) - cancelled,
        "redeeming_members": int(redeemers),
        "redemption_rate": percent(int(redeemers), total),
        "redemption_frequency": round(int(kept) / int(redeemers), 4) if redeemers else None,
        "member_spend": money(spend),
        "cost_of_rewards": money(redeemed * value) if value is not None else None,
        "spend_per_active_member": money(spend / Decimal(active)) if active else None,
    }


def _transactions_facts(transactions: Dataset | None, timezone: str) -> dict[str, Any]:
    """What the output states about the ``--input`` transactions (file, rows, date
    format, a date warning) and the engine: the database KPIs are computed in DuckDB,
    the members-vs-non-members figures on the transactions' engine. The transactions'
    time zone is stated apart only when it is not the KPIs' ``timezone``."""
    if transactions is None:
        return {"engine": "duckdb"}
    facts = transactions.describe()
    zone = facts.pop("timezone")
    return facts if zone == timezone else {**facts, "transactions_timezone": zone}


def _share(part: int, whole: int) -> float | None:
    """``part / whole x 100`` of a net points flow; ``None`` when ``whole <= 0``.

    A net flow can be 0 or negative (a period whose only issue entry is a refund's
    reversal: earned -90). A share of it is then no rate at all (-0.0 or a sign-flipped
    percentage would read as one), as with a zero denominator."""
    return percent(part, whole) if whole > 0 else None


def _customers(ds: Dataset) -> list[dict[str, Any]]:
    """The file's customers (``customer_id``, net ``spend``): those with at least one
    purchase line, as every metric counting the file's customers has them (refund lines
    alone make no customer); their spend is net of all their refund lines."""
    t = ds.transactions
    per = t.group_by("customer_id").aggregate(spend=t.amount.sum(), bought=(~t.is_refund).any())
    rows = ds.execute(per.filter(per.bought).select("customer_id", "spend")).to_pylist()
    return sorted(rows, key=lambda r: str(r["customer_id"]))


def _refs(con: Any) -> set[str]:
    """The references of the program's members (tombstones for erased ones)."""
    return {str(r[0]) for r in con.execute("SELECT ref FROM members").fetchall()}


def _erased(
    conn: Connection, con: Any, program_id: str, customers: list[dict[str, Any]]
) -> set[str]:
    """The file's customers who are no member now but were one, erased since: the
    erasure record keeps a digest of program and reference (never the reference), so a
    reference of the file is recognised by its digest, as an import recognises it."""
    refs = _refs(con)
    others = [str(r["customer_id"]) for r in customers if str(r["customer_id"]) not in refs]
    return set(erased_refs(conn, program_id, others)) if others else set()


def _member_spend(con: Any, rows: list[dict[str, Any]], erased: set[str]) -> dict[str, Any]:
    """Enrolment rate and spend of members vs non-members over a transactions file's
    customers (:func:`_customers`); ``erased``: those among them who were members,
    erased since (:func:`_erased`), member customers as their tombstones are members.

    Also returns the exact (unrounded, Decimal) means under ``_exact``: the incremental
    revenue and ROI are computed from them, never from the cents shown (152.625 shown as
    152.63 would move the incremental revenue of 4 members by 2 cents)."""
    refs = _refs(con) | erased
    members = [_decimal(r["spend"]) for r in rows if str(r["customer_id"]) in refs]
    others = [_decimal(r["spend"]) for r in rows if str(r["customer_id"]) not in refs]
    member_mean = sum(members, Decimal(0)) / len(members) if members else None
    other_mean = sum(others, Decimal(0)) / len(others) if others else None
    return {
        "customers": len(rows),
        "member_customers": len(members),
        "enrolment_rate": percent(len(members), len(rows)),
        "spend_per_member_customer": money(member_mean),
        "spend_per_non_member_customer": money(other_mean),
        "_exact": (member_mean, other_mean),
    }


def _decimal(amount: Any) -> Decimal:
    """A summed amount as a Decimal: the engines sum doubles, so the shortest decimal
    form of the double, cleared of summation noise below 1e-9 (0.1 + 0.2 -> 0.3)."""
    if isinstance(amount, Decimal):
        return amount
    return Decimal(repr(float(amount or 0))).quantize(Decimal("1e-9")).normalize()


def _return(
    con: Any, ds: Dataset, spend: dict[str, Any], value: Decimal | None, margin: float
) -> dict[str, Any]:
    """Incremental revenue, cost of rewards and ROI over the transactions file's days."""
    t = ds.transactions
    first, last = (
        ds.execute(t.aggregate(first=t.day.min(), last=t.day.max())).to_pylist()[0].values()
    )
    redeemed = int(
        con.execute(
            "SELECT coalesce(sum(points), 0) FROM flows WHERE kind = 'redeemed' AND "
            "ts >= CAST(? AS DATE) AND ts < CAST(? AS DATE) + INTERVAL 1 DAY",
            [first, last],
        ).fetchall()[0][0]
    )
    member, other = spend.pop("_exact")
    incremental = (
        None if member is None or other is None else (member - other) * spend["member_customers"]
    )
    cost = redeemed * value if value is not None else None
    roi = None
    # Net of cancellations the cost can be 0 or below (a redemption made before the
    # file's days, cancelled within them): a return on no outlay is undefined.
    if incremental is not None and cost is not None and cost > 0:
        gain = incremental * Decimal(repr(margin))
        roi = float(round(100 * (gain - cost) / cost, 4))
    return {
        "first_day": str(first)[:10],
        "last_day": str(last)[:10],
        "incremental_revenue": money(incremental),
        "points_redeemed": redeemed,
        "cost_of_rewards": money(cost),
        "roi": roi,
    }
