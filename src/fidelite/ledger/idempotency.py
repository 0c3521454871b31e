"""Request fingerprints for idempotency, and keyed operations that are not ledger
transactions.

A retry must carry the same key *and* the same content. The fingerprint is a SHA-256
of the canonical JSON of what the caller asked for; values the caller left to the
ledger (such as ``at`` defaulting to now) are not part of it, so a retry a second
later still matches.

Operations outside the ledger's transactions (a manual tier assignment, a batch of
coupon codes) keep their answer under their key in ``idempotency_records``, in the
transaction of the change (:func:`once`): a retry gets the first answer, never a second
change; the key with another request is ``idempotency_conflict``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from fidelite.ledger import validation as valid
from fidelite.ledger.errors import Rejected, RejectionCode
from fidelite.store.tables import IdempotencyRecord

_RECORDS: Table = IdempotencyRecord.__table__  # type: ignore[assignment]


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def request_hash(request: dict[str, Any]) -> str:
    """Fingerprint of a request (``None`` values are left out)."""
    body = json.dumps(_canonical(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def recorded(
    conn: Connection, program_id: str, key: str, request: dict[str, Any]
) -> dict[str, Any] | None:
    """The answer kept under ``key`` for this same ``request``; None for a new key.
    The key of another request is refused (``idempotency_conflict``)."""
    row = conn.execute(
        select(_RECORDS.c.request_hash, _RECORDS.c.result).where(
            _RECORDS.c.program_id == program_id, _RECORDS.c.key == valid.key(key)
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != request_hash(request):
        raise Rejected(
            RejectionCode.IDEMPOTENCY_CONFLICT,
            f"key {key!r} was already used for a different request",
            field="key",
        )
    return dict(row.result)


def once(
    conn: Connection,
    program_id: str,
    key: str,
    request: dict[str, Any],
    act: Callable[[], dict[str, Any]],
    at: datetime,
) -> tuple[dict[str, Any], bool]:
    """``act()`` at most once per key, in the caller's transaction: its answer and
    False, or the first answer and True (nothing done). The key is claimed before
    ``act`` runs: a concurrent caller with it waits on the claim (PostgreSQL) and then
    fails on the primary key (``IntegrityError``) before doing anything; read the
    answer again with :func:`recorded`."""
    first = recorded(conn, program_id, key, request)
    if first is not None:
        return first, True
    conn.execute(insert(_RECORDS), {"program_id": program_id, "key": key,
                                    "request_hash": request_hash(request), "result": {},
                                    "created_at": at})  # fmt: skip
    answer = act()
    conn.execute(
        update(_RECORDS)
        .where(_RECORDS.c.program_id == program_id, _RECORDS.c.key == key)
        .values(result=answer)
    )
    return answer, False
