"""`fidelite program` commands: write an example, check a file, simulate an event."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import typer
from pydantic import ValidationError

from fidelite.cli.output import OutputFormat, console, fail, print_json, print_rows
from fidelite.engine import CouponStatus, Evaluator, Event
from fidelite.engine.decision import Decision
from fidelite.engine.member import MemberState
from fidelite.engine.snapshot import member_from_json
from fidelite.program import ProgramDefinition, ProgramError, load_program

app = typer.Typer(help="Program definitions: write, check and try them.", no_args_is_help=True)

FORMAT = typer.Option(OutputFormat.table, "--format", "-f", help="table or json.")


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
    if file.exists() and not force:
        fail(f"{file} already exists (use --force to overwrite)", code="exists", fmt=fmt)
    file.write_text(example_text(), encoding="utf-8")
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
        fail(str(exc), code="invalid_program", fmt=fmt, problems=problems)


@app.command("check")
def check(
    file: Path = typer.Argument(..., help="Program file (YAML)."), fmt: OutputFormat = FORMAT
) -> None:
    """Validate a program file; every problem is listed with its line and field.

    Example: fidelite program check program.yaml
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
            f"{v} {k.replace('_', ' ')}" for k, v in summary.items() if k != "program"
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
        CouponStatus.issued, "--coupon-status", help="Assume the event's coupon is in this state."
    ),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Dry run: show what one event would earn and why, rule by rule. Nothing is written.

    Example: fidelite program simulate program.yaml event.json --member member.json
    """
    program = _load(file, fmt)
    event = _read_event(event_file, fmt)
    member = _read_member(member_file, event.member, fmt)
    decision = Evaluator(program).evaluate(event, member, coupon_status=coupon_status)
    if fmt is OutputFormat.json:
        print_json(decision.as_dict())
        return
    _print_decision(decision)


def _read_json(path: Path, fmt: OutputFormat) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror}", code="unreadable", fmt=fmt)
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


def _print_decision(decision: Decision) -> None:
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
        {
            "currency": e.currency,
            "points": e.points,
            "pending_until": e.pending_until,
            "expires_at": e.expires_at,
        }
        for e in decision.earnings
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
