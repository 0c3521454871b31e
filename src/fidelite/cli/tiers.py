"""``fidelite tier``: the daily re-qualification job, manual assignments, a member's
standing and timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Connection

from fidelite.cli.interrupt import stop_on_interrupt
from fidelite.cli.options import DbOption, FormatOption, TableJsonOption
from fidelite.cli.output import (
    OutputFormat,
    console,
    err_console,
    fail,
    print_json,
    print_rows,
    to_jsonable,
)
from fidelite.cli.policy import job_as_of
from fidelite.cli.processor import (
    REPLAYED,
    KeyOption,
    ProgramFileOption,
    apply,
    moment,
    once,
    open_processor,
    progress_bar,
)
from fidelite.engine.tiers import TierChange, next_review
from fidelite.ledger.errors import no_member

app = typer.Typer(
    help="Tiers: the daily re-qualification job, manual assignments, a member's timeline.\n\n"
    "Example: fidelite tier review --program program.yaml --db sqlite:///shop.db",
    no_args_is_help=True,
)
CHANGE_COLUMNS = ["member", "at", "kind", "from", "to", "value", "reason"]
TIMELINE_COLUMNS = ["at", "kind", "from", "to", "value", "reason", "event_id", "until"]
"""A timeline entry as shown, named as the API names it (``from``, ``to``: the tiers
before and after; ``GET /v1/members/{id}/tier``): ``until`` is an assignment's end
(``tier_changes.assigned_until``; none on other entries, and on an assignment recorded
before migration 0007 that an upgrade replaced, whose end was not stored)."""
TIER_LOOK_AHEAD = "use `fidelite tier show MEMBER` to see when each step falls due"
"""What a refused review suggests instead: the read-only look at a member's dates."""
STORED = {"from_tier": "from", "to_tier": "to", "assigned_until": "until"}
"""The ``tier_changes`` columns shown under another name (the API's), and the keys an
assignment's answer stored under its --key before the CLI took the API's names: a replay
of such an answer shows the same keys as a first run."""


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    shown = _shown(row)
    return {k: shown[k] for k in TIMELINE_COLUMNS}


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its keys named as the API names them (:data:`STORED`)."""
    return {STORED.get(k, k): v for k, v in row.items()}


def _change(member: str, change: TierChange) -> dict[str, Any]:
    return {"member": member, "at": change.at.astimezone(UTC), "kind": change.kind.value,
            "from": change.from_tier, "to": change.to_tier, "value": change.value,
            "reason": change.reason}  # fmt: skip


@app.command("review")
def review(
    program_file: Path = ProgramFileOption,
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Apply what is due at or before this time: ISO 8601 with offset, or a date "
        "(its midnight in the program's time zone). Default: now; not later than now (the "
        "job applies its date at once, for good).",
    ),
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Apply every tier re-qualification due (the daily job).

    Keeps, grace periods, downgrades, ends of manual assignments: each applied at its
    own date. Run it daily (e.g. from cron); running it again, or late, is safe: a
    step is never applied twice.

    Prints every change (member, date, kind, tiers, qualifying value, reason). Ctrl-C
    or SIGTERM stops it after the member in progress: the changes committed so far are
    printed (JSON: with "interrupted": true), exit status 130 (143 for SIGTERM); run it
    again for the rest.

    An --as-of later than now is refused (exit 2, nothing changed): the review would end
    assignments and grace periods at once, for good; `tier show MEMBER` tells when each
    step falls due.

    Examples:

      fidelite tier review --program program.yaml --db sqlite:///shop.db

      fidelite tier review -p program.yaml --as-of 2026-01-01 --format json
    """
    # Ctrl-C or SIGTERM stops the job after the member in progress (a second one rolls
    # that member back at once): the changes committed until then are printed, as a
    # whole run prints them, and the exit status is 130 (143 for SIGTERM)
    done: list[tuple[str, TierChange]] = []
    with stop_on_interrupt("the member in progress") as interrupt:
        with open_processor(program_file, db, fmt) as processor:
            if processor.program.tiers is None:
                fail(f"program {processor.program.id!r} has no tiers", code="no_tiers",
                     fmt=fmt)  # fmt: skip
            when = job_as_of(as_of or None, processor.program.zone, processor.clock(), fmt,
                             TIER_LOOK_AHEAD)  # fmt: skip

            def committed(member: str, changes: list[TierChange]) -> None:
                done.extend((member, change) for change in changes)

            try:
                with progress_bar("Reviewing tiers", fmt) as advance:
                    apply(lambda: processor.review_tiers(when, progress=advance, stop=interrupt,
                                                         committed=committed), fmt)  # fmt: skip
            except KeyboardInterrupt:
                pass  # a second signal: the member in progress rolled back
        interrupt.hold("printing the changes committed")
        _print_review(when, done, fmt, stopped=interrupt())
    if interrupt():
        err_console.print(f"Interrupted: the {len(done)} tier change(s) printed are "
                          "committed; the members not reached yet were not reviewed. Run "
                          "the review again to apply the rest (nothing is applied twice).",
                          highlight=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(interrupt.exit_status)


def _print_review(
    when: datetime, done: list[tuple[str, TierChange]], fmt: OutputFormat, *, stopped: bool
) -> None:
    """The review's changes (those committed before an interruption: ``stopped``, then
    JSON says ``"interrupted": true``)."""
    rows = [_change(member, change) for member, change in done]
    if fmt is OutputFormat.json:
        print_json({"as_of": when, "changes": rows} | ({"interrupted": True} if stopped else {}))
        return
    if rows or fmt is OutputFormat.csv:
        print_rows(rows, fmt, title=f"Tier changes due by {when.isoformat()}",
                   columns=CHANGE_COLUMNS)  # fmt: skip
    if fmt is OutputFormat.table:
        members = len({row["member"] for row in rows})
        console.print(f"{len(rows)} tier change(s) for {members} member(s) due by "
                      f"{when.isoformat()}")  # fmt: skip


@app.command("assign")
def assign(
    member: str = typer.Argument(..., help="The member's reference (an enrolled member)."),
    tier: str = typer.Argument(..., help="The tier's id, as in the program file."),
    until: str = typer.Option(
        ...,
        "--until",
        help="End of the assignment: ISO 8601 with offset, or a date (its midnight in the "
        "program's time zone). The daily review then gives the tier the member qualifies for, "
        "or the one they would have held without the assignment (e.g. in a grace period) when "
        "higher.",
    ),
    reason: str = typer.Option(..., "--reason", help="Why (kept on the member's timeline)."),
    key: str = KeyOption,
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Put a member on a tier by hand, from now until a date.

    No re-qualification before that date; then the daily review gives them the tier
    they qualify for, or the one (with its dates: a grace period, a one-level downgrade)
    they would have held without the assignment, when higher. An event that qualifies
    them for a higher tier still upgrades them at once.

    Safe to retry: run again with the same --key, it changes nothing and prints the
    first assignment (the same key with another member, tier, end or reason is refused).

    Example:

      fidelite tier assign CARD-0001 gold --until 2027-01-01 --reason outage -k gw-7 -p cafe.yaml
    """
    with open_processor(program_file, db, fmt) as processor:
        end = moment(until, "--until", processor.program.zone, fmt)
        request = {"op": "assign_tier", "member": member, "tier": tier, "until": end,
                   "reason": reason}  # fmt: skip

        def act(conn: Connection) -> dict[str, Any]:
            change = processor.assign_tier(member, tier, at=datetime.now(UTC), until=end,
                                           reason=reason, conn=conn)  # fmt: skip
            kept = _change(member, change) | {"until": end}
            del kept["member"]  # the stored answer names no member (erasure finds none)
            return {k: to_jsonable(v) for k, v in kept.items()}

        answer, replayed = once(processor, key, request, act, fmt)
    shown = {"member": member, **_shown(answer)}
    if fmt is OutputFormat.json:
        print_json(shown | {"replayed": replayed})
        return
    note = REPLAYED if replayed else ""
    console.print(f"[bold]{member}[/]: {shown['from']} -> {shown['to']} until "
                  f"{shown['until']} ({shown['reason']}){note}")  # fmt: skip


@app.command("show")
def show(
    member: str = typer.Argument(..., help="The member's reference."),
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """A member's tier and its timeline.

    The tier, since when, the next re-qualification (review_at; during a grace period
    its end, when the level is judged again), the end of a grace period or of a manual
    assignment, and every tier change, oldest first (an assignment with its end, until).

    Example: fidelite tier show CARD-0001 -p program.yaml --format json
    """
    with open_processor(program_file, db, fmt) as processor:
        standing = processor.tier_standing(member)
        if standing is None:
            if processor.member_profile(member) is None:
                fail(no_member(processor.program.id, member), code="unknown_member", fmt=fmt)
            if processor.program.tiers is None:
                fail(f"program {processor.program.id!r} has no tiers", code="no_tiers", fmt=fmt)
            fail(f"member {member!r} has no tier yet (enrolled before the program had tiers: "
                 "placed on its ladder at their next event or tier review)", code="no_tiers",
                 fmt=fmt)  # fmt: skip
        history = [_entry(row) for row in processor.tier_timeline(member)]
    # review_at: the next re-qualification, during a grace period its end (the stored
    # date is the one the grace period started from, past by then)
    dates = {"tier": standing.tier, "since": standing.since,
             "review_at": next_review(standing),
             "grace_until": standing.grace_until,
             "assigned_until": standing.assigned_until}  # fmt: skip
    if fmt is OutputFormat.json:
        print_json({"member": member, **dates, "timeline": history})
        return
    if fmt is OutputFormat.table:
        console.print(", ".join(f"{k} {v.isoformat() if isinstance(v, datetime) else v}"
                                for k, v in dates.items() if v is not None))  # fmt: skip
    print_rows(history, fmt, title=f"Tier timeline of {member}", columns=TIMELINE_COLUMNS)
