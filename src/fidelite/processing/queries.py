"""The batch path's statements, built once per database kind, with bind parameters.

Built once and reused, a statement is compiled once per process by a
:class:`~fidelite.store.script.Script` (compiling costs more than the round trip the
script saves). Lists of values go through :func:`~fidelite.store.script.one_of`: an
array on PostgreSQL (one statement whatever the number of members), an expanded
``IN`` on SQLite (in chunks: its parameter limit). Parameter names: ``pid`` the program,
``refs`` member references, ``ids`` event ids, ``codes`` coupon codes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from fidelite.engine.event import PURCHASE, REFUND
from fidelite.processing.tables import (
    coupons,
    earnings,
    events,
    member_states,
    rule_budgets,
    rule_usage,
)
from fidelite.store.script import one_of
from fidelite.store.tables import Member

UNITS_PER_MONEY = 10_000  # the events.amount column keeps 4 decimal places

_PID: BindParameter[Any] = bindparam("pid")
AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class Queries:
    """The statements of the batch path for one kind of database."""

    recorded: AnySelect  # pid, ids
    locked_members: AnySelect  # pid, refs: (ref, ledger id, status) in id order, locked
    states: AnySelect  # pid, refs
    usage: AnySelect  # pid, refs
    budgets: AnySelect  # pid
    coupons: AnySelect  # pid, codes
    budget_spent: ClauseElement  # pid, rule, spent
    coupon_used: ClauseElement  # pid, coupon, event
    tier_moved: ClauseElement  # pid, ref, new_tier, since, review, grace, assigned


@functools.cache
def queries(postgres: bool) -> Queries:
    """The statements for PostgreSQL (``postgres``) or SQLite."""

    def refs(column: Any) -> ColumnElement[bool]:
        return one_of(column, "refs", postgres)

    recorded = select(events.c.event_id).where(
        events.c.program_id == _PID, one_of(events.c.event_id, "ids", postgres)
    )
    # in id order and locked (PostgreSQL): two batch writers cannot deadlock
    locked = (
        select(Member.ref, Member.id, Member.status)
        .where(Member.program_id == _PID, refs(Member.ref))
        .order_by(Member.id)
        .with_for_update()
    )
    states = select(member_states).where(
        member_states.c.program_id == _PID, refs(member_states.c.member_ref)
    )
    usage = select(rule_usage).where(rule_usage.c.program_id == _PID, refs(rule_usage.c.member_ref))
    budgets = select(rule_budgets.c.rule_id, rule_budgets.c.used).where(
        rule_budgets.c.program_id == _PID
    )
    # locked (PostgreSQL), in code order, after the members: an event of another writer
    # that presents one of these codes waits and then sees whether this batch used it
    presented = (
        select(coupons.c.code, coupons.c.status, coupons.c.member_ref)
        .where(coupons.c.program_id == _PID, one_of(coupons.c.code, "codes", postgres))
        .order_by(coupons.c.code)
        .with_for_update()
    )
    # one statement: the budget is locked, so no other writer races between a read
    # and an insert
    make_insert = pg_insert if postgres else sqlite_insert
    spent = make_insert(rule_budgets).values(
        program_id=_PID, rule_id=bindparam("rule"), used=bindparam("spent")
    )
    budget_spent = spent.on_conflict_do_update(
        index_elements=[rule_budgets.c.program_id, rule_budgets.c.rule_id],
        set_={"used": rule_budgets.c.used + spent.excluded.used},
    )
    coupon_used = (
        update(coupons)
        .where(
            coupons.c.program_id == _PID,
            coupons.c.code == bindparam("coupon"),
            coupons.c.status == "issued",
        )
        .values(status="used", used_event_id=bindparam("event"))
    )
    tier_moved = (
        update(member_states)
        .where(member_states.c.program_id == _PID, member_states.c.member_ref == bindparam("ref"))
        .values(
            tier=bindparam("new_tier"),
            tier_since=bindparam("since"),
            review_at=bindparam("review"),
            grace_until=bindparam("grace"),
            assigned_until=bindparam("assigned"),
        )
    )
    return Queries(recorded, locked, states, usage, budgets, presented, budget_spent,
                   coupon_used, tier_moved)  # fmt: skip


@functools.cache
def refunded_whole() -> ColumnElement[bool]:
    """Whether a recorded purchase is refunded in full (it no longer counts in
    ``member.purchases`` nor as a purchase for tiers).

    Refunds of a purchase of more than 0 add up to its amount. A purchase of 0 is
    refunded in full by its one refund, of 0 (:mod:`fidelite.engine.refund`), which
    leaves ``refunded_amount`` at 0: that refund is recorded, under the purchase's
    member (an EXISTS over the member's events, on their index, run for purchases of 0
    only: the other terms are tested first)."""
    refund = events.alias("full_refund")
    zero_refunded = exists().where(
        refund.c.program_id == events.c.program_id,
        refund.c.member_ref == events.c.member_ref,
        refund.c.refund_of == events.c.event_id,
        refund.c.type == REFUND,
    )
    paid = events.c.amount
    return and_(
        events.c.type == PURCHASE,
        or_(
            and_(paid > 0, events.c.refunded_amount >= paid),
            and_(paid == 0, zero_refunded),
        ),
    )


def window_activity(postgres: bool, rolling: bool) -> tuple[AnySelect, AnySelect, AnySelect]:
    """The tier-window reads of the batch's members (parameters ``pid``, ``refs``,
    ``since``, ``core_from``, ``core_to``), over their recorded events but refunds (what
    :func:`~fidelite.processing.processor.activity` counts):

    - each event after ``since`` outside the core window, with its type and net points;
    - per member, the events inside the core window summed: the purchases' amounts less
      refunds (money as whole ten-thousandths, exact on SQLite too), the purchases not
      refunded in full, and the net points of every event.

    The core window is ``(core_from, core_to]`` for a rolling window, ``[core_from,
    core_to]`` for a calendar year.
    """
    mine = and_(events.c.program_id == _PID, one_of(events.c.member_ref, "refs", postgres),
                events.c.type != REFUND)  # fmt: skip
    purchase = events.c.type == PURCHASE
    after = (events.c.occurred_at > bindparam("core_from") if rolling
             else events.c.occurred_at >= bindparam("core_from"))  # fmt: skip
    core = and_(after, events.c.occurred_at <= bindparam("core_to"))
    # Net points through a correlated subquery rather than a join grouped by event:
    # that GROUP BY made SQLite walk the program's events in key order (a cost that
    # grew with every import) instead of looking up the batch's members.
    net = (
        select(func.coalesce(func.sum(earnings.c.points - earnings.c.reversed), 0))
        .where(earnings.c.program_id == events.c.program_id,
               earnings.c.event_id == events.c.event_id)
        .scalar_subquery()
    )  # fmt: skip
    edges = select(
        events.c.member_ref, events.c.type, events.c.occurred_at, events.c.amount,
        events.c.refunded_amount, net.label("net"), refunded_whole().label("refunded_whole"),
    ).where(mine, events.c.occurred_at > bindparam("since"), ~core)  # fmt: skip
    kept = cast(func.round((events.c.amount - events.c.refunded_amount) * UNITS_PER_MONEY),
                BigInteger)  # fmt: skip
    units = func.sum(case((purchase, kept), else_=0))
    whole = refunded_whole()
    totals = (
        select(events.c.member_ref, func.max(events.c.occurred_at).label("last"),
               units.label("units"),
               func.sum(case((and_(purchase, ~whole), 1), else_=0)).label("bought"))
        .where(mine, core)
        .group_by(events.c.member_ref)
    )  # fmt: skip
    # An outer join keeps SQLite on the members' events (with an inner join it chose
    # to scan all the program's earnings, a cost growing with every import).
    earned = (
        select(events.c.member_ref,
               func.sum(earnings.c.points - earnings.c.reversed).label("net"))
        .outerjoin(earnings, and_(earnings.c.program_id == events.c.program_id,
                                  earnings.c.event_id == events.c.event_id))
        .where(mine, core)
        .group_by(events.c.member_ref)
    )  # fmt: skip
    return edges, totals, earned
