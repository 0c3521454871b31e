"""Tables of the API layer (created by migration ``0005_api``).

``api_keys``: one row per key; only a SHA-256 hash of the secret is stored, so a
database leak does not leak usable keys; ``last_used_at`` (migration ``0010``) is when
a request last presented it, recorded at most once a minute. ``api_requests``: the
first response to each ``Idempotency-Key`` of a program, replayed to retries; defined
in the store (:mod:`fidelite.store.answers`) because erasure, a domain module,
rewrites the answers that name the member it erases.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from fidelite.store.answers import api_requests
from fidelite.store.tables import Base, UTCDateTime

api_keys = Table(
    "api_keys",
    Base.metadata,
    Column("key_id", String(32), primary_key=True),
    Column("program_id", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("label", String(200), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
)

__all__ = ["api_keys", "api_requests"]
