"""``fidelite webhooks``: subscriptions, the delivery worker, the delivery log, replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from fidelite.cli.common import open_ledger, run
from fidelite.cli.interrupt import stop_on_interrupt
from fidelite.cli.options import DbOption, FormatOption, ProgramOption, TableJsonOption
from fidelite.cli.output import OutputFormat, console, err_console, fail, print_json, print_rows
from fidelite.cli.policy import (
    JOB_AS_OF_HELP,
    JOB_NOT_LATER,
    LEDGER_LOOK_AHEAD,
    JobProgramOption,
    ProgramFileOption,
    job_as_of,
    job_program,
)
from fidelite.cli.processor import REPLAYED, KeyOption
from fidelite.ledger import idempotency
from fidelite.store import Database
from fidelite.webhooks import (
    DeliveryWorker,
    WebhookError,
    announce_expiring_points,
    attempts_of,
    log,
    prune,
)
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.deliveries import STATES, replay_all
from fidelite.webhooks.expiring import warning_days

app = typer.Typer(
    help="Webhooks: subscribe URLs to events, deliver, inspect and replay.\n\n"
    "Example: fidelite webhooks log --state dead --program shop --format json",
    no_args_is_help=True,
)
T = TypeVar("T")

AddAllowPrivateOption = typer.Option(
    False,
    "--allow-private",
    envvar="FIDELITE_WEBHOOKS_ALLOW_PRIVATE",
    help="Development only: allow a loopback or private-network URL (metadata and "
    "link-local addresses stay refused); the subscription keeps this, so `webhooks "
    "deliver` sends to it without the flag.",
)
DeliverAllowPrivateOption = typer.Option(
    False,
    "--allow-private",
    envvar="FIDELITE_WEBHOOKS_ALLOW_PRIVATE",
    help="Development only: allow loopback and private-network URLs for every "
    "subscription (those added with --allow-private are allowed without it; metadata "
    "and link-local addresses stay refused).",
)


def _db(db: str | None, fmt: OutputFormat) -> Database:
    return open_ledger(db, fmt).db


def _run(action: Callable[[], T], fmt: OutputFormat) -> T:
    try:
        return action()
    except WebhookError as exc:
        extra = {"field": exc.field} if exc.field else {}
        fail(exc.message, code=exc.code, fmt=fmt, **extra)


@app.command("add")
def add(
    url: str = typer.Argument(..., help="The receiver's URL (http or https)."),
    events: list[str] = typer.Option(
        ["*"], "--event", "-e", help="Event type to send (repeat; * for all)."
    ),
    secret: str | None = typer.Option(None, help="Signing secret (default: generated)."),
    description: str | None = typer.Option(None, help="A note for operators."),
    allow_private: bool = AddAllowPrivateOption,
    key: str = KeyOption,
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Subscribe a URL to events; prints the signing secret.

    Safe to retry: run again with the same --key, it adds nothing and prints the
    subscription (and secret) the first run made; the same key with another URL, event
    list, secret or description is refused. Without a key a retry after a lost answer
    would subscribe the URL twice, and every event would be delivered twice.

    Example: fidelite webhooks add https://crm.example.com/hooks -e points.earned --program
    shop -k crm-1
    """
    database = _db(db, fmt)
    checked = _run(lambda: subs.check(url, events, secret=secret, allow_private=allow_private,
                                      description=description), fmt)  # fmt: skip
    request = {"op": "webhooks_add", "url": url, "event_types": sorted(set(events)),
               "secret": secret, "description": description,
               "allow_private": allow_private}  # fmt: skip

    def act(conn: Connection) -> dict[str, Any]:
        answer = subs.create(conn, program, checked, description=description).as_dict()
        del answer["secret"]  # kept in the subscription only, read back for a retry
        return answer

    def attempt() -> tuple[dict[str, Any], bool]:
        with database.write() as conn:
            return idempotency.once(conn, program, key, request, lambda: act(conn),
                                    datetime.now(UTC))  # fmt: skip

    try:
        made, replayed = run(attempt, fmt)
    except IntegrityError:  # a concurrent run claimed the key first, and has committed
        with database.read() as conn:
            first = run(lambda: idempotency.recorded(conn, program, key, request), fmt)
        if first is None:
            raise
        made, replayed = first, True
    with database.read() as conn:
        state = subs.secret_of(conn, program, int(made["id"]))
    if state is None or not state[0]:
        fail(f"key {key!r} added subscription {made['id']}, removed since: nothing is "
             "subscribed; use a new key to subscribe again", code="subscription_removed",
             fmt=fmt, field="key")  # fmt: skip
    made = made | {"secret": state[1]}
    if fmt is OutputFormat.json:
        print_json(made | {"replayed": replayed})
        return
    kinds = ", ".join(made["event_types"])
    note = REPLAYED if replayed else ""
    console.print(f"subscription [bold]{made['id']}[/] → {made['url']} ({kinds}){note}")
    console.print(f"secret: {made['secret']}", highlight=False)
    if made.get("allow_private"):
        console.print("private destinations allowed for this subscription (development)")


@app.command("list")
def list_(
    include_removed: bool = typer.Option(False, "--all", help="Include removed subscriptions."),
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """List the program's subscriptions (secrets are never listed).

    With --format json, event_types is a list (["*"] for all), as `add` gives it; the
    table and CSV join it with commas.

    Example: fidelite webhooks list --program shop --format json
    """
    found = subs.list_all(_db(db, fmt), program, include_removed=include_removed)
    rows = [s.as_dict() for s in found]
    if fmt is not OutputFormat.json:  # a cell holds text; JSON keeps the list, as `add`
        for row in rows:
            row["event_types"] = ",".join(row["event_types"])
    columns = ["id", "url", "event_types", "active", "allow_private", "description",
               "created_at"]  # fmt: skip
    print_rows(rows, fmt, title="webhook subscriptions", columns=columns)


@app.command("remove")
def remove(
    subscription_id: int = typer.Argument(..., help="The subscription id."),
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Remove a subscription; its undelivered deliveries stop (marked dead).

    Example: fidelite webhooks remove 3 --program shop
    """
    database = _db(db, fmt)
    gone = _run(lambda: subs.remove(database, program, subscription_id), fmt)
    if fmt is OutputFormat.json:
        print_json(gone.as_dict())
    else:
        console.print(f"subscription {gone.id} removed")


ABORTED = ("Aborted: the attempt in progress is not recorded (its delivery is sent again "
           "once its lease runs out); the deliveries not sent yet are released")  # fmt: skip
"""What ``deliver`` says when a second Ctrl-C or SIGTERM aborts its pass."""


@app.command("deliver")
def deliver(
    loop: bool = typer.Option(
        False,
        "--loop",
        help="Keep running (Ctrl-C or SIGTERM: stop after the attempt in progress).",
    ),
    limit: int = typer.Option(100, min=1, max=1000, help="Deliveries claimed per pass."),
    idle: float = typer.Option(1.0, min=0.05, help="Seconds to sleep when nothing is due."),
    timeout: float = typer.Option(
        10.0,
        min=0.5,
        help="Seconds an attempt may take in all: connecting, sending, and "
        "the whole answer (a 2xx still arriving then is a failed attempt).",
    ),
    allow_private: bool = DeliverAllowPrivateOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Send due deliveries once (or keep sending with --loop); several may run at once.

    Each attempt is recorded as soon as it ends. SIGTERM or Ctrl-C finishes the attempt
    in progress (within --timeout) and records it, releases the deliveries of the pass
    not sent yet (due again at once, for any worker; attempts unchanged), then stops
    (exit 0); a second one aborts the attempt at once (exit 130, or 143 for SIGTERM): it
    is not recorded, and its delivery is sent again once its lease runs out. With
    --loop, a failing pass (database or network down) is reported and retried.

    Example: fidelite webhooks deliver --loop --db postgresql://fidelite@db/loyalty
    """
    worker = DeliveryWorker(_db(db, fmt), allow_private=allow_private, timeout=timeout)
    try:
        with stop_on_interrupt("the attempt in progress (recording it)") as interrupt:
            try:
                if loop:
                    worker.run_forever(
                        idle_seconds=idle, limit=limit, stop=interrupt,
                        on_error=lambda exc: err_console.print(f"[red]pass failed[/] {exc}"),
                    )  # fmt: skip
                    return
                report = worker.run_once(limit, stop=interrupt)
            except KeyboardInterrupt:
                err_console.print(ABORTED, highlight=False, soft_wrap=True)
                raise typer.Exit(interrupt.exit_status) from None
    finally:
        worker.close()
    if fmt is OutputFormat.json:
        print_json(report.as_dict())
    else:
        console.print(
            f"{report.claimed} due: {report.delivered} delivered, {report.failed} to retry, "
            f"{report.dead} dead" + (f", {report.released} released" if report.released else "")
        )


LOG_LIMIT = (1, 1000)
"""The fewest and most deliveries ``webhooks log --limit`` lists."""


def _state(value: str | None) -> str | None:
    """``--state``: one of the delivery states, else a usage error (exit 2)."""
    if value is not None and value not in STATES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(STATES)}")
    return value


def _limit(value: int) -> int:
    """``--limit``: within :data:`LOG_LIMIT`, else a usage error (exit 2)."""
    low, high = LOG_LIMIT
    if not low <= value <= high:
        raise typer.BadParameter(f"must be between {low} and {high}, got {value}")
    return value


@app.command("log")
def log_(
    state: str | None = typer.Option(
        None, help="Only pending, failed, delivered or dead.", callback=_state
    ),
    subscription: int | None = typer.Option(None, help="Only this subscription."),
    delivery: int | None = typer.Option(None, help="Show every attempt of this delivery."),
    limit: int = typer.Option(
        100, help=f"At most this many deliveries ({LOG_LIMIT[0]}-{LOG_LIMIT[1]}).", callback=_limit
    ),
    before: int | None = typer.Option(
        None,
        min=1,
        help="Only deliveries with a lower id: the next page, after the line on stderr "
        "saying more deliveries follow (the API's next_cursor).",
    ),
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """The delivery log, most recently created first; --delivery N lists that delivery's attempts.

    At most --limit deliveries; when more follow, a line on stderr gives the --before
    value of the next page (with --format json: {"next_cursor": N}, as the API's page);
    stdout keeps the rows only, in every format.

    Example: fidelite webhooks log --state dead --program shop --format json
    """
    database = _db(db, fmt)
    if delivery is not None:
        tries = _run(lambda: attempts_of(database, program, delivery), fmt)
        print_rows(tries, fmt, title=f"attempts of delivery {delivery}",
                   columns=["number", "at", "status", "error", "duration_ms"])  # fmt: skip
        return
    found = _run(
        lambda: log(database, program, state=state, subscription_id=subscription,
                    before=before, limit=limit + 1),
        fmt,
    )  # fmt: skip
    rows = found[:limit]
    print_rows(rows, fmt, title="webhook deliveries",
               columns=["id", "subscription_id", "event_id", "event_type", "state", "attempts",
                        "last_status", "last_error", "next_attempt_at"])  # fmt: skip
    if len(found) > limit:  # the one more row: another page follows
        cursor = rows[-1]["id"]
        note = (
            json.dumps({"next_cursor": cursor})
            if fmt is OutputFormat.json
            else f"more deliveries follow: the next page is --before {cursor}"
        )
        err_console.print(note, highlight=False, soft_wrap=True, markup=False)


@app.command("replay")
def replay_(
    delivery_ids: list[int] = typer.Argument(..., help="Delivery ids (see `webhooks log`)."),
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Send deliveries again (dead, failed or delivered): due now on the next pass.

    All or none: if one id is unknown, or about a member erased since (never sent
    again), nothing is replayed and the error names them.

    Example: fidelite webhooks replay 41 42 --program shop && fidelite webhooks deliver
    """
    database = _db(db, fmt)
    done = _run(partial(replay_all, database, program, delivery_ids, at=datetime.now(UTC)), fmt)
    if fmt is OutputFormat.json:
        print_json(done)
    else:
        console.print(f"{len(done)} deliveries queued again")


EXPIRING_COLUMNS = ["member", "currency", "points", "expires_at", "cause", "lot_id",
                    "last_activity"]  # fmt: skip
"""A points.expiring event announced, as listed: ``lot_id`` for a lot with an expiry
date (cause ``date``), ``last_activity`` for points lapsing by inactivity."""


@app.command("expiring")
def expiring(
    days: int | None = typer.Option(
        None,
        min=0,
        max=365,
        help="Announce points expiring within N days (default: the program file's "
        "warn_days, else 30; 0 announces nothing).",
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help=f"Business date or time (default: now): {JOB_AS_OF_HELP}{JOB_NOT_LATER}",
    ),
    program: str | None = JobProgramOption,
    program_file: Path | None = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Write points.expiring for points expiring soon (once each; run daily).

    Lots with an expiry date are announced one by one. Given --program-file, the window
    is the program's warn_days (--days overrides it) and, under an inactivity policy,
    members whose points lapse within it are announced too (one event per currency).

    Points are counted as `ledger balance` counts them: pending points whose hold has
    ended by --as-of are announced (debt repaid first) even before `ledger release-due`
    writes their release, and each point once, whichever job runs first.

    A date given as --as-of is its midnight in the program's time zone when the program
    file is given, as for `fidelite ledger expire`; with a program id only the zone is
    unknown, so it is midnight UTC. A time needs its offset (2026-03-01T00:00:00+01:00).
    An --as-of later than now is refused (exit 2, nothing written): the events would be
    sent, and each point announced once, as if that day had come.

    Prints how many events were written and lists them (member, currency, points,
    expiry, cause); what was announced before is neither written nor listed again. The
    table gives the instants in the program's time zone when the file is given; the
    events, and -f json, keep them in UTC.

    Example: fidelite webhooks expiring --days 30 --program shop

    Example: fidelite webhooks expiring --program-file program.yaml --format json
    """
    target = job_program(program, program_file, fmt)
    when = job_as_of(as_of, target.zone, datetime.now(UTC), fmt, LEDGER_LOOK_AHEAD)
    window = warning_days(days, target.policy)
    written = announce_expiring_points(_db(db, fmt), target.id, when, days=window,
                                       policy=target.policy, zone=target.zone)  # fmt: skip
    rows = [{k: payload.get(k) for k in EXPIRING_COLUMNS} for payload in written]
    if fmt is OutputFormat.json:
        print_json({"announced": len(written), "days": window, "program": target.id,
                    "expiring": rows})  # fmt: skip
    elif window == 0:
        console.print("nothing announced: warnings are off (warn_days: 0)")
    else:
        console.print(
            f"{len(written)} new points.expiring events (within {window} days; "
            "what was announced before is not repeated)"
        )
        if rows:
            shown = [_in_zone(row, target.zone) for row in rows]
            print_rows(shown, fmt, title="Points expiring", columns=EXPIRING_COLUMNS)


def _in_zone(row: dict[str, Any], zone: ZoneInfo | None) -> dict[str, Any]:
    """A row of the table with its instants in the program's zone when the file is
    known (the events themselves keep them in UTC, as every payload does)."""
    if zone is None:
        return row
    moved = {k: datetime.fromisoformat(row[k]).astimezone(zone).isoformat()
             for k in ("expires_at", "last_activity") if isinstance(row.get(k), str)}  # fmt: skip
    return row | moved


@app.command("prune")
def prune_(
    days: int = typer.Option(30, min=1, help="Keep what finished within the last N days."),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Delete finished deliveries (delivered or dead), their attempts and their events,
    once older than --days (run daily; deliveries under way are kept).

    Example: fidelite webhooks prune --days 30
    """
    gone = prune(_db(db, fmt), datetime.now(UTC) - timedelta(days=days))
    if fmt is OutputFormat.json:
        print_json(gone)
    else:
        console.print(
            f"pruned {gone['deliveries']} deliveries, {gone['attempts']} attempts, "
            f"{gone['events']} events"
        )
