"""Export: every row fidelite holds about one member, as one JSON-ready document.

Sections: the member (reference, status, enrolment), their profile (tier, segments,
attributes, birth date, purchase count), balances, the ledger history with the
postings on the member's own accounts, lots, processed events with their traces,
redemptions, the tier timeline, coupons, the coupon codes given back by refunds of their
purchases (``coupon_rollbacks``), rule usage, the webhook events about them with their
deliveries to each subscription (state, attempts, last error, each attempt), the answers the API
stored for retries that name them (``api_requests``, found as the erasure finds them:
a ``POST`` or ``PATCH /v1/members`` answer keeps the profile as it was then), the
command line's stored answers that name them (``idempotency_records``: their
enrolment, under ``member:<ref>`` or a ``member add --key``) and the erasure record if
they were erased. Times are ISO 8601 (UTC), amounts strings.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, and_, select

from fidelite.ledger import unknown_member
from fidelite.ledger.idempotency import request_hash
from fidelite.privacy.answers import anonymised, answers_naming, own_part
from fidelite.processing.tables import (
    coupon_rollbacks,
    coupons,
    events,
    member_states,
    redemptions,
    rule_usage,
    tier_changes,
)
from fidelite.store.tables import (
    Account,
    IdempotencyRecord,
    LedgerTransaction,
    Lot,
    Member,
    Posting,
)
from fidelite.webhooks.tables import attempts, deliveries, erasures, outbox

_ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
_IDEMPOTENCY: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
_TRANSACTIONS: Table = LedgerTransaction.__table__  # type: ignore[assignment]
_LOTS: Table = Lot.__table__  # type: ignore[assignment]
_MEMBERS: Table = Member.__table__  # type: ignore[assignment]
_POSTINGS: Table = Posting.__table__  # type: ignore[assignment]


def plain(value: Any) -> Any:
    """JSON-ready: ISO strings for times and dates, strings for decimals."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _rows(conn: Connection, table: Table, *where: Any, order: Any) -> list[dict[str, Any]]:
    found = conn.execute(select(table).where(*where).order_by(order)).mappings()
    return [plain({k: v for k, v in r.items() if k != "program_id"}) for r in found]


def member_row(conn: Connection, program_id: str, member_ref: str) -> Any:
    """The member's row, or ``unknown_member``."""
    row = conn.execute(
        select(_MEMBERS).where(_MEMBERS.c.program_id == program_id, _MEMBERS.c.ref == member_ref)
    ).one_or_none()
    if row is None:
        raise unknown_member(program_id, member_ref)
    return row


def export_member(conn: Connection, program_id: str, member_ref: str) -> dict[str, Any]:
    """Everything held on ``member_ref`` in ``program_id`` (``unknown_member`` if none)."""
    member = member_row(conn, program_id, member_ref)
    mid = int(member.id)
    by_ref = (program_id, member_ref)
    profile = _rows(conn, member_states, *_ref_of(member_states, *by_ref),
                    order=member_states.c.member_ref)  # fmt: skip
    for row in profile:
        row.pop("member_ref")
    return {
        "program": program_id,
        "member": {
            "id": mid,
            "ref": member.ref,
            "status": member.status,
            "created_at": plain(member.created_at),
        },
        "profile": profile[0] if profile else None,
        "balances": [
            # Accounts as stored, signed as the ledger signs them (debt <= 0), so that
            # each equals the sum of its postings under "ledger"; named account_balance
            # so that -275 on the debt account is not read as the member's debt (275
            # owed, as `ledger balance` and GET /balance report it).
            {"currency": r.currency, "kind": r.kind, "account_balance": int(r.balance)}
            for r in conn.execute(
                select(_ACCOUNTS.c.currency, _ACCOUNTS.c.kind, _ACCOUNTS.c.balance)
                .where(_ACCOUNTS.c.member_id == mid)
                .order_by(_ACCOUNTS.c.currency, _ACCOUNTS.c.kind)
            )
        ],
        "ledger": _ledger(conn, mid),
        "lots": _rows(conn, _LOTS, _LOTS.c.member_id == mid, order=_LOTS.c.id),
        "events": _rows(conn, events, *_ref_of(events, *by_ref), order=events.c.occurred_at),
        "redemptions": _rows(
            conn, redemptions, *_ref_of(redemptions, *by_ref), order=redemptions.c.id
        ),
        "tier_changes": _rows(
            conn, tier_changes, *_ref_of(tier_changes, *by_ref), order=tier_changes.c.id
        ),
        "coupons": _rows(conn, coupons, *_ref_of(coupons, *by_ref), order=coupons.c.code),
        "coupon_rollbacks": _rollbacks(conn, program_id, member_ref),
        "rule_usage": _rows(
            conn, rule_usage, *_ref_of(rule_usage, *by_ref), order=rule_usage.c.rule_id
        ),
        "webhook_events": _webhook_events(conn, program_id, member_ref),
        "stored_answers": [
            plain({**row, "body": own_part(row["body"], member_ref)})
            for row in answers_naming(conn, program_id, member_ref)
        ],
        "idempotency_records": _records(conn, program_id, member_ref, mid),
        "erasure": _erasure(conn, program_id, mid),
    }


def _ref_of(table: Table, program_id: str, member_ref: str) -> tuple[Any, Any]:
    return (table.c.program_id == program_id, table.c.member_ref == member_ref)


def _webhook_events(conn: Connection, program_id: str, member_ref: str) -> list[dict[str, Any]]:
    """The webhook events about the member, each with its deliveries (one per
    subscription: every column but ``program_id`` and ``outbox_id``), oldest first."""
    found = [
        {k: plain(v) for k, v in r.items()}
        for r in conn.execute(
            select(outbox.c.id, outbox.c.event_type, outbox.c.created_at, outbox.c.payload)
            .where(*_ref_of(outbox, program_id, member_ref))
            .order_by(outbox.c.id)
        ).mappings()
    ]
    sent: dict[int, list[dict[str, Any]]] = {int(e["id"]): [] for e in found}
    d, a = deliveries, attempts
    for start in range(0, len(found), 500):
        ids = [int(e["id"]) for e in found[start : start + 500]]
        rows = conn.execute(select(d).where(d.c.outbox_id.in_(ids)).order_by(d.c.id)).mappings()
        made = {int(row["id"]): row for row in rows}
        tried: dict[int, list[dict[str, Any]]] = {did: [] for did in made}
        if made:
            for t in conn.execute(
                select(a).where(a.c.delivery_id.in_(sorted(made))).order_by(a.c.id)
            ).mappings():  # fmt: skip
                tried[int(t["delivery_id"])].append(
                    plain({k: v for k, v in t.items() if k != "delivery_id"})
                )
        for did, row in made.items():
            sent[int(row["outbox_id"])].append({
                **plain({k: v for k, v in row.items() if k not in ("program_id", "outbox_id")}),
                "attempt_log": tried[did],
            })  # fmt: skip
    return [{**e, "deliveries": sent[int(e["id"])]} for e in found]


def enrolment_records(program_id: str, member_ref: str) -> tuple[Any, Any]:
    """The ``WHERE`` of the command line's enrolment records of ``member_ref``
    (``idempotency_records``): the default key's (``member:<ref>``) and those of any
    other key (``member add --key``) whose request enrolled this reference (its
    request hash)."""
    t = _IDEMPOTENCY
    enrolment = request_hash({"op": "create_member", "member_ref": member_ref})
    return (
        t.c.program_id == program_id,
        (t.c.key == f"member:{member_ref}") | (t.c.request_hash == enrolment),
    )


def _records(
    conn: Connection, program_id: str, member_ref: str, member_id: int
) -> list[dict[str, Any]]:
    """The command line's stored answers (``idempotency_records``) naming the member:
    their enrolment's (``member:<ref>``, or another ``--key``'s enrolling the reference,
    answered with their member id) and any whose answer names them."""
    t = _IDEMPOTENCY
    enrolled = enrolment_records(program_id, member_ref)
    found = conn.execute(
        select(t).where(t.c.program_id == program_id).where(
            and_(*enrolled) | ~t.c.key.like("member:%")
        ).order_by(t.c.created_at, t.c.key)
    ).mappings()  # fmt: skip
    other = member_ref + "\x00"
    enrolment = request_hash({"op": "create_member", "member_ref": member_ref})

    def theirs(row: Any) -> bool:
        if row["key"] == f"member:{member_ref}":
            return True
        if row["request_hash"] == enrolment:
            return isinstance(row["result"], dict) and row["result"].get("member_id") == member_id
        return bool(anonymised(row["result"], member_ref, other) != row["result"])

    return [plain({k: v for k, v in row.items() if k != "program_id"}) for row in found
            if theirs(row)]  # fmt: skip


def _rollbacks(conn: Connection, program_id: str, member_ref: str) -> list[dict[str, Any]]:
    """The codes given back by full refunds of the member's purchases, column for column.

    A rollback row names no member: it is the member's through its purchase (the
    ``processed_events`` row of ``purchase_event_id``, which erasure moves to the
    tombstone), so it is found by that purchase, whoever the code was issued to (a code
    shared by all is given back too). Oldest first."""
    r = coupon_rollbacks
    found = conn.execute(
        select(r)
        .join(events, (events.c.program_id == r.c.program_id)
              & (events.c.event_id == r.c.purchase_event_id))
        .where(r.c.program_id == program_id, events.c.member_ref == member_ref)
        .order_by(r.c.rolled_back_at, r.c.purchase_event_id)
    ).mappings()  # fmt: skip
    return [plain({k: v for k, v in row.items() if k != "program_id"}) for row in found]


def _ledger(conn: Connection, member_id: int) -> list[dict[str, Any]]:
    t = _TRANSACTIONS
    postings: dict[int, list[dict[str, Any]]] = {}
    for p in conn.execute(
        select(_POSTINGS.c.transaction_id, _ACCOUNTS.c.kind, _POSTINGS.c.lot_id, _POSTINGS.c.points)
        .join(_ACCOUNTS, _ACCOUNTS.c.id == _POSTINGS.c.account_id)
        .where(_ACCOUNTS.c.member_id == member_id)
        .order_by(_POSTINGS.c.id)
    ):
        postings.setdefault(int(p.transaction_id), []).append(
            {"account": p.kind, "lot_id": p.lot_id, "points": int(p.points)}
        )
    names = "id kind currency points reversed_points reverses_id reason source actor detail"
    names += " occurred_at recorded_at"
    columns = [t.c[name] for name in names.split()]
    rows = conn.execute(select(*columns).where(t.c.member_id == member_id).order_by(t.c.id))
    return [{**plain(dict(r)), "postings": postings.get(int(r.id), [])} for r in rows.mappings()]


def _erasure(conn: Connection, program_id: str, member_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(erasures.c.tombstone, erasures.c.reason, erasures.c.erased_at).where(
            erasures.c.program_id == program_id, erasures.c.member_id == member_id
        )
    ).mappings().one_or_none()  # fmt: skip
    return None if row is None else plain(dict(row))
