"""``points.expiring``: announce lots that will expire soon, once per lot.

Run daily (``fidelite webhooks expiring``) before the expiry job: every available lot
whose expiry date falls within ``days`` after ``as_of`` gets one outbox event (dedup
key ``points.expiring:<lot id>``), so a re-run announces nothing twice.
One run writes its events in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, text

from fidelite.store import Database
from fidelite.store.tables import UTCDateTime
from fidelite.webhooks.events import POINTS_EXPIRING
from fidelite.webhooks.outbox import record

_DUE = text(
    "SELECT l.id, m.ref, l.currency, l.remaining, l.expires_at FROM lots l "
    "JOIN members m ON m.id = l.member_id WHERE l.program_id = :p AND l.state = 'available' "
    "AND l.expires_at IS NOT NULL AND l.expires_at > :start AND l.expires_at <= :end "
    "ORDER BY m.id, l.id"
).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))
_DUE_TYPED = _DUE.columns(expires_at=UTCDateTime())


def announce_expiring(db: Database, program_id: str, as_of: datetime, *, days: int = 30) -> int:
    """Write ``points.expiring`` for lots expiring in ``(as_of, as_of + days]``; return how many."""
    if days < 1:
        raise ValueError("days: must be at least 1")
    with db.read() as conn:
        lots = conn.execute(
            _DUE_TYPED, {"p": program_id, "start": as_of, "end": as_of + timedelta(days=days)}
        ).all()
    written = 0
    with db.write() as conn:
        for lot_id, ref, currency, remaining, expires_at in lots:
            payload = {
                "member": ref,
                "currency": currency,
                "points": int(remaining),
                "expires_at": expires_at.isoformat(),
                "lot_id": int(lot_id),
            }
            key = f"{POINTS_EXPIRING}:{lot_id}"
            if record(conn, program_id, POINTS_EXPIRING, payload, member_ref=ref, dedup_key=key):
                written += 1
    return written
