"""``fidelite event``: a past event as recorded, to answer "why did receipt X earn N?"."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from fidelite.cli.common import open_ledger
from fidelite.cli.options import DbOption, ProgramOption
from fidelite.cli.output import OutputFormat, console, fail, print_json, print_rows
from fidelite.engine.coupon import COUPON_NOT_APPLIED, parse_code, refusal_detail
from fidelite.engine.event import REFUND
from fidelite.processing.erased import tombstones
from fidelite.processing.recorded import RecordedEvent, read_event

app = typer.Typer(
    help="Events as recorded: what an event earned, and why.\n\n"
    "Example: fidelite event show till-7-000123 --program cafe_club --db sqlite:///shop.db",
    no_args_is_help=True,
)

RULE_COLUMNS = ["rule", "outcome", "points", "currency", "note"]
REVERSAL_COLUMNS = ["transaction_id", "currency", "points", "written_off", "debt_added",
                    "already_expired"]  # fmt: skip
CHANGE_COLUMNS = ["at", "kind", "from", "to", "value", "reason"]
REFUND_COLUMNS = ["event_id", "at", "amount", "points"]


class ShowFormat(StrEnum):
    """What ``event show`` prints: tables for people, JSON for scripts."""

    table = "table"
    json = "json"


@app.command("show")
def show(
    event_id: str = typer.Argument(..., help="The event's id, as the till or the file sent it."),
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: ShowFormat = typer.Option(ShowFormat.table, "--format", "-f", help="table or json."),
) -> None:
    """A past event as recorded: what it earned and why.

    The event as the store keeps it (member, type, time in UTC, amount, coupon, the
    purchase a refund is of), its outcome, the points it moved per currency (a
    refund's are negative) with their ledger transactions, the tier changes it caused,
    the decision trace (every rule, matched or not, and why; for a refund, each earn
    transaction it reversed) and the refunds applied to it since. The basket's items,
    channel, store and attributes are not kept. The event of a member erased since
    shows no member (null in JSON): it is kept for the books, never linked to the
    anonymised account.

    An event id the program has not recorded is an error (exit status 1, code
    unknown_event).

    Example: fidelite event show till-7-000123 --program cafe_club --db sqlite:///shop.db

    Example: fidelite event show till-7-000123 -p cafe_club --format json
    """
    shown = OutputFormat(fmt.value)
    ledger = open_ledger(db, shown)
    try:
        with ledger.db.read() as conn:
            found = read_event(conn, program, event_id)
            erased = found is not None and bool(tombstones(conn, program, [found.member]))
    finally:
        ledger.db.dispose()
    if found is None:
        fail(f"no event {event_id!r} in program {program!r}", code="unknown_event", fmt=shown)
    record = found.as_dict()
    if erased:  # the record stays for the books, unlinked from the anonymised account
        record["member"] = None
    if shown is OutputFormat.json:
        print_json(record)
        return
    _print_table(found, record)


def _refused(found: RecordedEvent) -> str:
    """``refused (reason: why)`` for the event's coupon: the reason its trace recorded (a
    rule of a coupon campaign notes it, as the unused code's last line does), else
    ``coupon_invalid`` when the code is no valid code; ``refused`` alone otherwise (a
    program without coupon rules records no reason)."""
    reason = None
    for line in found.trace:
        note = str(line.get("note") or "")
        if note.startswith("coupon_") and str(line.get("outcome", "")).startswith("coupon"):
            reason = note.split(":", 1)[0]
            break
    if reason is None and found.coupon and parse_code(found.coupon) is None:
        reason = "coupon_invalid"
    if reason is None:
        return "refused"
    if reason == COUPON_NOT_APPLIED:
        return f"not used ({reason}: {refusal_detail(reason, found.coupon or '')})"
    return f"refused ({reason}: {refusal_detail(reason, found.coupon or '')})"


def _print_table(found: RecordedEvent, record: dict[str, Any]) -> None:
    amount = "" if found.amount is None else f", amount {found.amount}"
    of = f" of {found.refund_of}" if found.refund_of else ""
    member = "a member erased since" if record["member"] is None else found.member
    console.print(f"[bold]{found.event_id}[/]: {found.type}{of} by {member} at "
                  f"{found.at.isoformat()}{amount} — {found.outcome.value}, recorded "
                  f"{found.recorded_at.isoformat()}", highlight=False)  # fmt: skip
    if found.coupon:
        state = {True: "accepted", False: "refused", None: "not checked"}[found.coupon_accepted]
        if found.coupon_accepted is False:
            state = _refused(found)
        console.print(f"coupon {found.coupon}: {state}", highlight=False)
    points: list[dict[str, Any]] = [{"currency": c, "points": p} for c, p in found.points.items()]
    if found.type != REFUND:
        for row in points:
            row["reversed by refunds"] = found.reversed.get(row["currency"], 0)
    if points:
        print_rows(points, OutputFormat.table, title="Points")
        # the ids of the transactions (one per currency), not how many: say so
        ids = ", ".join(map(str, found.transactions))
        label = "id" if len(found.transactions) == 1 else "ids"
        console.print(f"ledger transaction {label}: {ids}", highlight=False)
    else:
        console.print("no points moved")
    columns = REVERSAL_COLUMNS if found.type == REFUND else RULE_COLUMNS
    if found.type == REFUND and any("tier_bonus_of" in line for line in found.trace):
        columns = [*columns, "tier_bonus_of"]  # the later event whose tier bonus it took
    title = "Reversals" if found.type == REFUND else "Decision trace"
    print_rows(found.trace, OutputFormat.table, title=title, columns=columns)
    if found.tier_changes:
        print_rows(record["tier_changes"], OutputFormat.table, title="Tier changes",
                   columns=CHANGE_COLUMNS)  # fmt: skip
    if found.refunds:
        refunds = [{**r, "points": ", ".join(f"{p} {c}" for c, p in r["points"].items())}
                   for r in record["refunds"]]  # fmt: skip
        print_rows(refunds, OutputFormat.table,
                   title=f"Refunds ({found.refunded_amount} refunded)",
                   columns=REFUND_COLUMNS)  # fmt: skip
