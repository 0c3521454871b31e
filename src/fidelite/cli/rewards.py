"""``fidelite rewards``: the catalogue, redemptions, their cancellation and their use.

Every command calls the processor the API calls (``GET /v1/rewards``, ``POST
/v1/redemptions``, ``POST /v1/redemptions/{id}:cancel``): the same checks in the same
precedence, the same single transaction (points spent, stock taken, code issued,
webhooks announced), the same refusal codes. A refused redemption changes nothing.

A redemption spends points, so a retry must not spend them twice: ``redeem`` takes an
idempotency ``--key`` (required, as the API's ``Idempotency-Key`` is). The same key for
the same member and reward answers with the first redemption; for another, it is
refused (``idempotency_conflict``). Keys given here and keys given to the API are kept
apart, so a till's key cannot answer an operator's redemption.

``use`` records that the reward was handed over in store (``POST
/v1/redemptions/{id}:use``): a used redemption reads ``used`` and can no longer be
cancelled; it takes a ``--key`` too, so that a retry answers the first use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select

from fidelite.cli.options import DbOption, FormatOption, TableJsonOption
from fidelite.cli.output import OutputFormat, console, fail, print_json, print_rows
from fidelite.cli.processor import REPLAYED, ProgramFileOption, apply, moment, open_processor
from fidelite.engine.rewards import stock_left
from fidelite.ledger.validation import MAX_TEXT, redemption_key
from fidelite.processing import EventProcessor, Redemption
from fidelite.processing import redemptions as found_redemptions
from fidelite.processing.tables import redemptions as redemptions_table
from fidelite.store.tables import LedgerTransaction

app = typer.Typer(
    help="Rewards: the catalogue, redeeming points for a reward, cancelling a redemption, "
    "marking it used in store.\n\n"
    "Example: fidelite rewards redeem CARD-0001 free_coffee --key desk-2027-0042 -p program.yaml",
    no_args_is_help=True,
)

CATALOGUE_COLUMNS = ["id", "name", "kind", "cost", "currency", "stock", "left",
                     "per_member_limit", "tiers", "valid_from", "valid_until"]  # fmt: skip
"""A catalogue entry as listed: ``stock`` as the program defines it, ``left`` what is
still to give (both empty: unlimited); ``tiers`` empty: every tier."""
REDEMPTION_COLUMNS = ["id", "member", "reward", "points", "currency", "code", "status",
                      "redeemed_at", "transaction_id", "cancel_transaction_id"]  # fmt: skip
HISTORY_TABLE_COLUMNS = ["id", "reward", "points", "currency", "code", "status", "redeemed_at"]
"""A member's history in a table: the member is the one asked for, and the ledger
transactions are in JSON, CSV and `show`; fewer columns keep the code whole on a
terminal."""
MAX_ID = 2**63 - 1  # the largest id the database stores

RedemptionArgument = typer.Argument(
    ..., min=1, max=MAX_ID, help="The redemption's id (as `redeem` and `history` print it)."
)


def _spent_in(processor: EventProcessor, found: list[Redemption]) -> dict[int, str]:
    """The currency each redemption's points were spent in, by its spend transaction:
    the ledger's record, so a reward or currency since removed from the program file
    does not change it."""
    ids = [r.transaction_id for r in found]
    if not ids:
        return {}
    table = LedgerTransaction.__table__
    with processor.db.read() as conn:
        rows = conn.execute(
            select(table.c.id, table.c.currency).where(
                table.c.program_id == processor.program.id, table.c.id.in_(ids)
            )
        ).all()
    return {int(tid): str(currency) for tid, currency in rows}


def _used(processor: EventProcessor, found: list[Redemption]) -> set[int]:
    """The ids of those of ``found`` used in store (their status reads ``used``)."""
    ids = [r.id for r in found if r.status == "active"]
    if not ids:
        return set()
    table = redemptions_table
    with processor.db.read() as conn:
        rows = conn.execute(
            select(table.c.id).where(table.c.id.in_(ids), table.c.used_at.is_not(None))
        ).scalars()
        return {int(i) for i in rows}


def _redemption(
    processor: EventProcessor,
    found: Redemption,
    spent_in: dict[int, str] | None = None,
    used: set[int] | None = None,
) -> dict[str, Any]:
    """A redemption as printed, in the currency its points were spent in (the API's
    fields, and when); ``spent_in``, ``used``: :func:`_spent_in` and :func:`_used` of a
    list holding it, read once."""
    if spent_in is None:
        spent_in = _spent_in(processor, [found])
    if used is None:
        used = _used(processor, [found])
    currency = spent_in.get(found.transaction_id)
    if currency is None:  # not expected: the spend transaction is kept with the redemption
        reward = processor.program.reward(found.reward_id)
        currency = processor.program.currency_of(reward.currency if reward else None)
    return {"id": found.id, "member": found.member_ref, "reward": found.reward_id,
            "points": found.points, "currency": currency, "code": found.code,
            "status": "used" if found.id in used else found.status,
            "redeemed_at": found.redeemed_at.astimezone(UTC),
            "transaction_id": found.transaction_id,
            "cancel_transaction_id": found.cancel_transaction_id}  # fmt: skip


@app.command("list")
def list_rewards(
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """The program's rewards, in the program's order: cost, stock left, limits, tiers
    and validity (valid_until is exclusive).

    Stock left counts the redemptions not cancelled, as a redemption checks it.

    Example: fidelite rewards list -p program.yaml
    """
    with open_processor(program_file, db, fmt) as processor:
        redeemed = apply(processor.redeemed_counts, fmt)
        program = processor.program
        rows: list[dict[str, Any]] = [
            {"id": r.id, "name": r.name, "kind": r.kind.value, "cost": r.cost,
             "currency": program.currency_of(r.currency), "stock": r.stock,
             "left": stock_left(r.stock, redeemed.get(r.id, 0)),
             "per_member_limit": r.per_member_limit,
             # a list in JSON; a cell of a table or CSV row
             "tiers": list(r.tiers) if fmt is OutputFormat.json else " ".join(r.tiers),
             "valid_from": r.valid_from and r.valid_from.astimezone(UTC),
             "valid_until": r.valid_until and r.valid_until.astimezone(UTC)}
            for r in program.rewards
        ]  # fmt: skip
    print_rows(rows, fmt, title=f"Rewards of {program.id}", columns=CATALOGUE_COLUMNS)


ActorOption = typer.Option(
    None,
    "--actor",
    help="Who does it (kept with the redemption, as `ledger adjust --actor` is on the "
    "member's history).",
)


@app.command("redeem")
def redeem(
    member: str = typer.Argument(..., help="The member's reference."),
    reward: str = typer.Argument(..., help="The reward's id, as `rewards list` shows it."),
    key: str = typer.Option(
        ...,
        "--key",
        "-k",
        help="Idempotency key: a retry with it spends nothing again and prints the first "
        "redemption; with another member or reward it is refused.",
    ),
    actor: str | None = ActorOption,
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Spend a reward's cost from a member's points and print the code to hand over.

    One transaction: the points spent, the stock taken, the code issued. Refused, with
    nothing changed, when the member is not enrolled (checked first); then when the
    reward is unknown, not yet or no longer available, not for the member's tier, out of
    stock, redeemed up to the member's limit, or when the member is short of points (the
    first of these, in this order). A refusal does not use up the key.

    Example: fidelite rewards redeem CARD-0001 free_coffee --key desk-2027-0042 -p program.yaml
    """
    if not key.strip():  # an unset $KEY: every later redemption would share one key
        fail("--key must be a non-empty text (the API refuses an empty Idempotency-Key too)",
             code="usage", fmt=fmt)  # fmt: skip
    if len(key) > MAX_TEXT:  # as the ledger refuses the key of its other commands
        fail(f"key: must be at most {MAX_TEXT} characters", code="invalid_request", fmt=fmt,
             field="key")  # fmt: skip
    with open_processor(program_file, db, fmt) as processor:
        done = apply(lambda: processor.redeem(member, reward, key=redemption_key("cli:", key),
                                              at=datetime.now(UTC), actor=actor), fmt)  # fmt: skip
        shown = _redemption(processor, done)
    if fmt is OutputFormat.json:
        print_json(shown | {"replayed": done.replayed})
        return
    if done.replayed and shown["status"] == "cancelled":  # no code to hand over
        console.print(f"not redeemed again: key already used by redemption {done.id} of "
                      f"{reward} for {member}, since cancelled: its code {shown['code']} is "
                      "void and its points were returned; redeem under a new key to redeem "
                      "again")  # fmt: skip
        return
    console.print(f"redeemed {reward} for {member}: {shown['points']} {shown['currency']} "
                  f"spent; code {shown['code']} (redemption {done.id})"
                  f"{REPLAYED if done.replayed else ''}")  # fmt: skip


@app.command("cancel")
def cancel(
    redemption: int = RedemptionArgument,
    actor: str | None = ActorOption,
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Cancel a redemption: its points come back to the member and its stock is freed.

    Points go back into the lots they were spent from, which keep their expiry date:
    those of a lot already past its date expire at once (recorded as expired points,
    not spendable); the answer says how many came back spendable and how many expired.
    Cancelling a redemption already cancelled changes nothing and says so. A redemption
    used in store (`rewards use`) is refused (redemption_used): the reward was handed
    over, so its points do not come back.

    Example: fidelite rewards cancel 42 -p program.yaml
    """
    with open_processor(program_file, db, fmt) as processor:
        done = apply(lambda: processor.cancel_redemption(redemption, at=datetime.now(UTC),
                                                         actor=actor), fmt)  # fmt: skip
        shown = _redemption(processor, done)
    back = done.returned
    assert back is not None, "a cancelled redemption says where its points went"
    if fmt is OutputFormat.json:
        print_json(shown | back.as_dict() | {"replayed": done.replayed})
        return
    again = " (already cancelled: nothing changed)" if done.replayed else ""
    unit = shown["currency"]
    parts = [f"{back.spendable} {unit} back, spendable"]
    if back.debt_repaid:
        parts.append(f"{back.debt_repaid} repaid debt")
    if back.written_off_restored:
        parts.append(f"{back.written_off_restored} back to the write-off (their purchase "
                     "was refunded): not spendable")  # fmt: skip
    if back.expired:
        dates = ", ".join(f"{n} of a lot that expired {when.astimezone(UTC).isoformat()}"
                          for when, n in back.expired_lots)  # fmt: skip
        parts.append(f"{back.expired} already expired ({dates}): expired at once, "
                     "not spendable")  # fmt: skip
    console.print(f"cancelled redemption {done.id} ({done.reward_id} for {done.member_ref}), "
                  f"{done.points} {unit}: {'; '.join(parts)}{again}")  # fmt: skip


@app.command("show")
def show(
    redemption: int = RedemptionArgument,
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """One redemption: member, reward, points, code, status (active, used in store, or
    cancelled) and its ledger transactions.

    Example: fidelite rewards show 42 -p program.yaml
    """
    with open_processor(program_file, db, fmt) as processor:
        shown = _redemption(processor, apply(lambda: processor.redemption(redemption), fmt))
    if fmt is OutputFormat.json:
        print_json(shown)
        return
    print_rows([{"field": k, "value": v} for k, v in shown.items()], fmt,
               title=f"Redemption {redemption}")  # fmt: skip


@app.command("history")
def history(
    member: str = typer.Argument(..., help="The member's reference."),
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """A member's redemptions, used and cancelled ones included, the latest first.

    Example: fidelite rewards history CARD-0001 -p program.yaml
    """
    with open_processor(program_file, db, fmt) as processor:
        found = apply(lambda: processor.redemptions_of(member), fmt)
        spent_in, used = _spent_in(processor, found), _used(processor, found)
        rows = [_redemption(processor, r, spent_in, used) for r in found]
    columns = HISTORY_TABLE_COLUMNS if fmt is OutputFormat.table else REDEMPTION_COLUMNS
    print_rows(rows, fmt, title=f"Redemptions of {member}", columns=columns)


@app.command("use")
def use(
    redemption: int = RedemptionArgument,
    key: str = typer.Option(
        ...,
        "--key",
        "-k",
        help="Idempotency key: a retry with it changes nothing and prints the first use; "
        "another key (a second use) is refused.",
    ),
    store: str | None = typer.Option(
        None, "--store", help="The store the reward was handed over in (recorded, optional)."
    ),
    at: str | None = typer.Option(
        None,
        "--at",
        help="When it was handed over (default: now): ISO 8601 with offset, or a date "
        "(its midnight in the program's time zone); not before the redemption.",
    ),
    actor: str | None = ActorOption,
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Mark a redemption used: its reward was handed over in store.

    A used redemption reads `used` (show, history, the API) and can no longer be
    cancelled, so its points cannot come back; it still counts against the reward's
    stock and the member's limit. Refused, with nothing changed, for a cancelled
    redemption (redemption_cancelled: its code is void) and for one already used under
    another key (redemption_already_used, naming when and where). The same key again
    prints the first use.

    Example: fidelite rewards use 42 --key till-7-0042 --store paris-04 -p program.yaml

    Example: fidelite rewards use 42 --key till-7-0042 --store paris-04 -p program.yaml
    --format json
    """
    if not key.strip():
        fail("--key must be a non-empty text (the API refuses an empty Idempotency-Key too)",
             code="usage", fmt=fmt)  # fmt: skip
    if len(key) > MAX_TEXT:
        fail(f"key: must be at most {MAX_TEXT} characters", code="invalid_request", fmt=fmt,
             field="key")  # fmt: skip
    with open_processor(program_file, db, fmt) as processor:
        now = datetime.now(UTC)
        when = now if at is None else moment(at, "--at", processor.program.zone, fmt)
        done = apply(lambda: found_redemptions.use(
            processor, redemption, key=found_redemptions.use_key("cli:", key), at=when,
            now=now, store=store, actor=actor), fmt)  # fmt: skip
        shown = _redemption(processor, done.redemption, used={done.redemption.id})
    used_at = done.used_at.astimezone(UTC) if done.used_at else None
    if fmt is OutputFormat.json:
        print_json(shown | {"used_at": used_at, "used_store": done.used_store,
                            "replayed": done.replayed})  # fmt: skip
        return
    where = f" in store {done.used_store}" if done.used_store else ""
    r = done.redemption
    console.print(f"used redemption {r.id} ({r.reward_id} for {r.member_ref}, code {r.code})"
                  f"{where} at {used_at and used_at.isoformat()}"
                  f"{REPLAYED if done.replayed else ''}")  # fmt: skip
