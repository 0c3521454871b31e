"""A reference erased, then enrolled again by hand with a join date before the erasure:
its events dated at or before the erasure are refused with ``member_erased`` on the
single path and on the batch path, as the import refuses them, and nothing is written;
later events are the new member's. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, Outcome, ProcessingError, Result
from fidelite.processing.batch import process_events
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_erased_events import (
    ERASED,
    PROGRAM,
    at,
    balance,
    erased_ann,
    members,
    purchase,
    snapshot,
)


def test_erased_history_is_refused_for_a_member_enrolled_again_before_it(pdb: Database) -> None:
    p, tombstone = erased_ann(pdb)  # ann erased on 2026-11-20 09:00 UTC
    # enrolled again by hand (another process), said to have joined before the erasure
    other = EventProcessor(pdb, parse_program(PROGRAM))
    assert other.enrol("ann", at=at("2026-11-01T00:00:00+00:00")) is True
    before = snapshot(pdb)
    for when in ("2026-11-01T00:00:00+00:00", "2026-11-10T10:00:00+00:00",
                 "2026-11-20T09:00:00+00:00"):  # fmt: skip
        with pytest.raises(ProcessingError) as caught:
            p.process(purchase("old", "ann", when, "20.00"))
        assert (caught.value.code, str(caught.value)) == ("member_erased", ERASED)
    with pdb.write() as conn:
        answers = process_events(p, conn, [
            purchase("old-1", "ann", "2026-11-15T10:00:00+00:00", "3.00"),
            purchase("old-2", "ann", "2026-11-19T10:00:00+00:00", "4.00"),
        ])  # fmt: skip
    assert [str(a) for a in answers] == [ERASED, ERASED]
    assert snapshot(pdb) == before
    # after the erasure: the new member's own events, on either path
    done = p.process(purchase("new-1", "ann", "2026-11-20T09:00:01+00:00", "5.00"))
    with pdb.write() as conn:
        batch = process_events(p, conn, [purchase("new-2", "ann", "2026-11-21T10:00:00+00:00",
                                                  "6.00")])  # fmt: skip
    assert (done.outcome, [r.points for r in done.receipts]) == (Outcome.processed, [5])
    assert [a.outcome for a in batch if isinstance(a, Result)] == [Outcome.processed]
    assert (balance(p, "ann"), balance(p, tombstone)) == ((11, 0), (150, 0))
    assert members(pdb) == [("ann", at("2026-11-01T00:00:00+00:00")),
                            ("bob", at("2026-11-03T10:00:00+00:00")),
                            (tombstone, at("2026-11-02T09:00:00+00:00"))]  # fmt: skip
    assert_invariants(pdb, "shop")


def test_a_process_that_knew_the_erased_member_enrols_the_reference_again(
    pdb: Database,
) -> None:
    """The processor remembers the members it enrolled; one erased since is enrolled
    again as a new member when asked (it was not, and the call said it was)."""
    p, tombstone = erased_ann(pdb)
    assert p.enrol("ann", at=at("2026-11-25T00:00:00+00:00")) is True
    assert members(pdb) == [("ann", at("2026-11-25T00:00:00+00:00")),
                            ("bob", at("2026-11-03T10:00:00+00:00")),
                            (tombstone, at("2026-11-02T09:00:00+00:00"))]  # fmt: skip
    assert p.enrol("ann", at=at("2026-11-26T00:00:00+00:00")) is False
    assert (balance(p, "ann"), balance(p, tombstone)) == ((0, 0), (150, 0))
    assert_invariants(pdb, "shop")
