"""What the engine decides for one event, and the trace of how it got there.

A decision is data: the application service applies it through the ledger (earnings
become lots, usage and budget counters are incremented, the coupon is marked used) and
keeps the trace with the posting, so any balance can be explained rule by rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """Why a rule did or did not give points. Stable codes, shown in traces."""

    matched = "matched"
    event_type = "event_type"  # the rule does not handle this event type
    outside_window = "outside_window"
    segment = "segment"  # the member is in none of the rule's segments
    coupon = "coupon"  # no valid coupon of the rule's campaign on the event
    condition_false = "condition_false"
    condition_error = "condition_error"  # the CEL condition failed at run time
    no_points = "no_points"  # matched, but its effects came to 0 points
    cap_per_event = "cap_per_event"  # matched; points trimmed to the per-event cap
    cap_per_member = "cap_per_member"  # matched; trimmed by the member's period cap
    rule_budget_exhausted = "rule_budget_exhausted"
    stopped = "stopped"  # an earlier rule with ``stop`` gave points
    # line ``coupon:<campaign>``: a valid code no rule of its campaign gave points for
    coupon_unused = "coupon_unused"


@dataclass(frozen=True)
class RuleTrace:
    """One line of the trace: a rule (or ``tier:<id>``), its outcome and points."""

    rule: str
    outcome: Outcome
    points: int = 0
    currency: str | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, kept with the posting."""
        row: dict[str, Any] = {"rule": self.rule, "outcome": self.outcome.value}
        row["points"] = self.points
        if self.currency:
            row["currency"] = self.currency
        if self.note:
            row["note"] = self.note
        return row


@dataclass(frozen=True)
class Earning:
    """Points to credit in one currency; all points from one event share their dates."""

    currency: str
    points: int
    expires_at: datetime | None
    pending_until: datetime | None


@dataclass(frozen=True)
class Usage:
    """Points a capped rule gave in a period: added to the member's ``rule_points``."""

    rule: str
    period: str
    points: int


@dataclass(frozen=True)
class CouponUse:
    """A coupon presented on the event: accepted (a rule of its campaign gave points for
    it: it is marked used) or why not."""

    code: str
    campaign: str | None
    accepted: bool
    reason: str = ""
    # a refused code: why, in words, for the cashier (a mistyped check symbol...); not
    # part of the value (the reason is), shown as the decision's ``coupon.detail``
    detail: str = field(default="", compare=False)


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluating one event for one member."""

    event_id: str
    member: str
    at: datetime
    earnings: list[Earning] = field(default_factory=list)
    trace: list[RuleTrace] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    budget_spent: dict[str, int] = field(default_factory=dict)
    coupon: CouponUse | None = None

    def points(self, currency: str) -> int:
        """Total points earned in ``currency``."""
        return sum(e.points for e in self.earnings if e.currency == currency)

    def as_dict(self, zone: tzinfo | None = None) -> dict[str, Any]:
        """JSON-ready form (simulate output, stored trace).

        With ``zone`` (the program's time zone), an earning's ``expires_at`` and
        ``pending_until`` are written in it, so both read on the same clock (the pending
        end otherwise keeps the event's offset, the expiry the program's); the instants
        are the same either way. ``at`` stays as the event gave it.
        """

        def moment(value: datetime | None) -> str | None:
            if value is None:
                return None
            return (value.astimezone(zone) if zone is not None else value).isoformat()

        return {
            "event_id": self.event_id,
            "member": self.member,
            "at": self.at.isoformat(),
            "earnings": [
                {
                    "currency": e.currency,
                    "points": e.points,
                    "expires_at": moment(e.expires_at),
                    "pending_until": moment(e.pending_until),
                }
                for e in self.earnings
            ],
            "trace": self._trace_lines(),
            "usage": [{"rule": u.rule, "period": u.period, "points": u.points} for u in self.usage],
            "budget_spent": dict(self.budget_spent),
            "coupon": None
            if self.coupon is None
            else {
                "code": self.coupon.code,
                "campaign": self.coupon.campaign,
                "accepted": self.coupon.accepted,
                "reason": self.coupon.reason,
                **({"detail": self.coupon.detail} if self.coupon.detail else {}),
            },
        }

    def _trace_lines(self) -> list[dict[str, Any]]:
        """The trace's lines; the line of a rule that counted its points against the
        member's period cap says in which period (``period``, as ``rule_usage`` keys it),
        that of a rule that spent them from its campaign budget how many (``budget``). A
        refund gives back exactly these, whatever the program's rules and time zone have
        become since (:func:`fidelite.engine.refund.counters_given_back`)."""
        lines = [t.as_dict() for t in self.trace]
        if not (self.usage or self.budget_spent):
            return lines
        periods = {u.rule: u.period for u in self.usage}
        for row in lines:
            rule = row["rule"]
            if row["points"] <= 0:
                continue
            if rule in periods:
                row["period"] = periods[rule]
            if rule in self.budget_spent:
                row["budget"] = self.budget_spent[rule]
        return lines


# The engine builds one Decision and one Earning per currency for every event it
# evaluates, and calling a frozen dataclass costs more than the fields it sets: the
# class call, then a generated ``__init__`` looking ``object.__setattr__`` up anew
# for each field. These two set the fields with ``object.__setattr__`` held here, on
# an instance made by ``object.__new__``. Reading ``__dict__`` to fill it would be
# cheaper still when decisions are dropped at once, but it gives each instance a
# dictionary of its own (CPython keeps a fresh instance's attributes inline): with the
# decisions kept, as the import keeps a chunk's, the benchmark's line with the
# import's collector settings lost a tenth. What they return is the same value as the class
# called with the same arguments: every field set, equal, the same repr, and frozen.
_new = object.__new__
_set = object.__setattr__


def new_earning(
    currency: str, points: int, expires_at: datetime | None, pending_until: datetime | None
) -> Earning:
    """``Earning(currency, points, expires_at, pending_until)``, built faster."""
    earning = _new(Earning)
    _set(earning, "currency", currency)
    _set(earning, "points", points)
    _set(earning, "expires_at", expires_at)
    _set(earning, "pending_until", pending_until)
    return earning


def new_decision(
    event_id: str,
    member: str,
    at: datetime,
    earnings: list[Earning],
    trace: list[RuleTrace],
    usage: list[Usage],
    budget_spent: dict[str, int],
    coupon: CouponUse | None,
) -> Decision:
    """``Decision(...)`` with every field given in order, built faster."""
    decision = _new(Decision)
    _set(decision, "event_id", event_id)
    _set(decision, "member", member)
    _set(decision, "at", at)
    _set(decision, "earnings", earnings)
    _set(decision, "trace", trace)
    _set(decision, "usage", usage)
    _set(decision, "budget_spent", budget_spent)
    _set(decision, "coupon", coupon)
    return decision
