"""`fidelite program` commands: write an example, check a file, simulate an event."""

from __future__ import annotations

import json
import re
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from fidelite.cli.options import TableJsonOption
from fidelite.cli.output import OutputFormat, console, fail, print_json, print_rows
from fidelite.engine import CouponStatus, Evaluator, Event
from fidelite.engine.decision import Decision
from fidelite.engine.event import REFUND
from fidelite.engine.member import MemberState, ProgramState
from fidelite.engine.snapshot import member_from_json
from fidelite.processing.processor import unknown_event_type
from fidelite.program import ProgramDefinition, ProgramError, load_program
from fidelite.program.loader import not_utf8
from fidelite.program.model import IDENTIFIER
from fidelite.program.rule import Period

app = typer.Typer(
    help="Program definitions: write, check and try them.\n\n"
    "Example: fidelite program check program.yaml",
    no_args_is_help=True,
)

FORMAT = TableJsonOption
SINGULAR = {"currencies": "currency", "rules": "rule", "tiers": "tier", "rewards": "reward",
            "coupon_campaigns": "coupon campaign"}  # fmt: skip
"""How `program check` counts one of a section."""


def example_text() -> str:
    """The commented example program shipped with fidelite."""
    return files("fidelite.program").joinpath("example.yaml").read_text(encoding="utf-8")


@app.command("init")
def init(
    file: Path = typer.Argument(..., help="Where to write the example program."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Write a commented example program covering every feature.

    Example: fidelite program init program.yaml
    """
    if file.is_dir():
        fail(
            f"{file} is a directory: give the program file to write in it"
            f" (e.g. {file / 'program.yaml'})",
            code="io",
            fmt=fmt,
        )
    if file.exists() and not force:
        fail(f"{file} already exists (use --force to overwrite)", code="exists", fmt=fmt)
    if not file.parent.is_dir():
        parent = file.parent
        why = f"{parent} is a file" if parent.exists() else f"there is no directory {parent}"
        fail(f"{file}: cannot write: {why}", code="io", fmt=fmt)
    try:
        file.write_text(example_text(), encoding="utf-8")
    except OSError as exc:
        fail(f"{file}: cannot write: {exc.strerror or exc}", code="io", fmt=fmt)
    if fmt is OutputFormat.json:
        print_json({"written": str(file)})
    else:
        console.print(f"Wrote {file}. Check it with: fidelite program check {file}")


def _load(file: Path, fmt: OutputFormat) -> ProgramDefinition:
    try:
        return load_program(file)
    except ProgramError as exc:
        problems = [
            {
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "field": p.field,
                "message": p.message,
            }
            for p in exc.problems
        ]
        if fmt is OutputFormat.json:
            fail(str(exc), code="invalid_program", fmt=fmt, problems=problems)
        fail(_problem_lines(file, exc), code="invalid_program", fmt=fmt)


def _problem_lines(file: Path, exc: ProgramError) -> str:
    """A header naming the file and the count, then each problem alone on its line.

    The problems are written bare (``file:line:column: field: message``), as
    docs/program.md shows them, so editors and ``grep`` read one problem per line; the
    header alone carries the ``error [invalid_program]`` prefix.
    """
    count = len(exc.problems)
    header = f"{file}: {count} problem{'s' if count != 1 else ''}"
    return "\n".join([header, *(str(p) for p in exc.problems)])


@app.command("check")
def check(
    file: Path = typer.Argument(..., help="Program file (YAML)."), fmt: OutputFormat = FORMAT
) -> None:
    """Validate a program file; every problem is listed with its line and field.

    Checks the schema, references between sections, and each CEL condition and formula
    (syntax, variables, fields and types: `event.amount * 3` mixes a double and an int).
    Exits with status 1 if anything is wrong.

    Example: fidelite program check program.yaml

    Example: fidelite program check program.yaml --format json
    """
    program = _load(file, fmt)
    summary = {
        "program": program.id,
        "currencies": len(program.currencies),
        "rules": len(program.rules),
        "tiers": len(program.tiers.levels) if program.tiers else 0,
        "rewards": len(program.rewards),
        "coupon_campaigns": len(program.coupons),
    }
    if fmt is OutputFormat.json:
        print_json({"valid": True, **summary})
    else:
        counts = ", ".join(
            f"{v} {k.replace('_', ' ') if v != 1 else SINGULAR[k]}"
            for k, v in summary.items()
            if k != "program"
        )
        console.print(f"[green]OK[/] {file}: program {program.id} ({counts})")


@app.command("simulate")
def simulate(
    file: Path = typer.Argument(..., help="Program file (YAML)."),
    event_file: Path = typer.Argument(..., help="One event as JSON."),
    member_file: Path | None = typer.Option(
        None, "--member", help="Member state as JSON (tier, segments, attributes, ...)."
    ),
    coupon_status: CouponStatus = typer.Option(
        CouponStatus.issued,
        "--coupon-status",
        help="What the store would know of the event's coupon code: issued (unused),"
        " used, not_found or other_member (issued to another member).",
    ),
    budget_used: list[str] = typer.Option(
        [],
        "--budget-used",
        metavar="RULE=POINTS",
        help="Points a rule with a budget has already given in all (repeat for several"
        " rules). Without it every budget is taken as unused.",
    ),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Dry run: show what one event would earn and why, rule by rule. Nothing is written.

    The event is JSON as the API takes it (id, type, member, at, amount, channel,
    items, coupon, attributes). The member file (--member) is a JSON object, every key
    optional: tier (one of the program's tiers), segments (list), attributes (object),
    purchases (count before this event), joined_at (ISO 8601 with offset), birth_date
    (YYYY-MM-DD), and rule_points, the points capped rules already gave in the current
    period, keyed "rule@period" (e.g. {"big_basket@2026-11": 50}). Budgets are taken as
    unused unless --budget-used says what a rule has already given (spring_campaign=800),
    so a budget's last points and rule_budget_exhausted can be tried. A refund is not
    simulated: it reverses what its purchase earned and no rule evaluates it, and an
    event of a type the program does not handle is refused as the API would refuse it.
    The event's time is the only time of the dry run (no clock is read): an event dated
    in the future is simulated, which the API and the import refuse (event_in_future),
    so a campaign of next year can be tried today. The pending end and the expiry of
    what is earned are given in the program's time zone.

    Example: fidelite program simulate program.yaml event.json --member member.json

    Example: fidelite program simulate program.yaml event.json --coupon-status used -f json

    Example: fidelite program simulate program.yaml event.json --budget-used spring_campaign=800
    """
    program = _load(file, fmt)
    event = _read_event(event_file, fmt)
    if event.type == REFUND:
        fail(
            f"{event_file}: event {event.id} is a refund, which no rule evaluates: it"
            f" reverses what its purchase ({event.refund_of}) earned, in proportion to the"
            " amount refunded (policy 'refunds:'); simulate the purchase to see what it earned",
            code="refund_not_simulated",
            fmt=fmt,
        )
    unknown = unknown_event_type(program, event)
    if unknown is not None:  # the API and the import would refuse it: say so now
        fail(f"{event_file}: {unknown.message}", code=unknown.code, fmt=fmt)
    member = _read_member(member_file, event.member, fmt)
    problems = _member_problems(program, member)
    if problems:
        fail(f"{member_file}: " + "; ".join(problems), code="invalid_member", fmt=fmt)
    state = _budget_state(program, budget_used, fmt)
    decision = Evaluator(program).evaluate(event, member, state, coupon_status=coupon_status)
    shown = decision.as_dict(program.zone)  # pending end and expiry on the program's clock
    if fmt is OutputFormat.json:
        print_json(shown)
        return
    _print_decision(decision, shown["earnings"])


_PERIOD_KEYS = {
    Period.day: re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    Period.week: re.compile(r"^\d{4}-W\d{2}$"),
    Period.month: re.compile(r"^\d{4}-\d{2}$"),
    Period.year: re.compile(r"^\d{4}$"),
    Period.ever: re.compile(r"^ever$"),
}
_PERIOD_EXAMPLES = {
    Period.day: "2026-11-28",
    Period.week: "2026-W48",
    Period.month: "2026-11",
    Period.year: "2026",
    Period.ever: "ever",
}


def _member_problems(program: ProgramDefinition, member: MemberState) -> list[str]:
    """What in a member snapshot the program would silently ignore: an unknown tier (no
    multiplier), a segment name no rule can name, points of a rule or period that does
    not exist (no cap used)."""
    problems = []
    tiers = [t.id for t in program.tiers.levels] if program.tiers else []
    if member.tier is not None and member.tier not in tiers:
        known = f"tiers of this program: {', '.join(tiers)}" if tiers else "it has no tiers"
        problems.append(f"tier: unknown tier {member.tier!r} ({known})")
    for segment in sorted(member.segments):
        if not IDENTIFIER.match(segment):
            problems.append(
                f"segments: {segment!r} is not a segment name (lower-case letters, digits"
                " and _, starting with a letter, as rules name segments)"
            )
    capped = {r.id: r.cap_per_member.period for r in program.rules if r.cap_per_member}
    for rule, period in sorted(member.rule_points):
        key = f"{rule}@{period}"
        if rule not in capped:
            known = ", ".join(sorted(capped)) or "none"
            problems.append(
                f"rule_points: {key!r} names no rule with cap_per_member (those are: {known})"
            )
        elif (kind := _label_kind(period)) is None:
            example = f"{rule}@{_PERIOD_EXAMPLES[capped[rule]]}"
            problems.append(
                f"rule_points: {key!r}: rule {rule} is capped per {capped[rule].value},"
                f" write the period as in {example!r} (or as a day, ISO week, month or"
                " year, or ever, for points given while the cap had another period)"
            )
        elif not _on_calendar(kind, period):
            problems.append(f"rule_points: {key!r}: {period!r} is no {kind.value} of the calendar")
    return problems


def _label_kind(label: str) -> Period | None:
    """The kind of period ``label`` is written as (:data:`_PERIOD_KEYS`), whatever the
    rule's cap period is now: usage recorded under an earlier cap period counts against
    the current one where their days overlap, in simulate as in the engine."""
    return next((kind for kind, form in _PERIOD_KEYS.items() if form.match(label)), None)


def _on_calendar(period: Period, key: str) -> bool:
    """``key``, written as :data:`_PERIOD_KEYS` wants for ``period``, names a period of
    the calendar: no month 13, 31 April or week 53 of a year of 52 ISO weeks, which the
    engine never counts in (their points would be silently left out)."""
    numbers = [int(part) for part in re.findall(r"\d+", key)]
    try:
        if period is Period.day:
            date.fromisoformat(key)
        elif period is Period.week:
            date.fromisocalendar(numbers[0], numbers[1], 1)
        elif period is Period.month:
            date(numbers[0], numbers[1], 1)
        elif period is Period.year:
            date(numbers[0], 1, 1)
    except ValueError:
        return False
    return True


def _budget_state(program: ProgramDefinition, given: list[str], fmt: OutputFormat) -> ProgramState:
    """The budget use given as ``RULE=POINTS`` (each rule with a budget, once; points a
    whole number from 0 to the budget); refused with ``invalid_budget_used`` otherwise."""
    budgets = {rule.id: rule.budget for rule in program.rules if rule.budget is not None}
    used: dict[str, int] = {}
    problems = []
    for value in given:
        rule, sep, points = value.partition("=")
        rule, points = rule.strip(), points.strip()
        if not sep or not rule:
            problems.append(f"{value!r}: write RULE=POINTS, e.g. spring_campaign=800")
        elif rule not in budgets:
            known = ", ".join(sorted(budgets)) or "none"
            problems.append(f"{value!r}: {rule} is no rule with a budget (those are: {known})")
        elif rule in used:
            problems.append(f"{value!r}: {rule} is given twice")
        elif not points.isdecimal() or not points.isascii():
            problems.append(f"{value!r}: the points used are a whole number, 0 or more")
        elif int(points) > budgets[rule]:
            problems.append(
                f"{value!r}: more than the rule's budget ({budgets[rule]} points in all)"
            )
        else:
            used[rule] = int(points)
    if problems:
        fail("--budget-used: " + "; ".join(problems), code="invalid_budget_used", fmt=fmt)
    return ProgramState(used)


def _read_json(path: Path, fmt: OutputFormat) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror}", code="unreadable", fmt=fmt)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column, message = not_utf8(data, exc)
        fail(f"{path}:{line}:{column}: {message}", code="invalid_json", fmt=fmt)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}",
            code="invalid_json",
            fmt=fmt,
        )


def _errors(path: Path, exc: ValidationError) -> str:
    return "; ".join(
        f"{path}: {'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
        for err in exc.errors()
    )


def _read_event(path: Path, fmt: OutputFormat) -> Event:
    try:
        return Event.model_validate(_read_json(path, fmt))
    except ValidationError as exc:
        fail(_errors(path, exc), code="invalid_event", fmt=fmt)


def _read_member(path: Path | None, ref: str, fmt: OutputFormat) -> MemberState:
    if path is None:
        return MemberState(ref=ref)
    try:
        data = _read_json(path, fmt)
        if isinstance(data, dict):
            data = {"ref": ref, **data}
        return member_from_json(data)
    except ValidationError as exc:
        fail(_errors(path, exc), code="invalid_member", fmt=fmt)


def _print_decision(decision: Decision, earned: list[dict[str, Any]]) -> None:
    rows = [
        {
            "rule": t.rule,
            "outcome": t.outcome.value,
            "points": t.points,
            "currency": t.currency or "",
            "note": t.note,
        }
        for t in decision.trace
    ]
    print_rows(rows, OutputFormat.table, title=f"Trace of event {decision.event_id}")
    earned = [
        {k: e[k] for k in ("currency", "points", "pending_until", "expires_at")} for e in earned
    ]
    print_rows(
        earned,
        OutputFormat.table,
        title="Earned",
        columns=list(earned[0]) if earned else ["currency", "points"],
    )
    if decision.coupon is not None:
        c = decision.coupon
        status = "accepted" if c.accepted else f"refused ({c.reason})"
        console.print(f"Coupon {c.code}: {status}")
