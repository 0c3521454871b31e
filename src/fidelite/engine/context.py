"""The variables CEL expressions see: ``event`` and ``member`` (and ``item`` per line).

Converting Python values into CEL costs far more than evaluating a compiled
expression, so only the fields some expression of the program reads are built, and
only once per event (on first need). Money becomes a CEL double here: conditions
compare it, but points are computed from the exact ``Decimal`` amounts in Python.

``event``: type, amount, channel, store, coupon (the code as read and recorded:
upper-cased, spaces dropped, see :func:`_coupon`), items (sku, category, quantity,
price), attributes, and the local time in the program's zone: hour, minute, weekday
(1 = Monday ... 7 = Sunday), day, month, year and date ("2026-11-22").
``member``: tier, segments, attributes, purchases, days_since_joined (local calendar
days from the join date to the event's date, negative before it; -1000000,
:data:`UNKNOWN_DAYS`, if the join date is unknown) and birthday (true on the member's
birthday, local date; a 29 February birthday is celebrated on 28 February in years
without one).
"""

from __future__ import annotations

from calendar import isleap
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import cel

from fidelite.engine.coupon import normalise
from fidelite.engine.event import Event
from fidelite.engine.member import MemberState
from fidelite.program.expression import Expression

Builder = Callable[[Event, MemberState, datetime], dict[str, dict[str, Any]]]
"""Builds the fields' values of one event: ``(event, member, local time)``."""

ITEM_ATTRIBUTES: Mapping[str, Callable[[Any], Any] | None] = {
    "sku": None,
    "category": None,
    "quantity": None,
    "price": float,
}
"""How each field of a basket line is built from the :class:`~fidelite.engine.event.Item`:
the attribute of the same name, converted by the function given (None: as it is).

``event.items`` below builds exactly these values; per-item conditions run as Python
(:func:`fidelite.engine.native.translate_item`) read them from the item itself, with
the same conversions, instead of from a dictionary built per line.
"""

EVENT_FIELDS: dict[str, str] = {
    "type": "e.type",
    "amount": "float(e.money)",
    "channel": "e.channel",
    "store": "e.store",
    "coupon": "_coupon(e.coupon)",
    "items": (
        '[{"sku": i.sku, "category": i.category, "quantity": i.quantity,'
        ' "price": float(i.price)} for i in e.items]'
    ),
    "attributes": "dict(e.attributes)",
    "hour": "local.hour",
    "minute": "local.minute",
    "weekday": "local.isoweekday()",
    "day": "local.day",
    "month": "local.month",
    "year": "local.year",
    "date": "local.date().isoformat()",
}
"""How each field of ``event`` is built: a Python expression over ``e`` (the event),
``m`` (the member) and ``local`` (the event time in the program's zone). Expressions,
not functions, so that :class:`ContextFactory` can build all the fields a program
reads in one function of its own, without a call per field."""

UNKNOWN_DAYS = -1_000_000
"""``member.days_since_joined`` when the join date is unknown: below any real count (a
join date is not before 1970 nor later than now), so ``>= 0`` leaves it out as it leaves
out a purchase before joining, and ``== -1000000`` tells it from those.

A known join date gives local calendar days from the join day to the event's day, both
in the program's zone (``local.tzinfo``), as every other day count of the program: 0 on
the join day, 1 on the next day (an hour after joining at 23:00 too), 31 from 1 March
to 1 April whatever the summer time; negative for an event on a day before the join
day (-1 the day before), 0 for one earlier on the join day itself."""


MEMBER_FIELDS: dict[str, str] = {
    "tier": 'm.tier or ""',
    "segments": "sorted(m.segments)",
    "attributes": "dict(m.attributes)",
    "purchases": "m.purchases",
    "days_since_joined": (
        f"{UNKNOWN_DAYS} if m.joined_at is None"
        " else (local.date() - m.joined_at.astimezone(local.tzinfo).date()).days"
    ),
    "birthday": "m.birth_date is not None and _is_birthday(m.birth_date, local)",
}
"""How each field of ``member`` is built, as :data:`EVENT_FIELDS`."""


def _is_birthday(born: date, local: datetime) -> bool:
    """Whether ``local`` (a date in the program's zone) is the member's birthday.

    A member born on 29 February celebrates on 28 February in a year without one (the
    common convention), so they get their birthday once a year like everyone else.
    """
    if born.day == local.day and born.month == local.month:
        return True
    return (
        born.day == 29
        and born.month == 2
        and local.day == 28
        and local.month == 2
        and not isleap(local.year)
    )


def _coupon(code: str | None) -> str:
    """``event.coupon``: the code as the event records it and ``event show`` shows it
    (:func:`~fidelite.engine.coupon.normalise`: upper-cased, spaces dropped, an issued
    code's dashes put back), ``""`` without one. So a rule comparing it with a shared
    code (``event.coupon == "HELLO30"``) matches ``hello30`` or `` HELLO30 `` as the
    coupon campaigns read their codes, in every path (one event, import, simulate)."""
    return normalise(code) if code else ""


_BUILDERS = {"event": EVENT_FIELDS, "member": MEMBER_FIELDS}


def fields_needed(expressions: Iterable[Expression]) -> dict[str, frozenset[str]]:
    """Union of the fields the expressions read, per variable (all fields if unknown)."""
    needed: dict[str, set[str]] = {"event": set(), "member": set()}
    for expression in expressions:
        for variable, fields in expression.fields.items():
            if variable not in _BUILDERS:
                continue
            known = _BUILDERS[variable]
            needed[variable] |= set(known) if fields is None else fields & set(known)
    return {name: frozenset(fields) for name, fields in needed.items()}


class ContextFactory:
    """Builds the variables of one event with just the fields the program reads.

    ``values`` gives them as plain Python values (for expressions the engine runs as
    Python, see :mod:`fidelite.engine.native`); ``context`` hands CEL only the fields
    its own expressions read (``cel_needed``, by default all of ``needed``), because
    every value given to CEL is converted, used or not.
    """

    def __init__(
        self,
        needed: Mapping[str, frozenset[str]],
        zone: ZoneInfo,
        cel_needed: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self._needed = {name: sorted(fields) for name, fields in needed.items()}
        self._build = _builder(self._needed)
        cel_fields = needed if cel_needed is None else cel_needed
        self._cel_needed = {name: sorted(fields) for name, fields in cel_fields.items()}
        self._zone = zone

    def build(self, event: Event, member: MemberState) -> cel.Context:
        """The CEL context for ``event`` seen by ``member``."""
        return self.context(self.values(event, member))

    def values(
        self, event: Event, member: MemberState, local: datetime | None = None
    ) -> dict[str, dict[str, Any]]:
        """The fields' Python values for ``event`` seen by ``member``.

        ``local`` is the event time in the program's zone, if the caller has it.
        """
        local = local if local is not None else event.at.astimezone(self._zone)
        return self._build(event, member, local)

    def context(self, values: Mapping[str, Mapping[str, Any]]) -> cel.Context:
        """A CEL context holding the fields CEL expressions read, taken from ``values``."""
        variables = {
            name: {field: values[name][field] for field in fields}
            for name, fields in self._cel_needed.items()
        }
        return cel.Context(variables=variables)


def _builder(needed: Mapping[str, list[str]]) -> Builder:
    """One function building the ``needed`` fields, in that order, as nested dictionaries.

    Its source is the fields' expressions (:data:`EVENT_FIELDS`, :data:`MEMBER_FIELDS`)
    in two dictionary displays: ``{"event": {"amount": (float(e.money)), ...}, ...}``.
    This runs once per evaluated event, and a call per field (or a loop over them) cost
    more than building the values themselves. Only names of this module's tables reach
    the source (an unknown field is a ``KeyError`` here, as a lookup in them would be).
    """
    variables = []
    for name, fields in needed.items():
        sources = _BUILDERS[name] if fields else {}
        entries = ", ".join(f"{field!r}: ({sources[field]})" for field in fields)
        variables.append(f"{name!r}: {{{entries}}}")
    source = f"lambda e, m, local: {{{', '.join(variables)}}}"
    build: Builder = eval(source, {"_is_birthday": _is_birthday, "_coupon": _coupon})
    return build
