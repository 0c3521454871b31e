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
:func:`of_erased_history` is the one rule of what an erasure keeps out (the import and
the API's paths apply it alike), and :func:`tombstones` tells which stored references
are tombstones, so that answers about a recorded event never show one.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from fidelite.store.script import Rows, Script, one_of
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
    erased_at: Mapping[str, datetime] = field(default_factory=dict, compare=False)
    """When each tombstone's member was erased (a refund applies to the one erasure
    whose tombstone holds its purchase)."""

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
    rows: list[Any] = []
    for start in range(0, len(digests), _CHUNK):
        rows += conn.execute(
            select(erasures.c.ref_digest, erasures.c.tombstone, erasures.c.erased_at).where(
                erasures.c.program_id == program_id,
                erasures.c.ref_digest.in_(digests[start : start + _CHUNK]),
            )
        ).all()
    return _found(by_digest, rows)


@functools.cache
def any_erased(conn: Connection, program_id: str) -> bool:
    """Whether ``program_id`` has erased any member (one indexed query): a caller with
    many references to check can skip :func:`erased_refs` when none was."""
    found = conn.execute(
        select(erasures.c.ref_digest).where(erasures.c.program_id == program_id).limit(1)
    )
    return found.first() is not None


def _by_digests(postgres: bool) -> Select[Any]:
    """The erasure records of the digests passed as ``digests`` (program ``pid``): built
    once per database kind, so a :class:`~fidelite.store.script.Script` compiles it once."""
    digests = one_of(erasures.c.ref_digest, "digests", postgres)
    return select(erasures.c.ref_digest, erasures.c.tombstone, erasures.c.erased_at).where(
        erasures.c.program_id == bindparam("pid"), digests
    )


def erased_in_script(
    script: Script, program_id: str, refs: Iterable[str],
    parts: Callable[[list[str]], list[list[str]]],
) -> Callable[[], dict[str, ErasedRef]]:  # fmt: skip
    """:func:`erased_refs` as queries added to ``script`` (the batch path's read: no
    round trip of its own on PostgreSQL); the returned function gives the erased
    references once ``script`` ran. ``parts`` splits the digests as the script's other
    list parameters are split (whole on PostgreSQL, chunks on SQLite)."""
    by_digest = {ref_digest(program_id, ref): ref for ref in set(refs)}
    query = _by_digests(script.is_postgres)
    found: list[Rows] = [script.select(query, {"pid": program_id, "digests": part})
                         for part in parts(sorted(by_digest))]  # fmt: skip
    return lambda: _found(by_digest, [row for rows in found for row in rows])


def of_erased_history(
    erased: Mapping[str, ErasedRef], member: str, at: datetime
) -> ErasedRef | None:
    """What the erasure records say of ``member`` if its event at ``at`` belongs to the
    erased history, else None. ``erased``: the erased references read
    (:func:`erased_refs`, :func:`erased_in_script`).

    The rule, the same for an import and for the API: an event of an erased reference
    dated at or before its latest erasure belongs to the erased history, whoever holds
    the reference now. A member enrolled again under it since is a new member, whatever
    join date it was given (a members file, the API): the erased past is not theirs, and
    recording it would bring the erased member's history back."""
    found = erased.get(member)
    return found if found is not None and found.before(at) else None


def tombstones(conn: Connection, program_id: str, refs: Iterable[str]) -> frozenset[str]:
    """The references among ``refs`` that are tombstones an erasure of the program left
    (as recorded, not merely named like one: a client's reference may start with
    ``erased-``). One indexed query (by member id) for those named like a tombstone,
    none if there are none."""
    ids: dict[int, set[str]] = {}  # erased-10 and erased-010 (the tombstone taken when
    for ref in set(refs):  # a client's reference held erased-10) share member id 10
        number = ref.removeprefix(TOMBSTONE_PREFIX)
        if ref.startswith(TOMBSTONE_PREFIX) and _member_id(number):
            ids.setdefault(int(number), set()).add(ref)
    if not ids:
        return frozenset()
    found: set[str] = set()
    keys = sorted(ids)
    for start in range(0, len(keys), _CHUNK):
        found.update(conn.execute(
            select(erasures.c.tombstone).where(
                erasures.c.program_id == program_id,
                erasures.c.member_id.in_(keys[start : start + _CHUNK]),
            )
        ).scalars())  # fmt: skip
    return frozenset(ref for each in ids.values() for ref in each if ref in found)


def _member_id(text: str) -> bool:
    """Whether ``text`` can be a member id (a tombstone's suffix): ASCII digits, within a
    64-bit integer."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def _found(by_digest: Mapping[str, str], rows: Iterable[Any]) -> dict[str, ErasedRef]:
    """The erasure records read, gathered by reference."""
    times: dict[str, dict[str, datetime]] = {}
    for row in rows:
        times.setdefault(by_digest[row.ref_digest], {})[row.tombstone] = _utc(row.erased_at)
    return {
        ref: ErasedRef(frozenset(each), max(each.values()), each) for ref, each in times.items()
    }


def _utc(value: datetime) -> datetime:
    """An erasure time as an aware UTC instant (SQLite may give it back naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def erased_history(member: str, erased_at: datetime, what: str) -> str:
    """The reason of ``member_erased``: the reference (as sent) and the day of its
    erasure, never the tombstone (that would link the erased member to its reference)."""
    day = erased_at.astimezone(UTC).date().isoformat()
    return (
        f"the member {member!r} was erased on {day}: {what} dated at or before the erasure "
        "belongs to the erased history and is not recorded (an event after it enrols the "
        "reference as a new member)"
    )


__all__ = [
    "TOMBSTONE_PREFIX",
    "ErasedRef",
    "erased_history",
    "erased_in_script",
    "erased_refs",
    "of_erased_history",
    "ref_digest",
    "tombstones",
]
