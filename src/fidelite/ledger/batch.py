"""Many earns written at once: the ledger side of bulk event import.

:class:`EarnBatch` writes the rows that :meth:`fidelite.ledger.service.Ledger.earn` would
write one call at a time, in the same order: the same plans
(:func:`~fidelite.ledger.earning.earn_plan`), receipts computed from balances carried in
memory from the locked state, the same request fingerprints; but with one multi-row
``INSERT`` per table and one balance update per account touched, instead of about
fifteen statements per earn.

Preconditions, held by the caller: one writing transaction; every member of the batch
locked (PostgreSQL) or the whole database (SQLite ``BEGIN IMMEDIATE``); no key of the
batch recorded yet. Should a key exist after all, the ``INSERT`` fails on the unique
``(program_id, idempotency_key)`` and the caller rolls the batch back. The balance
updates stay conditional, so a broken precondition cannot make a balance negative.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Select,
    String,
    bindparam,
    column,
    insert,
    select,
    text,
)
from sqlalchemy.sql.selectable import CompoundSelect, TextualSelect

from fidelite.ledger.earning import EarnOrder, earn_plan
from fidelite.ledger.idempotency import request_hash
from fidelite.ledger.plan import (
    Plan,
    Target,
    check_balanced,
    lot_row,
    posting_rows,
    receipt_of,
    transaction_row,
)
from fidelite.ledger.receipts import Receipt
from fidelite.ledger.state import MEMBER_KINDS, MemberAccounts, program_accounts
from fidelite.store.bulk import insert_rows
from fidelite.store.locking import insert_ignoring_duplicates, next_ids_for
from fidelite.store.script import Script, one_of
from fidelite.store.tables import (
    Account,
    IdempotencyRecord,
    LedgerTransaction,
    Lot,
    Member,
    Posting,
)

_IN_CHUNK = 500  # members per IN (...) list: well inside every driver's parameter limit
# as locking.add_to_balance: available and pending never below 0, debt never above
_SIGN_RULE = (
    "(t.kind = 'debt' AND t.balance + {d} <= 0) OR (t.kind <> 'debt' AND t.balance + {d} >= 0)"
)

# By member id alone (member ids are unique across programs, and the batch's ids are
# its program's): with ``program_id = :p`` too, SQLite walked the program's accounts
# through the (program, currency, kind, member) key instead of the member index
# (77 ms per 500 members with 87,000 members enrolled; a cost growing with the program).
_ACCOUNT_COLUMNS = (Account.id, Account.member_id, Account.currency, Account.kind,
                    Account.balance)  # fmt: skip


class AccountsRead:
    """The accounts of a batch's members (by reference) and of its program, queued in
    a :class:`~fidelite.store.script.Script` with the batch's other reads; the maps are
    ready once the script has run. Members are looked up by id through their reference,
    each account table probe by member id (see above). The program's accounts come in
    the same statement as the first members' (``UNION ALL``): on PostgreSQL each
    statement of a script costs the server a parse and plan, whatever its rows."""

    def __init__(self, script: Script, program_id: str, refs: list[str]) -> None:
        members, program, both = _account_queries(script.is_postgres)
        parts = [refs] if script.is_postgres else list(_chunks(refs, _IN_CHUNK))
        self._rows = [script.select(members if n else both, {"p": program_id, "refs": part})
                      for n, part in enumerate(p for p in parts if p)]  # fmt: skip
        if not self._rows:
            self._rows = [script.select(program, {"p": program_id})]

    def members(self) -> dict[tuple[int, str], MemberAccounts]:
        """Each (member id, currency) pair's accounts and balances."""
        found: dict[tuple[int, str], MemberAccounts] = {}
        for rows in self._rows:
            _collect((r for r in rows if r[1] is not None), found)
        return found

    def program(self) -> dict[str, dict[str, int]]:
        """The program's account ids, by currency and kind."""
        found: dict[str, dict[str, int]] = {}
        for rows in self._rows:
            for acc_id, member_id, currency, kind, _balance in rows:
                if member_id is None:
                    found.setdefault(str(currency), {})[str(kind)] = int(acc_id)
        return found


@functools.cache
def _account_queries(
    postgres: bool,
) -> tuple[Select[*tuple[Any, ...]], Select[*tuple[Any, ...]], CompoundSelect[*tuple[Any, ...]]]:
    """Members' accounts by member reference (``p``, ``refs``); the program's (``p``);
    both in one statement."""
    ids = select(Member.id).where(Member.program_id == bindparam("p"),
                                  one_of(Member.ref, "refs", postgres))  # fmt: skip
    members = select(*_ACCOUNT_COLUMNS).where(Account.member_id.in_(ids.scalar_subquery()))
    program = select(*_ACCOUNT_COLUMNS).where(
        Account.program_id == bindparam("p"), Account.member_id.is_(None)
    )
    return members, program, members.union_all(program)


class IdsRead:
    """Ledger ids drawn with a batch's other reads (PostgreSQL: from the sequences, so
    the writes need no round trip of their own for them): ``count`` transaction ids and
    as many lot ids, enough for a batch whose every event earns in every currency.
    Unused ones are left as gaps, as a rolled-back transaction leaves them."""

    def __init__(self, script: Script, count: int) -> None:
        self._rows = script.select(_draw_ids(), {"n": count})

    def drawn(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {"ledger_transactions": [], "lots": []}
        for table, new_id in self._rows:
            found[str(table)].append(int(new_id))
        return {table: sorted(ids) for table, ids in found.items()}


@functools.cache
def _draw_ids() -> TextualSelect:
    draw = "nextval(pg_get_serial_sequence('{0}', 'id')) AS id FROM generate_series(1, :n)"
    return text(
        f"SELECT 'ledger_transactions' AS t, {draw.format('ledger_transactions')} "
        f"UNION ALL SELECT 'lots' AS t, {draw.format('lots')}"
    ).columns(column("t", String), column("id", BigInteger))


@dataclass(frozen=True)
class _Earn:
    member_id: int
    order: EarnOrder


class EarnBatch:
    """Earns collected in order, then written by :meth:`write` in one go.

    ``known``: the accounts read with the batch's other reads (else read here);
    ``drawn``: ids drawn with them (used if there are enough, else drawn here).
    """

    def __init__(
        self,
        conn: Connection,
        program_id: str,
        clock: Callable[[], datetime],
        known: AccountsRead | None = None,
        drawn: IdsRead | None = None,
    ) -> None:
        self._conn = conn
        self._program_id = program_id
        self._clock = clock
        self._known = known
        self._drawn = drawn
        self._earns: list[_Earn] = []

    def __len__(self) -> int:
        return len(self._earns)

    def add(self, member_id: int, order: EarnOrder) -> None:
        """Queue one checked earn for the member whose ledger id is ``member_id``."""
        self._earns.append(_Earn(member_id, order))

    def write(self, script: Script | None = None) -> list[Receipt]:
        """Write every queued earn; receipts in the order the earns were added.

        Given ``script``, the ledger's rows and balance changes are added to it (written
        when it runs, with the caller's other writes); what must be known first (new
        accounts, ids) is still read and written here.
        """
        if not self._earns:
            return []
        accounts, program = self._accounts()
        planned = [self._plan(earn, accounts, program) for earn in self._earns]
        new_lots = sum(1 for p, _ in planned if p.new_lot is not None)
        ids = self._drawn.drawn() if self._drawn is not None else {}
        if len(ids.get("ledger_transactions", [])) < len(planned) or len(ids["lots"]) < new_lots:
            ids = next_ids_for(self._conn, {"ledger_transactions": len(planned), "lots": new_lots})
        txn_ids, lot_ids = ids["ledger_transactions"][: len(planned)], iter(ids["lots"])
        recorded_at = self._clock()
        transactions, lots, postings, receipts = [], [], [], []
        for (plan, target), earn, txn_id in zip(planned, self._earns, txn_ids, strict=True):
            lot_id = next(lot_ids) if plan.new_lot is not None else None
            receipt = receipt_of(plan, target, txn_id, lot_id, earn.order.at)
            receipts.append(receipt)
            transactions.append(transaction_row(plan, target, receipt, earn.order.key,
                                                earn.order.digest, recorded_at))  # fmt: skip
            if plan.new_lot is not None:
                lots.append(lot_row(plan.new_lot, lot_id, txn_id, target))
            postings.extend(posting_rows(plan, target, txn_id, lot_id))
        writes = script if script is not None else Script(self._conn)
        writes.insert(LedgerTransaction.__table__, transactions)  # type: ignore[arg-type]
        writes.insert(Lot.__table__, lots)  # type: ignore[arg-type]
        writes.insert(Posting.__table__, postings)  # type: ignore[arg-type]
        self._update_balances(writes, planned)
        if script is None:
            writes.run()
        return receipts

    # ---------------------------------------------------------------- internals

    def _plan(
        self,
        earn: _Earn,
        accounts: dict[tuple[int, str], MemberAccounts],
        program: dict[str, dict[str, int]],
    ) -> tuple[Plan, Target]:
        """Plan one earn against the running balances, then move them on."""
        order = earn.order
        held = accounts[(earn.member_id, order.currency)]
        target = Target(self._program_id, earn.member_id, order.member_ref, order.currency,
                        held.ids, dict(held.balances), program[order.currency])  # fmt: skip
        plan = earn_plan(order, target)
        check_balanced(plan)
        for kind, delta in plan.deltas().items():
            held.balances[kind] += delta
        return plan, target

    def _accounts(self) -> tuple[dict[tuple[int, str], MemberAccounts], dict[str, dict[str, int]]]:
        """Every (member, currency) pair's accounts and balances (created on first use),
        and the program's accounts of the batch's currencies, by currency and kind."""
        wanted = {(e.member_id, e.order.currency) for e in self._earns}
        if self._known is not None:
            found, program = self._known.members(), self._known.program()
        else:
            found, program = self._select_accounts(sorted({m for m, _ in wanted})), {}
        missing = wanted - found.keys()
        if missing:
            insert_ignoring_duplicates(
                self._conn,
                Account.__table__,  # type: ignore[arg-type]
                [
                    {
                        "program_id": self._program_id,
                        "currency": currency,
                        "kind": kind,
                        "member_id": member_id,
                        "balance": 0,
                    }
                    for member_id, currency in sorted(missing)
                    for kind in MEMBER_KINDS
                ],
            )
            found.update(self._select_accounts(sorted({m for m, _ in missing})))
        for currency in sorted({c for _, c in wanted}):
            if currency not in program:
                program[currency] = program_accounts(self._conn, self._program_id, currency)
        return found, program

    def _select_accounts(self, member_ids: list[int]) -> dict[tuple[int, str], MemberAccounts]:
        found: dict[tuple[int, str], MemberAccounts] = {}
        for part in _chunks(member_ids, _IN_CHUNK):
            _collect(self._conn.execute(select(*_ACCOUNT_COLUMNS).where(
                Account.member_id.in_(part))), found)  # fmt: skip
        return found

    def _update_balances(self, script: Script, planned: list[tuple[Plan, Target]]) -> None:
        """One conditional update per member account touched, with its net change."""
        totals: dict[int, int] = {}
        for plan, target in planned:
            for kind, delta in plan.deltas().items():
                account = target.member_accounts[kind]
                totals[account] = totals.get(account, 0) + delta
        changes = [((account,), delta) for account, delta in sorted(totals.items()) if delta]
        script.increment("accounts", "balance", {"id": "bigint"}, changes, guard=_SIGN_RULE)


def _collect(rows: Iterable[Any], found: dict[tuple[int, str], MemberAccounts]) -> None:
    for acc_id, member_id, currency, kind, balance in rows:
        held = found.setdefault((int(member_id), str(currency)), MemberAccounts({}, {}))
        held.ids[str(kind)] = int(acc_id)
        held.balances[str(kind)] = int(balance)


def _chunks(values: Iterable[Any], size: int) -> Iterable[list[Any]]:
    iterator = iter(values)
    while part := list(islice(iterator, size)):
        yield part


def enrol_many(conn: Connection, program_id: str, refs: list[str], now: datetime) -> dict[str, int]:
    """Enrol new members at once, as :meth:`Ledger.create_member` does one by one (same
    rows, default key ``member:<ref>``); returns their ledger ids.

    The caller has checked that none of ``refs`` is enrolled; one enrolled meanwhile
    makes the insert fail on the unique ``(program_id, ref)`` (the caller rolls back).
    """
    if not refs:
        return {}
    inserted = conn.execute(
        insert(Member).returning(Member.id, Member.ref, sort_by_parameter_order=True),
        [{"program_id": program_id, "ref": ref, "status": "active", "created_at": now}
         for ref in refs],
    )  # fmt: skip
    ids = {str(ref): int(member_id) for member_id, ref in inserted}
    records = [
        {"program_id": program_id, "key": f"member:{ref}",
         "request_hash": request_hash({"op": "create_member", "member_ref": ref}),
         "result": {"member_id": ids[ref]}, "created_at": now}
        for ref in refs
    ]  # fmt: skip
    insert_rows(conn, IdempotencyRecord.__table__, records)  # type: ignore[arg-type]
    return ids
