"""``fidelite ledger``: balances, history, operator moves, jobs and the books check."""

from __future__ import annotations

import csv
import shlex
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape

from fidelite.cli.common import open_ledger, run
from fidelite.cli.options import (
    CurrencyOption,
    DbOption,
    FormatOption,
    OnlyProgramOption,
    TableJsonOption,
    ledger_currencies,
    ledger_currency,
)
from fidelite.cli.output import OutputFormat, console, fail, print_json, print_rows
from fidelite.cli.policy import (
    JOB_AS_OF_HELP,
    JOB_NOT_LATER,
    LEDGER_LOOK_AHEAD,
    JobProgram,
    JobProgramOption,
    ProgramFileOption,
    job_as_of,
    job_moment,
    job_program,
)
from fidelite.cli.processor import moment, progress_bar
from fidelite.ledger import Ledger, Receipt, Shortfall
from fidelite.ledger.credits import Credit, credit_all
from fidelite.ledger.errors import PROGRAM_SHORTFALL_HINT, Rejected, RejectionCode
from fidelite.ledger.invariants import find_violations
from fidelite.ledger.validation import derived_key
from fidelite.processing import EventProcessor
from fidelite.program import load_program
from fidelite.program.policy import ExpiryMode

app = typer.Typer(
    help="Points ledger: balances, history, earn/spend/adjust, jobs.\n\n"
    "Example: fidelite ledger balance CARD-0001 --program-file program.yaml",
    no_args_is_help=True,
)

MAX_ID = 2**63 - 1
"""The largest id the database stores (64-bit): as the API, a larger id is a usage error."""
KeyOption = typer.Option(..., "--key", "-k", help="Idempotency key: a retry with it posts once.")
DATE_HELP = (
    "ISO 8601 with offset, or a date: its midnight in the program's time zone when the "
    "program file is given (--program FILE or --program-file), else midnight UTC."
)
"""How the ledger's moves read ``--at``, ``--expires`` and ``--pending-until``."""
AtOption = typer.Option(None, "--at", help=f"Business time (default: now): {DATE_HELP}")
ZoneFileOption = typer.Option(
    None,
    "--program-file",
    "-P",
    help="Program definition (YAML): its time zone is the one a bare date is read in.",
)
EarnFileOption = typer.Option(
    None,
    "--program-file",
    "-P",
    help="Program definition (YAML): its time zone is the one a bare date is read in, and "
    "its after_earning expiry policy dates the points unless --expires is given.",
)
UTC_ZONE = ZoneInfo("UTC")


def _moment(
    text: str | None, option: str, target: JobProgram, fmt: OutputFormat
) -> datetime | None:
    """A date or time option as the ledger reads it: a date is its midnight in the
    program's time zone when the program file is known (as ``ledger balance --as-of``,
    ``ledger expire`` and ``tier review`` read it), else midnight UTC (a program id alone
    does not tell the zone). One that is not ISO 8601, lacks an offset or leaves the
    calendar once in UTC is a usage error naming the option, before anything is read or
    written."""
    return None if text is None else moment(text, option, target.zone or UTC_ZONE, fmt)


def _instant(value: datetime, zone: ZoneInfo | None) -> str:
    """An instant as ISO 8601 with its offset, in the program's time zone when known: a
    bare UTC date would name the day before for points expiring at local midnight east
    of UTC."""
    return value.astimezone(zone or UTC_ZONE).isoformat()


def _show_receipt(receipt: Receipt, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        print_json(receipt.to_json() | {"replayed": receipt.replayed})
        return
    note = " (replayed: already done with this key)" if receipt.replayed else ""
    console.print(
        f"[bold]{receipt.kind}[/] #{receipt.transaction_id}: {receipt.points} {receipt.currency} "
        f"for {receipt.member_ref}{note} — available {receipt.available_after}, "
        f"pending {receipt.pending_after}, debt {receipt.debt_after}"
    )
    extras = {
        k: v
        for k, v in {
            "debt repaid": receipt.debt_repaid,
            "shortfall": receipt.shortfall,
            "written off": receipt.written_off,
            "debt added": receipt.debt_added,
        }.items()
        if v
    }
    if extras:
        console.print("  " + ", ".join(f"{k} {v}" for k, v in extras.items()))


@app.command("open")
def open_program(
    program: str = typer.Argument(..., help="Program id to create."),
    currency: list[str] = typer.Option(
        ["points"], "--currency", "-c", help="Currency (repeatable)."
    ),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Create a program and its point currencies (existing ones are kept).

    Example: fidelite ledger open default --currency points --currency miles
    """
    ledger = open_ledger(db, fmt)
    run(lambda: ledger.open_program(program, currency), fmt)
    if fmt is OutputFormat.json:
        print_json({"program": program, "currencies": currency})
    else:
        console.print(f"program [bold]{program}[/] open with {', '.join(currency)}")


@app.command()
def balance(
    member: str = typer.Argument(..., help="Member reference."),
    program: str | None = JobProgramOption,
    program_file: Path | None = ProgramFileOption,
    currency: str | None = CurrencyOption,
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help=f"Date or time (default: now), not before the member's latest ledger move: "
        f"{JOB_AS_OF_HELP}",
    ),
    soon_days: int = typer.Option(30, help="Window for 'expiring soon', in days."),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """A member's available, pending, expiring-soon points and debt.

    Points past their expiry date are not available. Under an inactivity policy give
    the program file (--program-file) so that points that lapsed are not counted as
    available either, even before the expiry job has moved them out.

    Pending points whose hold has ended by --as-of are counted as available (and in
    expiring soon) before the release job writes their release, debt repaid first.

    --as-of looks ahead: the balance counts the points held now and applies the date to
    holds, expiry dates and inactivity deadlines. An --as-of before the member's latest
    ledger move in the currency is refused (exit 2): the balance then is not recorded as
    such; `fidelite ledger history` lists every move with its time.

    A date given as --as-of is its midnight in the program's time zone when the program
    file is given (--program FILE or --program-file), as for `fidelite ledger expire`;
    with a program id only the zone is unknown, so it is midnight UTC (give a time with
    its offset, e.g. 2026-12-31T00:00:00+01:00, to ask for another instant). The next
    expiry (and, with -f json, as_of) is shown as an instant with its offset, in the
    program's time zone when the program file is given, else in UTC.

    Example: fidelite ledger balance CARD-0001 --program shop.yaml --as-of 2026-12-31 -f json

    Example: fidelite ledger balance CARD-0001 --program-file program.yaml
    """
    target = job_program(program, program_file, fmt)
    when = None if as_of is None else job_moment(as_of, target, fmt)
    ledger = open_ledger(db, fmt)
    currencies = ledger_currencies(currency, target, ledger, fmt)
    if when is not None and as_of is not None:
        for cur in currencies:
            latest = run(partial(ledger.latest_move, target.id, member, cur), fmt)
            if latest is not None and when < latest:
                _refuse_past_balance(as_of, when, latest, member, target.id, cur, target.zone, fmt)
    shown = []
    for cur in currencies:
        b = run(
            partial(ledger.balance, target.id, member, cur, as_of=when, soon_days=soon_days,
                    policy=target.policy, zone=target.zone),
            fmt,
        )  # fmt: skip
        one = asdict(b)
        # both instants as the table shows them: in the program's zone when known
        one["as_of"] = _instant(b.as_of, target.zone)
        if b.next_expiry is not None:
            one["next_expiry"] = _instant(b.next_expiry, target.zone)
        shown.append(one)
    if fmt is OutputFormat.json:  # the default currency's object, as scripts read it
        others = {"other_currencies": shown[1:]} if len(shown) > 1 else {}
        print_json(shown[0] | others)
        return
    for one in shown:
        nxt = f", next expiry {one['next_expiry']}" if one["next_expiry"] else ""
        console.print(
            f"[bold]{one['member_ref']}[/] {one['currency']}: available "
            f"[bold green]{one['available']}[/], pending {one['pending']}, expiring within "
            f"{one['expiring_window_days']} days {one['expiring_soon']}, debt {one['debt']}{nxt}"
        )


def _refuse_past_balance(
    text: str,
    when: datetime,
    latest: datetime,
    member: str,
    program: str,
    currency: str,
    zone: ZoneInfo | None,
    fmt: OutputFormat,
) -> None:
    """Refuse a balance asked for before the member's latest move (exit 2): it would
    count the lots as they are now, moves made after that date included.

    The `ledger history` it points to names the program (and a currency other than the
    default), so that it runs as written: without them it reads program 'default'."""
    at, last = _instant(when, zone), _instant(latest, zone)
    look = f"fidelite ledger history {shlex.quote(member)} --program {shlex.quote(program)}"
    if currency != "points":
        look += f" --currency {shlex.quote(currency)}"
    fail(
        f"--as-of {text.strip()} ({at}) is before {member}'s latest ledger move ({last}):"
        " the balance counts the points held now (earned, spent, refunded and expired"
        " since then included) and can only look ahead from that move; see"
        f" `{look}` for the moves before it",
        code="usage",
        fmt=fmt,
        field="as_of",
        as_of=at,
        latest_move=last,
    )


@app.command()
def history(
    member: str = typer.Argument(..., help="Member reference."),
    program: str | None = JobProgramOption,
    program_file: Path | None = ZoneFileOption,
    currency: str | None = typer.Option(None, "--currency", "-c", help="Only this currency."),
    limit: int = typer.Option(50, help="Rows per page (1-1000)."),
    before: int | None = typer.Option(
        None, min=1, max=MAX_ID, help="Page: transactions before this id."
    ),
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Every move on a member's points, most recently recorded first, with reason and source.

    The ledger is append-only and lists moves in the order they were recorded, not by
    their business time (occurred_at): a purchase dated earlier but imported later is
    listed above the moves recorded before it. Pages follow the same order (--before ID).

    occurred_at is shown with its offset in the program's time zone when the program
    file is given (--program FILE or --program-file), else in UTC.

    Example: fidelite ledger history CARD-0001 --program shop.yaml --limit 20

    Example: fidelite ledger history CARD-0001 --program program.yaml
    """
    target = job_program(program, program_file, fmt)
    ledger = open_ledger(db, fmt)
    rows = run(
        lambda: ledger.history(target.id, member, currency=currency, limit=limit,
                               before_id=before),
        fmt,
    )  # fmt: skip
    shown = [asdict(r) for r in rows]
    if target.zone is not None:
        for row in shown:
            row["occurred_at"] = row["occurred_at"].astimezone(target.zone)
    print_rows(
        shown,
        fmt,
        title=f"{member} — ledger history",
        columns=[
            "transaction_id",
            "occurred_at",
            "kind",
            "currency",
            "available_change",
            "pending_change",
            "debt_change",
            "reason",
            "source",
            "actor",
            "reverses_id",
        ],
    )


@app.command()
def earn(
    member: str = typer.Argument(..., help="Member reference."),
    points: int = typer.Argument(..., help="Points to credit (> 0)."),
    key: str = KeyOption,
    program: str | None = JobProgramOption,
    program_file: Path | None = EarnFileOption,
    currency: str | None = CurrencyOption,
    at: str | None = AtOption,
    expires: str | None = typer.Option(
        None, "--expires", help=f"When the points expire: {DATE_HELP}"
    ),
    pending_until: str | None = typer.Option(
        None, help=f"Hold the points until this moment: {DATE_HELP}"
    ),
    reason: str = typer.Option("earn", help="Why the points are given."),
    source: str | None = typer.Option(None, help="What caused it, e.g. order:1234."),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Credit points to a member (operators; tills go through events).

    A date (--at, --expires, --pending-until) is its midnight in the program's time
    zone when the program file is given (--program FILE or --program-file), as for
    `ledger balance --as-of` and `ledger expire`: --expires 2027-03-28 with a New York
    program ends the points at 2027-03-28T00:00:00-04:00. With a program id only the
    zone is unknown, so a date is midnight UTC.

    Without --expires, when the program file is given and its policy dates points
    after earning (expiry: {mode: after_earning}), the points get the date an earned
    lot gets from --at; --expires wins. With a program id only they never expire.
    A --pending-until at or after that date is refused, as one at or after --expires.
    Under expiry: {mode: inactivity} a --pending-until at or after the deadline the
    earn itself sets (--at plus the policy's months) is refused too: the points would
    lapse still on hold if the member did nothing more.

    Example: fidelite ledger earn CARD-0001 120 -p shop.yaml --key order-1234 --expires 2027-11-30

    Example: fidelite ledger earn CARD-0001 50 -k gw-1 -p program.yaml --expires 2027-03-28
    """
    target = job_program(program, program_file, fmt)
    when, expiry = _moment(at, "--at", target, fmt), _moment(expires, "--expires", target, fmt)
    held = _moment(pending_until, "--pending-until", target, fmt)
    ledger = open_ledger(db, fmt)
    currency = ledger_currency(currency, target, ledger, fmt)
    receipt = run(
        lambda: ledger.earn(
            target.id,
            member,
            currency,
            points,
            key=key,
            at=when,
            expires_at=expiry,
            pending_until=held,
            reason=reason,
            source=source,
            policy=target.policy,
            zone=target.zone,
        ),
        fmt,
    )
    _show_receipt(receipt, fmt)


@app.command()
def spend(
    member: str = typer.Argument(..., help="Member reference."),
    points: int = typer.Argument(..., help="Points to spend (> 0)."),
    key: str = KeyOption,
    program: str | None = JobProgramOption,
    program_file: Path | None = ProgramFileOption,
    currency: str | None = CurrencyOption,
    at: str | None = AtOption,
    reason: str = typer.Option("spend", help="What the points pay for."),
    source: str | None = typer.Option(None, help="Reference, e.g. reward:coffee."),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Spend a member's points, soonest-expiring first.

    Points past their expiry date cannot be spent. Under an inactivity policy give the
    program file (--program-file) so that points that lapsed cannot be either, even
    before the expiry job has moved them out.

    A date given as --at is its midnight in the program's time zone when the program
    file is given, else midnight UTC.

    Example: fidelite ledger spend CARD-0001 50 -p shop.yaml --key redeem-77 --reason "coffee"
    """
    target = job_program(program, program_file, fmt)
    when = _moment(at, "--at", target, fmt)
    ledger = open_ledger(db, fmt)
    currency = ledger_currency(currency, target, ledger, fmt)
    receipt = run(
        lambda: ledger.spend(target.id, member, currency, points, key=key, at=when,
                             reason=reason, source=source, policy=target.policy,
                             zone=target.zone),
        fmt,
    )  # fmt: skip
    _show_receipt(receipt, fmt)


@app.command()
def adjust(
    member: str = typer.Argument(..., help="Member reference."),
    points: int = typer.Argument(..., help="Points: positive credits, negative debits."),
    reason: str = typer.Option(..., help="Why (kept on the member's history)."),
    actor: str = typer.Option(..., help="Who decided (kept on the member's history)."),
    key: str = KeyOption,
    program: str | None = JobProgramOption,
    program_file: Path | None = ProgramFileOption,
    currency: str | None = CurrencyOption,
    at: str | None = AtOption,
    expires: str | None = typer.Option(
        None, "--expires", help=f"When a credit's points expire: {DATE_HELP}"
    ),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Manual credit (goodwill) or debit (correction), with reason and actor.

    A debit needs `--` before the arguments so the minus sign is not read as an option.
    A debit draws points as spend does: give --program-file under an inactivity policy.
    A date (--at, --expires) is its midnight in the program's time zone when the program
    file is given, else midnight UTC. A credit without --expires gets, when the program
    file is given and its policy dates points after earning, the date an earned lot
    gets from --at; --expires wins. With a program id only it never expires.

    Example: fidelite ledger adjust CARD-0001 200 -p shop.yaml --reason outage --actor ops -k ops-7
    """
    target = job_program(program, program_file, fmt)
    when, expiry = _moment(at, "--at", target, fmt), _moment(expires, "--expires", target, fmt)
    ledger = open_ledger(db, fmt)
    currency = ledger_currency(currency, target, ledger, fmt)
    receipt = run(
        lambda: ledger.adjust(target.id, member, currency, points, key=key, at=when,
                              reason=reason, actor=actor, expires_at=expiry,
                              policy=target.policy, zone=target.zone),
        fmt,
    )  # fmt: skip
    _show_receipt(receipt, fmt)


@app.command()
def reverse(
    transaction: int = typer.Argument(
        ..., min=1, max=MAX_ID, help="Id of the transaction to reverse."
    ),
    key: str = KeyOption,
    points: int | None = typer.Option(None, help="Reverse only this many points."),
    shortfall: Shortfall = typer.Option(Shortfall.REJECT, help="If the points were already spent."),
    program: str | None = JobProgramOption,
    program_file: Path | None = ZoneFileOption,
    at: str | None = AtOption,
    reason: str = typer.Option("reversal", help="Why (e.g. refund of order:1234)."),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Reverse all or part of a transaction with compensating entries.

    A date given as --at is its midnight in the program's time zone when the program
    file is given, else midnight UTC.

    Example: fidelite ledger reverse 42 --program shop.yaml --key refund-1234 --shortfall debt
    """
    target = job_program(program, program_file, fmt)
    when = _moment(at, "--at", target, fmt)
    ledger = open_ledger(db, fmt)

    def reverse() -> Receipt:
        try:
            return ledger.reverse(target.id, transaction, key=key, points=points,
                                  shortfall=shortfall, at=when, reason=reason)  # fmt: skip
        except Rejected as exc:  # points_already_spent names this command's option
            if exc.code is not RejectionCode.POINTS_ALREADY_SPENT:
                raise
            message = exc.message.replace(PROGRAM_SHORTFALL_HINT, _CLI_SHORTFALL_HINT)
            raise Rejected(exc.code, message, field=exc.field, detail=exc.detail) from None

    _show_receipt(run(reverse, fmt), fmt)


_CLI_SHORTFALL_HINT = "to reverse them anyway, give --shortfall within_balance or debt"


@app.command()
def release(
    transaction: int = typer.Argument(
        ..., min=1, max=MAX_ID, help="Id of the earn whose points are pending."
    ),
    key: str = KeyOption,
    program: str | None = JobProgramOption,
    program_file: Path | None = ZoneFileOption,
    at: str | None = AtOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Make an earn's pending points available now.

    A date given as --at is its midnight in the program's time zone when the program
    file is given, else midnight UTC.

    Example: fidelite ledger release 42 --program shop.yaml --key release-42
    """
    target = job_program(program, program_file, fmt)
    when = _moment(at, "--at", target, fmt)
    ledger = open_ledger(db, fmt)
    _show_receipt(run(lambda: ledger.release(target.id, transaction, key=key, at=when), fmt), fmt)


def _job(name: str, action: Any, fmt: OutputFormat) -> dict[str, Any]:
    """Run a daily job with a progress bar (on stderr, none for JSON) and its report.

    The report's ``points`` is ``{currency id: points}``, currencies in id order: the
    job never adds up points of different currencies.
    """
    with progress_bar(name, fmt) as progress:
        report = run(lambda: action(progress), fmt)
    shown = asdict(report)
    shown["points"] = dict(sorted(report.points.items()))
    return shown


def _per_currency(points: dict[str, int]) -> str:
    """``131 points, 2 stars``: one total per currency, named by its id (``0 points``
    when the job moved nothing)."""
    return ", ".join(f"{amount} {currency}" for currency, amount in points.items()) or "0 points"


@app.command()
def expire(
    as_of: str = typer.Option(
        ...,
        "--as-of",
        help=f"Expire points due at or before this date or time: {JOB_AS_OF_HELP}{JOB_NOT_LATER}",
    ),
    program: str | None = JobProgramOption,
    program_file: Path | None = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Expiry job: move every due lot's remainder out with an expiry entry (re-runnable).

    Lots with an expiry date expire on it, pending ones whose hold has ended by
    --as-of too: the job first records their release (the entry `ledger release-due`
    would write at --as-of), so the two daily jobs can run in either order and give
    the same books. Under an inactivity policy
    (expiry: {mode: inactivity, months: N}) lots carry no date: give the program file
    with --program-file so the job applies it (all points lapse N months after the
    member's last activity).

    A date given as --as-of is its midnight in the program's time zone when the program
    file is given, as for `fidelite tier review`; with a program id only, midnight UTC.
    An --as-of later than now is refused (exit 2, nothing changed): the job would expire
    those points at once, for good; `ledger balance --as-of` looks ahead.

    The report gives one total per currency, by currency id ("expired 131 points,
    2 stars"); -f json gives them as "points": {"points": 131, "stars": 2}, and
    "as_of" as the instant applied, with its offset ("2026-11-30T23:00:00+00:00"
    for 2026-12-01 in Paris), as `fidelite tier review` does.

    Example: fidelite ledger expire --as-of 2026-12-01 --program shop.yaml

    Example: fidelite ledger expire --as-of 2026-12-01 --program-file program.yaml -f json
    """
    target = job_program(program, program_file, fmt)
    when = job_as_of(as_of, target.zone, datetime.now(UTC), fmt, LEDGER_LOOK_AHEAD)
    ledger = open_ledger(db, fmt)
    report = _job(
        "expiring points",
        lambda p: ledger.expire(target.id, when, policy=target.policy, zone=target.zone,
                                progress=p),
        fmt,
    )  # fmt: skip
    inactivity = _inactivity(target)
    if fmt is OutputFormat.json:
        print_json({"as_of": when, "program": target.id, "inactivity": inactivity, **report})
        return
    console.print(
        f"expired {_per_currency(report['points'])} from {report['lots']} lots "
        f"({report['transactions']} members/currencies) as of {when.isoformat()}"
    )
    if target.file is None:
        console.print(
            "dated lots only: give --program-file to apply an inactivity policy", style="dim"
        )
    elif inactivity is not None:
        console.print(
            f"inactivity policy applied: points lapse after {inactivity['months']} month(s) "
            f"without activity ({inactivity['time_zone']})"
        )


def _inactivity(target: JobProgram) -> dict[str, Any] | None:
    policy = target.policy
    if policy is None or policy.mode is not ExpiryMode.inactivity or target.zone is None:
        return None
    return {"months": policy.months, "time_zone": target.zone.key}


@app.command("release-due")
def release_due(
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help=f"Release holds ending by this date or time (default: now): {JOB_AS_OF_HELP}"
        f"{JOB_NOT_LATER}",
    ),
    program: str | None = JobProgramOption,
    program_file: Path | None = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Release job: pending points whose hold ended become available (re-runnable).

    A date given as --as-of is its midnight in the program's time zone when the program
    file is given, as for `fidelite tier review`; with a program id only, midnight UTC.
    An --as-of later than now is refused (exit 2, nothing changed): a job applies its
    date at once, for good.

    The report gives one total per currency, by currency id ("released 131 points,
    2 stars (4 earns)"); -f json gives them as "points": {"points": 131, "stars": 2},
    and "as_of" as the instant applied, with its offset, as `fidelite tier review` does.

    Example: fidelite ledger release-due --as-of 2026-12-01 --program program.yaml
    """
    target = job_program(program, program_file, fmt)
    when = job_as_of(as_of, target.zone, datetime.now(UTC), fmt, LEDGER_LOOK_AHEAD)
    ledger = open_ledger(db, fmt)
    report = _job(
        "releasing points", lambda p: ledger.release_due(target.id, when, progress=p), fmt
    )
    if fmt is OutputFormat.json:
        print_json({"as_of": when, **report})
    else:
        console.print(
            f"released {_per_currency(report['points'])} ({report['transactions']} earns)"
        )


@app.command()
def check(
    program: str | None = OnlyProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Verify the books: double entry, balances = postings, lots = postings, no negatives.

    Each broken rule is listed with how many rows break it and up to five of them, their
    fields named (members by their reference). With --format json, "violations" is a
    list of objects: rule, count, sample (the rows, as objects) and message. An unknown
    --program is refused (unknown_program).

    Example: fidelite ledger check --format json
    """
    ledger = open_ledger(db, fmt)
    problems = run(lambda: find_violations(ledger.db, program), fmt)
    if fmt is OutputFormat.json:
        print_json({"ok": not problems, "violations": [p.as_dict() for p in problems]})
    elif problems:
        for problem in problems:
            console.print(f"[red]✗[/] {escape(problem.message())}", highlight=False)
    else:
        console.print("[green]✓[/] the books balance: every invariant holds")
    if problems:
        raise typer.Exit(code=1)


@app.command("credit-all")
def credit_all_members(
    points: int = typer.Argument(..., help="Points credited to each member (> 0)."),
    reason: str = typer.Option(..., help="Why (kept on each member's history)."),
    actor: str = typer.Option(..., help="Who decided (kept on each member's history)."),
    key: str = typer.Option(
        ...,
        "--key",
        "-k",
        help="Idempotency key of the whole credit: run again with it, each member is "
        "credited once.",
    ),
    members_file: Path | None = typer.Option(
        None,
        "--members",
        "-m",
        help="CSV file with a 'member' column: the members to credit, each once.",
    ),
    segment: str | None = typer.Option(
        None, "--segment", help="Credit every member of this segment (needs the program file)."
    ),
    program: str | None = JobProgramOption,
    program_file: Path | None = ProgramFileOption,
    currency: str | None = typer.Option(
        None,
        "--currency",
        "-c",
        help="Point currency (default: the program file's first currency, else points).",
    ),
    expires: str | None = typer.Option(
        None, "--expires", help=f"When the credited points expire: {DATE_HELP}"
    ),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Credit the same points to many members (goodwill after an outage), with reason and actor.

    The members come from a CSV file with a 'member' column (--members) or are every
    member of a segment (--segment, with the program file). Each member's credit is a
    ledger adjustment with its own key made from --key, written in chunks of a few
    hundred members per transaction: running the command again with the same --key
    (after an interruption, or to be sure) credits only the members not credited yet,
    each exactly once. Do not change the key to retry: that would credit everyone again.

    Without --expires, when the program file is given and its policy dates points after
    earning, the points get the date points earned now get. What is wrong for every
    member (points not > 0, a blank reason, a member listed twice, an --expires not later
    than now) is refused before anything is written (exit 1); a member the ledger
    refuses (unknown, erased) is listed with why, the others are credited, and the
    command exits 1. A summary follows; -f json gives each member's result.

    Example: fidelite ledger credit-all 50 -m late.csv -p shop.yaml --reason late --actor ops -k g1

    Example: fidelite ledger credit-all 20 --segment vip -p shop.yaml --reason vip --actor ops -k v1
    """
    target = job_program(program, program_file, fmt)
    expiry = _moment(expires, "--expires", target, fmt)
    if (members_file is None) == (segment is None):
        fail("give either --members FILE or --segment NAME", code="usage", fmt=fmt,
             field="members")  # fmt: skip
    if segment is not None and target.file is None:
        fail("--segment needs the program file (--program FILE or --program-file): segments "
             "are the program's", code="usage", fmt=fmt, field="segment")  # fmt: skip
    ledger = open_ledger(db, fmt)
    if members_file is not None:
        members = _members_of(members_file, fmt)
    else:
        assert target.file is not None and segment is not None
        members = _segment_members(target.file, segment, ledger, fmt)
    coin = currency or _default_currency(target)
    with progress_bar("crediting members", fmt) as advance:
        done = [0]

        def moved(count: int) -> None:
            done[0] += count
            advance(done[0], len(members))

        credits = run(
            lambda: credit_all(ledger, target.id, members, coin, points,
                               key=lambda m: derived_key("cli-credit-all:", key, f":{m}"),
                               reason=reason, actor=actor, expires_at=expiry,
                               policy=target.policy, zone=target.zone, progress=moved),
            fmt,
        )  # fmt: skip
    _show_credits(credits, points, coin, target.id, fmt)
    if any(c.refusal is not None for c in credits):
        raise typer.Exit(code=1)


def _members_of(path: Path, fmt: OutputFormat) -> list[str]:
    """The 'member' column of a CSV file, blank lines skipped; a file without the column,
    or with a blank member, is a usage error naming it."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "member" not in reader.fieldnames:
                fail(f"--members {path}: no 'member' column (header: "
                     f"{', '.join(reader.fieldnames or []) or 'none'})", code="usage", fmt=fmt,
                     field="members")  # fmt: skip
            found = []
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue
                member = (row.get("member") or "").strip()
                if not member:
                    fail(f"--members {path}: line {reader.line_num} has no member", code="usage",
                         fmt=fmt, field="members")  # fmt: skip
                found.append(member)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        fail(f"--members {path}: {exc}", code="usage", fmt=fmt, field="members")
    return found


def _segment_members(file: Path, segment: str, ledger: Ledger, fmt: OutputFormat) -> list[str]:
    """Every member of ``segment``, in reference order (as the API's bulk credit finds them)."""
    processor = EventProcessor(ledger.db, load_program(file), ledger)
    members: list[str] = []
    cursor: str | None = None

    def page_after() -> list[dict[str, Any]]:
        return processor.list_members(after=cursor, limit=500)

    while True:
        page = run(page_after, fmt)
        members += [p["member_ref"] for p in page if segment in (p["segments"] or [])]
        if len(page) < 500:
            return members
        cursor = page[-1]["member_ref"]


def _default_currency(target: JobProgram) -> str:
    """The program file's first currency (its default), else ``points``."""
    if target.file is None:
        return "points"
    return load_program(target.file).currencies[0].id


def _credit_json(credit: Credit) -> dict[str, Any]:
    """One member's result: the credit's transaction (replayed or not), or why refused."""
    if credit.receipt is not None:
        return {"member": credit.member, "transaction_id": credit.receipt.transaction_id,
                "replayed": credit.receipt.replayed}  # fmt: skip
    assert credit.refusal is not None
    refusal = credit.refusal
    return {"member": credit.member, "error": {"code": refusal.code.value,
            "message": refusal.message, "field": refusal.field}}  # fmt: skip


def _show_credits(
    credits: list[Credit], points: int, currency: str, program: str, fmt: OutputFormat
) -> None:
    new = sum(1 for c in credits if c.receipt is not None and not c.receipt.replayed)
    before = sum(1 for c in credits if c.receipt is not None and c.receipt.replayed)
    refused = [c for c in credits if c.refusal is not None]
    if fmt is OutputFormat.json:
        print_json({
            "program": program, "points": points, "currency": currency,
            "credited": new, "already_credited": before, "refused": len(refused),
            "results": [_credit_json(c) for c in credits],
        })  # fmt: skip
        return
    console.print(
        f"credited [bold]{points}[/] {currency} to [bold green]{new}[/] members"
        + (f"; {before} already credited with this key (not again)" if before else "")
        + (f"; [red]{len(refused)} refused[/]" if refused else "")
    )
    if refused:
        print_rows([{"member": c.member, "code": c.refusal.code.value,
                     "message": c.refusal.message} for c in refused if c.refusal is not None],
                   fmt, title="refused", columns=["member", "code", "message"])  # fmt: skip


__all__ = ["app", "fail"]
