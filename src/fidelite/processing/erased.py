"""Erased references: how an erasure names a reference it no longer keeps.

Erasure (:mod:`fidelite.privacy.erasure`) replaces a member's reference by the tombstone
``erased-<member id>`` wherever it is stored and keeps, in ``member_erasures``, a
SHA-256 digest of program and reference: the reference itself is kept nowhere. What
processing is sent (a file imported again, an event id sent again) names members by
their reference, so recognising an erased one takes the same digest, computed the same
way; it lives here, below both: privacy already depends on processing (its tables), and
processing must not depend on privacy.

Invariant: :func:`ref_digest` is the one definition of the digest; the erasure records
it, the lookups here compare with it, and neither stores nor returns the reference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from fidelite.webhooks.tables import erasures

TOMBSTONE_PREFIX = "erased-"  # a tombstone is erased-<member id>
_CHUNK = 500  # digests per query (SQLite's parameter limit on older builds)


def ref_digest(program_id: str, member_ref: str) -> str:
    """SHA-256 (hex) of program and reference, as the erasure record keeps it: a
    reference is recognised as erased without being kept."""
    return hashlib.sha256(f"{program_id}\x00{member_ref}".encode()).hexdigest()


@dataclass(frozen=True)
class ErasedRef:
    """What the erasure records say of one reference: the tombstones its erased members
    took (a reference enrolled again after an erasure may be erased again) and when the
    latest of them was erased."""

    tombstones: frozenset[str]
    last_erased_at: datetime

    def holds(self, recorded_member: str) -> bool:
        """Whether a row recorded for ``recorded_member`` was this reference's, before
        an erasure replaced the reference by its tombstone."""
        return recorded_member in self.tombstones

    def before(self, at: datetime) -> bool:
        """Whether a moment ``at`` is at or before the latest erasure: an event of that
        time belongs to the erased history."""
        return at <= self.last_erased_at


def erased_refs(conn: Connection, program_id: str, refs: Collection[str]) -> dict[str, ErasedRef]:
    """The erased references among ``refs`` (by reference), from the erasure records'
    digests: one indexed query per 500 distinct references, none if ``refs`` is empty."""
    by_digest = {ref_digest(program_id, ref): ref for ref in set(refs)}
    digests = sorted(by_digest)
    tombstones: dict[str, set[str]] = {}
    latest: dict[str, datetime] = {}
    for start in range(0, len(digests), _CHUNK):
        for row in conn.execute(
            select(erasures.c.ref_digest, erasures.c.tombstone, erasures.c.erased_at).where(
                erasures.c.program_id == program_id,
                erasures.c.ref_digest.in_(digests[start : start + _CHUNK]),
            )
        ):
            ref = by_digest[row.ref_digest]
            tombstones.setdefault(ref, set()).add(row.tombstone)
            if ref not in latest or row.erased_at > latest[ref]:
                latest[ref] = row.erased_at
    return {ref: ErasedRef(frozenset(found), latest[ref]) for ref, found in tombstones.items()}


__all__ = ["TOMBSTONE_PREFIX", "ErasedRef", "erased_refs", "ref_digest"]
