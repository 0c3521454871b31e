"""Stored answers: the first response to each ``Idempotency-Key`` of a program.

``api_requests`` (created by migration ``0005_api``) is written by the API
(:mod:`fidelite.api.idempotency`, which owns its rules: claim, replay, lease) and
rewritten by erasure (:mod:`fidelite.privacy.answers`), which must find the answers
naming an erased member without importing the API layer: so the table is defined
here, in the store, and the API imports it (as ``fidelite.api.tables.api_requests``).

Per row: the request's ``route`` (method and path, which may name a member:
``POST /v1/members/{id}/adjustments``), a SHA-256 ``request_hash`` of route and body
(what a retry must match; the body itself is not kept), the ``state`` (``in_flight``,
``done``) and the answer's ``status_code`` and ``body``.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Integer, String, Table

from fidelite.store.tables import Base, UTCDateTime

api_requests = Table(
    "api_requests",
    Base.metadata,
    Column("program_id", String(64), primary_key=True),
    Column("idem_key", String(200), primary_key=True),
    Column("route", String(300), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("body", JSON, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

__all__ = ["api_requests"]
