"""What a refund takes back of the tier bonus its purchase's upgrade gave later events.

A refund that undoes an upgrade (the tier history played again without the refunded
part, :func:`~fidelite.engine.tiers.on_refund`) also undoes what the level gave in the
meantime: each later event whose points the upgraded level's ``earn_multiplier`` raised
(its trace's ``tier:<id>`` line, ``x2 on 100``) keeps only the bonus of the level the
history played again gives it at its moment (none on a level without a multiplier).

Of each earn transaction, the bonus taken back (``bonus``, B, over every refund that took
some) is taken as if the event had earned that much less from the start: what is taken
from it in all is ``B + floor((points - B) x refunded so far / amount)`` (its refunds'
share of the rest, :func:`~fidelite.engine.refund.cumulative_share`), less what is
taken already (its refunds' reversals and earlier bonus reversals, ``reversed``), never
more than the transaction has left. So a later purchase refunded in half before the
upgrade is undone gives back half its bonus, and refunded after it, its refunds share
out what the bonus reversal left, exactly as if the purchase had earned no bonus.

Only an event the history played *with* the refunded part gives the level it holds
its bonus on is judged: the level it records or, when earlier refunds took some of its
bonus back, the lowest level they left it on (their lines' ``now``: a ladder undone one
level at a time takes back each level's bonus in turn). Before a manual assignment the
history is anchored on, the levels are those the history played from the base level up
to it gives. A level the history does not explain (a threshold changed in the file) is
left alone. A level is never given back (a refund only lowers one), and rules that
test ``member.tier`` are not evaluated again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fidelite.engine.refund import cumulative_share
from fidelite.engine.tiers import Levels

TIER_BONUS = "tier_bonus_of"
"""The field of a refund's trace line that names the later event whose tier bonus the
line takes back (a line without it reverses an earn of the refunded purchase)."""

_NOTE = re.compile(r"^x(\S+) on (\d+)$")


@dataclass(frozen=True)
class Earned:
    """One earn transaction of a later event: its points, what is reversed of it by
    refunds and bonus reversals (``reversed``), and all the ledger says is reversed of
    it (``on_ledger``, an operator's ``ledger reverse`` included)."""

    transaction_id: int
    points: int
    reversed: int
    on_ledger: int


@dataclass(frozen=True)
class Later:
    """An event of the member dated at or after the refunded purchase: its recorded
    trace, its earn transactions per currency, the bonus refunds took back of it
    already per currency, the level earlier refunds left its bonus on per currency
    (``holds``, none: the level it records), and (a purchase) its amount and what was
    refunded of it."""

    event_id: str
    at: datetime
    trace: Sequence[Mapping[str, Any]]
    earned: Mapping[str, Earned]
    amount: Decimal | None = None
    refunded: Decimal = Decimal(0)
    refunded_whole: bool = False
    bonus_taken: Mapping[str, int] = field(default_factory=dict)
    holds: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BonusReversal:
    """Take back ``points`` of ``transaction_id`` (event ``event_id``): ``bonus`` more of
    the bonus of ``tier`` taken back, the event being on ``now`` instead."""

    event_id: str
    transaction_id: int
    currency: str
    points: int
    bonus: int
    tier: str
    now: str
    base: int


def tier_lines(trace: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, int, int]]:
    """The tier bonus lines of an event's trace: (tier, currency, bonus, base)."""
    found = []
    for line in trace:
        rule = str(line.get("rule") or "")
        if not rule.startswith("tier:") or line.get("outcome") != "matched":
            continue
        points = int(line.get("points") or 0)
        matched = _NOTE.match(str(line.get("note") or ""))
        if points > 0 and matched is not None and line.get("currency"):
            found.append((rule[len("tier:") :], str(line["currency"]), points,
                          int(matched.group(2))))  # fmt: skip
    return found


def bonus_reversals(
    later: Iterable[Later],
    before: Levels,
    after: Levels,
    bonus: Callable[[str, str, int], int],
    rank: Mapping[str, int],
) -> list[BonusReversal]:
    """What to take back of ``later`` events' tier bonus: ``before``, the levels the
    history played with the refunded part gives; ``after``, without it; ``bonus(tier,
    currency, base)``, the program's bonus of a level on ``base`` points; ``rank``, each
    level's position on the ladder."""
    out = []
    for event in later:
        for tier, currency, applied, base in tier_lines(event.trace):
            earned = event.earned.get(currency)
            was, now = before.at(event.at), after.at(event.at)
            held = event.holds.get(currency, tier)  # what earlier refunds left it on
            if earned is None or was != held or now is None or now == held:
                continue
            if now not in rank or held not in rank or rank[now] > rank[held]:
                continue
            kept = min(bonus(now, currency, base), applied)
            total = applied - kept  # of the bonus, what the level played again denies
            more = total - event.bonus_taken.get(currency, 0)
            if more <= 0:
                continue
            points = _to_take(event, earned, total)
            out.append(BonusReversal(event.event_id, earned.transaction_id, currency,
                                     points, more, held, now, base))  # fmt: skip
    return out


def _to_take(event: Later, earned: Earned, bonus: int) -> int:
    """What to take from ``earned`` now for ``bonus`` taken back in all (see the module)."""
    otherwise = max(earned.on_ledger - earned.reversed, 0)
    rest = max(earned.points - otherwise - bonus, 0)
    share = 0  # the share of the rest its refunds took (none: not a purchase)
    if event.amount is not None and event.refunded_whole:
        share = rest
    elif event.amount is not None and event.amount > 0:
        share = cumulative_share(rest, event.amount, event.refunded)
    target = bonus + share - earned.reversed
    left = earned.points - otherwise - earned.reversed
    return max(min(target, left), 0)


def levels_held(
    traces: Iterable[Sequence[Mapping[str, Any]] | None], rank: Mapping[str, int]
) -> dict[tuple[str, str], str]:
    """The level the member's refunds left each event's bonus on, per (event id,
    currency): the lowest ``now`` of their tier bonus lines (a level is never given
    back)."""
    held: dict[tuple[str, str], str] = {}
    for trace in traces:
        for line in trace or []:
            of, now = line.get(TIER_BONUS), line.get("now")
            if of is None or now is None:
                continue
            key = (str(of), str(line.get("currency")))
            prior = held.get(key)
            if prior is None or rank.get(str(now), len(rank)) < rank.get(prior, len(rank)):
                held[key] = str(now)
    return held


def bonus_taken(traces: Iterable[Sequence[Mapping[str, Any]] | None]) -> dict[tuple[str, str], int]:
    """The bonus refunds took back so far, per (event id, currency), from the trace lines
    of the member's refunds."""
    taken: dict[tuple[str, str], int] = {}
    for trace in traces:
        for line in trace or []:
            of = line.get(TIER_BONUS)
            if of is not None:
                key = (str(of), str(line.get("currency")))
                taken[key] = taken.get(key, 0) + int(line.get("bonus") or 0)
    return taken
