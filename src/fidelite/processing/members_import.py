"""A chunk of a members import saved at once: the fast path of ``fidelite import members``.

The result is the one :meth:`EventProcessor.save_member
<fidelite.processing.processor.EventProcessor.save_member>` gives row after row, under a
savepoint each (``tests/processing/test_import_members_batch.py`` imports the same
files both ways and compares what is stored), in three steps per chunk instead of a
savepoint and about a dozen statements per row:

1. **read** the chunk's members at once (one script: one round trip on PostgreSQL): on
   PostgreSQL the enrolled members' ledger rows locked in id order, then the chunk's
   references no member holds yet (:func:`~fidelite.store.locking.lock_refs`, so that
   two imports enrolling the same new members run one after the other), then the
   members and their program states again;
2. **decide** each row in file order, against the members as the chunk's earlier rows
   left them (a member a row enrols is known to the rows after it; a member listed
   twice gets the first row, then the second): the importer's own checks of a row
   (``plan``: its cells, the profile rules, an erased reference) read the member from
   there instead of the database, and a bad row is answered alone, changing nothing;
3. **write** the new members (ledger rows first: their ids, then their program states
   with their profile, and their ``member.created`` webhook events, in the order the
   rows enrolled them), then the changed fields of the members that existed, one
   statement per set of fields changed.

Whatever the fast path does not expect (a member the ledger knows and the program does
not, or the other way round; an erased member's tombstone named as a reference; a
reference the ledger would refuse; a row the database refuses) rolls the chunk's
savepoint back and the rows are saved one at a time instead (``alone``), so this path
can only be faster, never different.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.exc import IntegrityError

from fidelite.engine.member_id import member_id_problem
from fidelite.ledger.batch import enrol_many
from fidelite.processing.batch import Fallback
from fidelite.processing.processor import (
    EventProcessor,
    MemberChange,
    MemberProfile,
    initial_state_row,
    same,
)
from fidelite.processing.queries import queries
from fidelite.processing.tables import member_states
from fidelite.store.locking import ConcurrentUpdateError, lock_refs
from fidelite.store.script import Rows, Script
from fidelite.webhooks import events as hooks
from fidelite.webhooks.outbox import outbox_row
from fidelite.webhooks.tables import outbox

__all__ = ["Save", "save_members"]

_I = TypeVar("_I")  # a row of the chunk
_R = TypeVar("_R")  # a row refused (the importer's rejection)

PROFILE = ("segments", "attributes", "birth_date")
"""The fields of a member's profile a row sets (:class:`MemberProfile`)."""

Current = Callable[[str], dict[str, Any] | None]
"""A member's profile as the chunk's earlier rows left it (``segments``, ``attributes``,
``birth_date``), or None if no member holds the reference."""


@dataclass(frozen=True)
class Save:
    """What a good row asks: enrol ``ref`` (joined at ``joined``) or bring its profile to
    ``profile`` (see :meth:`EventProcessor.save_member`)."""

    ref: str
    profile: MemberProfile
    joined: datetime


def save_members(
    processor: EventProcessor,
    conn: Connection,
    rows: Sequence[_I],
    refs: Collection[str],
    plan: Callable[[_I, Current], Save | _R],
    alone: Callable[[_I], MemberChange | _R],
) -> list[MemberChange | _R]:
    """Save the chunk's ``rows`` in the caller's transaction; one answer per row, in
    order. ``refs``: every member reference the rows name (after the importer's reading:
    trimmed, an older version's member); ``plan(row, current)``: the row's :class:`Save`
    or its rejection, given the members as the earlier rows left them; ``alone(row)``:
    the row saved on its own (under its savepoint), as every row is when the fast path
    falls back."""
    guard = conn.begin_nested()
    try:
        answers = _Chunk(processor, conn).run(rows, refs, plan)
    except (Fallback, IntegrityError, ConcurrentUpdateError):
        guard.rollback()
        return [alone(row) for row in rows]
    except BaseException:
        guard.rollback()
        raise
    guard.commit()
    return answers


@dataclass
class _Member:
    """A member as the chunk's rows leave it."""

    profile: dict[str, Any]
    joined: datetime | None = None  # set for a member the chunk enrols
    changed: set[str] | None = None  # the fields changed of a member that existed


class _Chunk:
    def __init__(self, processor: EventProcessor, conn: Connection) -> None:
        self.p = processor
        self.conn = conn
        self.pid = processor.program.id
        self.members: dict[str, _Member] = {}
        self.read: set[str] = set()

    def run(
        self, rows: Sequence[_I], refs: Collection[str], plan: Callable[[_I, Current], Save | _R]
    ) -> list[MemberChange | _R]:
        self._read(sorted(set(refs)))
        answers: list[MemberChange | _R] = []
        for row in rows:
            wanted = plan(row, self._current)
            answers.append(self._save(wanted) if isinstance(wanted, Save) else wanted)
        self._write()
        return answers

    def _current(self, ref: str) -> dict[str, Any] | None:
        if ref not in self.read:  # (never: the importer names every reference it reads)
            raise Fallback("a row names a member the chunk did not read")
        member = self.members.get(ref)
        return None if member is None else member.profile

    def _read(self, refs: list[str]) -> None:
        """The chunk's members: ledger rows (locked on PostgreSQL) and program states."""
        script = Script(self.conn)
        q = queries(script.is_postgres)
        pid = {"pid": self.pid}
        if script.is_postgres and refs:
            # The enrolled members' rows, then the references of new members (see
            # lock_refs): an import enrolling some of the same new members commits
            # first; the members are locked and read again below, with those it enrolled.
            script.select(q.locked_members, {**pid, "refs": refs})
            lock_refs(script, self.pid, refs)
        ledger: list[Rows] = [script.select(q.locked_members, {**pid, "refs": part})
                              for part in script.parts(refs)]  # fmt: skip
        states: list[Rows] = [script.select(q.states, {**pid, "refs": part})
                              for part in script.parts(refs)]  # fmt: skip
        script.run()
        status = {str(r[0]): r[2] for rows in ledger for r in rows}
        found = {row.member_ref: row for rows in states for row in rows}
        if found.keys() != status.keys():
            raise Fallback("a member is known to the ledger or to the program, not both")
        if any(value == "erased" for value in status.values()):
            raise Fallback("a row names an erased member's tombstone")
        self.read = set(refs)
        for ref, row in found.items():
            profile = {name: getattr(row, name) for name in PROFILE}
            self.members[ref] = _Member(profile, changed=set())

    def _save(self, wanted: Save) -> MemberChange:
        """The row applied to its member in memory (:meth:`EventProcessor._save_member`)."""
        ref, values = wanted.ref, wanted.profile.values()
        member = self.members.get(ref)
        if member is None:
            if member_id_problem(ref) is not None:  # the ledger refuses it, naming it
                raise Fallback("a member reference the ledger refuses")
            initial = initial_state_row(self.p.program, ref, wanted.joined)
            member = _Member({name: initial.get(name) for name in PROFILE}, wanted.joined)
            member.profile.update(values)
            self.members[ref] = member
            return MemberChange.created
        differs = {k: v for k, v in values.items() if not same(member.profile[k], v)}
        member.profile.update(differs)
        if member.changed is not None:
            member.changed.update(differs)
        return MemberChange.updated if differs else MemberChange.unchanged

    def _write(self) -> None:
        """The new members (ledger rows, states, webhook events), then the changes."""
        new = [ref for ref, member in self.members.items() if member.joined is not None]
        script = Script(self.conn)
        if new:
            enrol_many(self.conn, self.pid, new, self.p.ledger.now())
            rows, events = [], []
            for ref in new:
                member = self.members[ref]
                assert member.joined is not None
                rows.append({**initial_state_row(self.p.program, ref, member.joined),
                             **member.profile})  # fmt: skip
                if self.p.announce:
                    data = {"member": ref, "joined_at": member.joined.isoformat()}
                    events.append(outbox_row(self.pid, hooks.MEMBER_CREATED, data,
                                             member_ref=ref))  # fmt: skip
            script.insert(member_states, rows)
            script.insert(outbox, events)
        script.run()
        by_fields: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for ref, member in self.members.items():
            if member.changed:
                fields = tuple(name for name in PROFILE if name in member.changed)
                values = {f"v_{name}": member.profile[name] for name in fields}
                by_fields.setdefault(fields, []).append({"ref": ref, **values})
        for fields, changes in by_fields.items():
            self.conn.execute(_changes(self.pid, fields), changes)


def _changes(pid: str, fields: tuple[str, ...]) -> Any:
    """The update of ``fields`` of the member ``ref`` (values ``v_<field>``)."""
    return (
        update(member_states)
        .where(member_states.c.program_id == pid,
               member_states.c.member_ref == bindparam("ref"))
        .values({name: bindparam(f"v_{name}", type_=member_states.c[name].type)
                 for name in fields})
    )  # fmt: skip
