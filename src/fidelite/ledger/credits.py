"""A credit for many members at once (e.g. goodwill after an outage): the domain side of
``POST /v1/adjustments:bulk`` and ``fidelite ledger credit-all``.

Each member's credit is an ordinary :meth:`~fidelite.ledger.service.Ledger.adjust` with
its own idempotency key (made by the caller from the request's key and the member), so
a member is credited at most once per key whatever happens. The credits are written
in chunks of :data:`CHUNK` members, one database transaction per chunk, instead of one
per member: a commit (a disk flush on SQLite, a round trip and a WAL flush on
PostgreSQL) is paid per chunk. A member refused (unknown, erased) is refused under a
savepoint, which undoes only that member's writes. A crash or a stop mid-chunk rolls
the whole chunk back: the chunks before it are committed (their keys replay on a
retry), the interrupted one is not written at all (a retry credits it then), so a retry
with the same key credits every member exactly once.

Within a chunk the members are locked in one order (by reference), so that two bulk
credits over the same members cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fidelite.ledger import validation as valid
from fidelite.ledger.errors import Rejected, invalid
from fidelite.ledger.receipts import Receipt
from fidelite.ledger.service import Ledger
from fidelite.program.policy import ExpiryPolicy

CHUNK = 250
"""Members credited per database transaction: a few hundred keep a chunk well under a
second (other writers wait on SQLite's single writer meanwhile) while the commit costs
next to nothing per member."""


@dataclass(frozen=True)
class Credit:
    """One member's outcome: the receipt of the credit, or why it was refused."""

    member: str
    receipt: Receipt | None = None
    refusal: Rejected | None = None


def credit_all(
    ledger: Ledger,
    program_id: str,
    members: Sequence[str],
    currency: str,
    points: int,
    *,
    key: Callable[[str], str],
    reason: str,
    actor: str,
    expires_at: datetime | None = None,
    policy: ExpiryPolicy | None = None,
    zone: ZoneInfo | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> list[Credit]:
    """Credit ``points`` (> 0) now to each of ``members`` (each listed once), with
    ``reason`` and ``actor``; one :class:`Credit` per member, in the order given.

    ``key(member)`` is the member's idempotency key (the same on a retry). Without
    ``expires_at`` the points get the date ``policy`` gives points earned now. What is
    wrong whatever the member (points not > 0, a blank reason or actor, an
    ``expires_at`` not later than now, a member listed twice) is refused whole with
    ``invalid_request`` before anything is written. ``progress(n)`` is called after
    each chunk commits, with the number of members it held."""
    pts = valid.points(points)
    valid.text(reason, "reason")
    valid.text(actor, "actor")
    if not isinstance(chunk, int) or chunk < 1:
        raise invalid("chunk", "must be a positive whole number")
    now = ledger.now()
    if expires_at is not None and expires_at <= now:
        local = zone or ZoneInfo("UTC")
        raise invalid("expires_at", f"must be later than now ({now.astimezone(local).isoformat()}"
                      f"): points expiring at {expires_at.astimezone(local).isoformat()} would "
                      "already be expired")  # fmt: skip
    seen: set[str] = set()
    twice = sorted({m for m in members if m in seen or seen.add(m)})  # type: ignore[func-returns-value]
    if twice:
        raise invalid("members", f"listed more than once: {', '.join(twice[:10])}")
    done: dict[str, Credit] = {}
    for start in range(0, len(members), chunk):
        part = members[start : start + chunk]
        found: dict[str, Credit] = {}
        with ledger.db.write() as conn:
            for member in sorted(part):  # one lock order for every bulk credit
                try:
                    receipt = ledger.adjust(
                        program_id, member, currency, pts, key=key(member), reason=reason,
                        actor=actor, expires_at=expires_at, policy=policy, zone=zone, conn=conn,
                    )  # fmt: skip
                except Rejected as exc:
                    found[member] = Credit(member, refusal=exc)
                else:
                    found[member] = Credit(member, receipt=receipt)
        done.update(found)  # committed: only now are these credits reported
        if progress is not None:
            progress(len(part))
    return [done[m] for m in members]
