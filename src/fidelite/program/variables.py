"""The variables CEL expressions see, their fields and each field's type.

This is the contract between a program file and the engine: the engine builds exactly
these fields with exactly these types (:mod:`fidelite.engine.context`; a test checks
the two agree), load-time checks read them to reject an unknown field or a type error,
and the engine runs as Python only expressions whose types this table fixes
(:mod:`fidelite.engine.native`).

Types are Python types as the values reach CEL: ``float`` is a CEL double, ``int`` a
CEL int, ``str`` a string, ``bool`` a bool and ``list`` a list of strings (segments).
``items`` (a list of basket lines, each with :data:`ITEM_FIELDS`) and ``attributes``
(a map whose values the business chooses: strings, numbers or booleans) are the
containers; their contents have no type fixed here beyond that.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

ITEM_FIELDS: Mapping[str, type] = {"sku": str, "category": str, "quantity": int, "price": float}
"""One basket line (``item`` in per-item conditions, an element of ``event.items``)."""

FIELD_TYPES: Mapping[str, Mapping[str, type]] = {
    "event": {
        "type": str,
        "amount": float,
        "channel": str,
        "store": str,
        "coupon": str,
        "hour": int,
        "minute": int,
        "weekday": int,
        "day": int,
        "month": int,
        "year": int,
        "date": str,
    },
    "member": {
        "tier": str,
        "segments": list,
        "purchases": int,
        "days_since_joined": int,
        "birthday": bool,
    },
    "item": ITEM_FIELDS,
}
"""Fields whose type is fixed by the engine, per variable."""

CONTAINER_FIELDS: Mapping[str, frozenset[str]] = {
    "event": frozenset({"items", "attributes"}),
    "member": frozenset({"attributes"}),
    "item": frozenset(),
}
"""Fields holding a list of basket lines (``items``) or a map (``attributes``)."""

VARIABLE_FIELDS: Mapping[str, frozenset[str]] = {
    name: frozenset(FIELD_TYPES[name]) | CONTAINER_FIELDS[name] for name in FIELD_TYPES
}
"""Every field of each variable: reading any other is a load-time error."""

CEL_TYPE_NAMES: Mapping[type, str] = {
    bool: "bool",
    int: "int",
    float: "double",
    str: "string",
    bytes: "bytes",
    list: "list",
    dict: "map",
    type(None): "null",
    datetime: "timestamp",
    timedelta: "duration",
}
"""CEL's name for the type of a value as it comes back to Python."""


def cel_type_name(value: object) -> str:
    """The CEL type name of a value CEL returned (``3.0`` -> ``double``)."""
    return CEL_TYPE_NAMES.get(type(value), type(value).__name__)
