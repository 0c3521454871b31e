"""Erasure: remove a member's personal data while the books stay whole.

What changes, in one transaction under the member's lock:

* the member's reference (card number, customer id: the external id) becomes the
  tombstone ``erased-<member id>`` (with leading zeros, ``erased-010``, if a client's
  reference already holds that form) everywhere it is stored (member, profile, events,
  usage, tier timeline, coupons, redemptions, webhook events), so every row still
  joins up and the member's balances, lots and postings stay exactly as they were
  (ledger rows are append-only and carry no personal data);
* profile data goes: attributes and segments emptied, birth date cleared;
* webhook events about the member keep only ``{"member": <tombstone>, "erased": true}``,
  are never dispatched if they were not yet, and their undelivered deliveries stop
  (dead, ``member erased``; one a worker has claimed too: it checks again right before
  sending, see :mod:`fidelite.webhooks.worker`); the receivers' answers kept in the
  attempt log of their deliveries (``response``, which may quote the event) are
  blanked (NULL), the rest of each attempt (time, status, error) stays. An erasure of
  an earlier version kept them: erasing the reference or the tombstone again (a repeated
  erasure, which otherwise changes nothing) blanks them too;
* ledger transactions keep every amount; only their stored receipts (which name the
  member), the expiry job's idempotency keys of earlier versions, which named the
  member (``expire:<ref>:...``, ``lapse<N>:<ref>:...``), and a bulk adjustment's keys
  (``api-bulk:<Idempotency-Key>:<ref>``) are rewritten to the tombstone (the one update
  the ledger's append-only rule admits, migration 0004); the expiry job's keys now name
  the member by internal id only;
* the answers the API stored for retries (``Idempotency-Key``) that name the member are
  anonymised (:mod:`fidelite.privacy.answers`): the reference becomes the tombstone in
  the answer and its route, profile data in it goes, so a retry replays the anonymised
  answer. The command line's ``--key`` answers are covered above: a redemption's is its
  row and its ledger receipt, a ledger operation's its receipt, and a tier assignment's
  (``idempotency_records``) names no member;
* the enrolment's idempotency records are deleted, so the reference may enrol again as
  a new member: the default key's (``member:<ref>``) and a ``member add --key`` one's
  (any key whose request was enrolling this reference); kept, a re-run of that command
  would replay the erased member and show its tombstone;
* coupon rollbacks (``coupon_rollbacks``) are left as they are: they name no member,
  only the purchase and refund event ids and the code, and belong to the member through
  the purchase's event (moved to the tombstone above), so the books of coupon use stay
  whole;
* an erasure record keeps the member id, the tombstone, the reason, the time and a
  SHA-256 digest of program and reference (:func:`~fidelite.processing.erased.ref_digest`,
  shared with processing), so that a repeated request for a reference no member holds
  any more is recognised (idempotent) without keeping the reference itself, and a file
  imported again recognises the erased member's rows (skipped, nothing written; see
  :mod:`fidelite.processing.importer`). A reference enrolled again after erasure is a
  new member, erased anew.

Known limit: identifiers chosen by clients (event ids, idempotency keys of API calls,
ledger ``source``/``reason`` texts, an operator's tier assignment reason in the tier
timeline) are kept as given, as is the request hash of a
stored answer (a SHA-256 of route and body, which a retry must match); if a client
embeds personal data in them, erasure does not find it. Use opaque references (card
numbers, not e-mail addresses) for members and events. Files written before the
erasure (an import's ``*.rejects.csv``, ``coupon issue -o``'s CSV) are outside the
database and keep the reference: the business deletes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from fidelite.ledger import Rejected, RejectionCode
from fidelite.ledger.validation import derived_key
from fidelite.privacy.answers import anonymise_answers
from fidelite.privacy.export import enrolment_records, member_row
from fidelite.processing.erased import ref_digest
from fidelite.processing.tables import (
    coupons,
    events,
    member_states,
    redemptions,
    rule_usage,
    tier_changes,
)
from fidelite.store.locking import lock_member
from fidelite.store.tables import IdempotencyRecord, LedgerTransaction, Member
from fidelite.webhooks.tables import attempts, deliveries, erasures, outbox

_MEMBERS: Table = Member.__table__  # type: ignore[assignment]
_IDEMPOTENCY: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
_TRANSACTIONS: Table = LedgerTransaction.__table__  # type: ignore[assignment]
_LAPSE_JOB = re.compile(r"lapse\d+")  # the inactivity expiry job's key prefix
_BULK_JOB = "api-bulk"  # a bulk adjustment's keys: api-bulk:<Idempotency-Key>:<member>
_BY_REF = (events, rule_usage, tier_changes, coupons, redemptions)


@dataclass(frozen=True)
class Erasure:
    """The record of an erasure (``replayed``: it had been done before)."""

    member_id: int
    tombstone: str
    reason: str
    erased_at: datetime
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "tombstone": self.tombstone,
            "reason": self.reason,
            "erased_at": self.erased_at.isoformat(),
            "replayed": self.replayed,
        }


def erase_member(
    conn: Connection,
    program_id: str,
    member_ref: str,
    *,
    reason: str = "data subject request",
    at: datetime | None = None,
) -> Erasure:
    """Erase ``member_ref``'s personal data (see the module docstring); idempotent."""
    digest = ref_digest(program_id, member_ref)
    try:
        member = member_row(conn, program_id, member_ref)
    except Rejected:
        member = None
    if member is None or member.status == "erased":  # gone, or named by its tombstone
        prior = _prior(conn, program_id, digest, member_ref)
        if prior is not None:
            return _repeated(conn, program_id, digest, member_ref, prior)
        member = member_row(conn, program_id, member_ref)  # raises unknown_member
    mid = int(member.id)
    lock_member(conn, mid)
    # Read again under the lock: an erasure of the same member running at the same time
    # (PostgreSQL) may have committed since the read above; this one is then a repeat.
    status = conn.execute(select(_MEMBERS.c.status).where(_MEMBERS.c.id == mid)).scalar_one()
    if status == "erased":
        prior = _prior(conn, program_id, digest, member_ref)
        if prior is not None:
            return _repeated(conn, program_id, digest, member_ref, prior)
    tombstone = _free_tombstone(conn, program_id, mid)
    now = at or datetime.now(UTC)
    conn.execute(update(_MEMBERS).where(_MEMBERS.c.id == mid).values(ref=tombstone,
                                                                      status="erased"))  # fmt: skip
    conn.execute(
        update(member_states)
        .where(member_states.c.program_id == program_id, member_states.c.member_ref == member_ref)
        .values(member_ref=tombstone, attributes={}, segments=[], birth_date=None)
    )
    for table in _BY_REF:
        conn.execute(
            update(table)
            .where(table.c.program_id == program_id, table.c.member_ref == member_ref)
            .values(member_ref=tombstone)
        )
    _pseudonymise_ledger(conn, mid, member_ref, tombstone)
    anonymise_answers(conn, program_id, member_ref, tombstone)
    about = select(outbox.c.id).where(
        outbox.c.program_id == program_id, outbox.c.member_ref == member_ref
    )
    conn.execute(
        update(deliveries)
        .where(deliveries.c.outbox_id.in_(about), deliveries.c.state.in_(("pending", "failed")))
        .values(state="dead", last_error="member erased", next_attempt_at=None,
                lease_token=None, lease_until=None)
    )  # fmt: skip
    conn.execute(  # after the deliveries: see fidelite.webhooks.worker (record)
        update(attempts)
        .where(attempts.c.delivery_id.in_(
            select(deliveries.c.id).where(deliveries.c.outbox_id.in_(about))
        ))
        .values(response=None)
    )  # fmt: skip
    conn.execute(
        update(outbox)
        .where(outbox.c.program_id == program_id, outbox.c.member_ref == member_ref)
        .values(
            member_ref=tombstone, payload={"member": tombstone, "erased": True}, dispatched=True
        )
    )
    conn.execute(delete(_IDEMPOTENCY).where(*enrolment_records(program_id, member_ref)))
    conn.execute(
        insert(erasures),
        {"program_id": program_id, "member_id": mid, "ref_digest": digest,
         "tombstone": tombstone, "reason": reason[:200], "erased_at": now},
    )  # fmt: skip
    return Erasure(mid, tombstone, reason[:200], now)


def _free_tombstone(conn: Connection, program_id: str, member_id: int) -> str:
    """``erased-<member id>``, or, if a client's reference already holds it (a member
    enrolled as ``erased-10``), the same number with leading zeros (``erased-010``): no
    two members may share a reference, and a tombstone stays ``erased-`` and digits
    reading as its member id, which is how the erasure record recognises it."""
    zeros = ""
    while True:
        tombstone = f"erased-{zeros}{member_id}"
        taken = conn.execute(
            select(_MEMBERS.c.id).where(
                _MEMBERS.c.program_id == program_id, _MEMBERS.c.ref == tombstone
            )
        ).first()
        if taken is None:
            return tombstone
        zeros += "0"


def _pseudonymise_ledger(conn: Connection, member_id: int, ref: str, tombstone: str) -> None:
    """Rewrite the member reference inside stored receipts and legacy expiry keys."""
    for tid, key, result in conn.execute(
        select(_TRANSACTIONS.c.id, _TRANSACTIONS.c.idempotency_key, _TRANSACTIONS.c.result)
        .where(_TRANSACTIONS.c.member_id == member_id)
    ).all():  # fmt: skip
        values: dict[str, Any] = {}
        if isinstance(result, dict) and result.get("member_ref") == ref:
            values["result"] = {**result, "member_ref": tombstone}
        job, _, rest = key.partition(":")
        if (job == "expire" or _LAPSE_JOB.fullmatch(job)) and rest.startswith(f"{ref}:"):
            values["idempotency_key"] = f"{job}:{tombstone}:" + rest[len(ref) + 1 :]
        elif job == _BULK_JOB and key.endswith(f":{ref}"):
            # the tombstone may be longer than the reference: a key that fitted the
            # column with it keeps its caller's key digested (derived_key), as a bulk
            # call's key too long to store whole is
            client = key[len(_BULK_JOB) + 1 : -len(ref) - 1]
            values["idempotency_key"] = derived_key(f"{_BULK_JOB}:", client, f":{tombstone}")
        if values:
            conn.execute(update(_TRANSACTIONS).where(_TRANSACTIONS.c.id == tid).values(**values))


def _repeated(
    conn: Connection, program_id: str, digest: str, member_ref: str, prior: Erasure
) -> Erasure:
    """A repeated erasure (``prior``): nothing changes but a repair of what an erasure of
    an earlier version left, which kept the receivers' answers in the attempt log of the
    member's deliveries (they may quote the reference): they are blanked (NULL) for
    every erasure of this reference (or this tombstone), as the erasure now blanks them.
    Idempotent: an answer already blank is not written again."""
    tombstones = select(erasures.c.tombstone).where(*_of(program_id, digest, member_ref))
    about = select(outbox.c.id).where(
        outbox.c.program_id == program_id, outbox.c.member_ref.in_(tombstones)
    )
    conn.execute(
        update(attempts)
        .where(attempts.c.delivery_id.in_(
            select(deliveries.c.id).where(deliveries.c.outbox_id.in_(about))
        ), attempts.c.response.is_not(None))
        .values(response=None)
    )  # fmt: skip
    return prior


def _of(program_id: str, digest: str, member_ref: str) -> tuple[Any, Any]:
    """The ``WHERE`` of the erasure records of this reference (or of this tombstone)."""
    return (
        erasures.c.program_id == program_id,
        (erasures.c.ref_digest == digest) | (erasures.c.tombstone == member_ref),
    )


def _prior(conn: Connection, program_id: str, digest: str, member_ref: str) -> Erasure | None:
    """The latest erasure of this reference (or of this tombstone), if any."""
    row = conn.execute(
        select(erasures)
        .where(*_of(program_id, digest, member_ref))
        .order_by(erasures.c.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return Erasure(int(row.member_id), row.tombstone, row.reason, row.erased_at, replayed=True)


__all__ = ["Erasure", "Rejected", "RejectionCode", "erase_member", "ref_digest"]
