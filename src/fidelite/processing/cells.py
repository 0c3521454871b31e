"""What a rejected cell of an import file is told: the cell as written and what to write
instead, so the user can find it in the spreadsheet and fix it without guessing.

The event model's own messages (``String should match pattern '^[a-z][a-z0-9_]*$'``,
``Input should be a valid decimal``) are the API's, which answers a program; a row of
a file is fixed by a person, who needs the value they wrote (``'12,50'``) and the way
the import reads it (a decimal point). A cell that has the shape of a date but names no
day (``1990-02-30``) is told so, with the days of its month, rather than called "not a
date YYYY-MM-DD", which it plainly is.

Id cells (:func:`id_text`) are read here for both imports: a number names the id of its
whole value's decimal text, whatever the column's type (``1001``, ``1001.0``), and a
number that names no whole value is refused with the reason.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
_DAY = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")
_TYPE = re.compile(r"[a-z][a-z0-9_]*")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_EUROPEAN = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?")
ISO_EXAMPLE = "2026-10-02T10:00:00+02:00"
EXACT_FLOAT = 2**53
"""The whole number from which not every whole number is a float (a double): a float
id column at or above it may hold an id rounded to its neighbour when it was written."""


class NarrowFloat(float):
    """A float read from a single- or half-precision column (float32, float16), the
    value unchanged: :attr:`exact` is the whole number from which that column's type
    holds not every whole number (2**24 for float32, 2**11 for float16), so an id read
    from it at or above that may have been rounded when it was written (16777217 is
    written as 16777216)."""

    exact = EXACT_FLOAT
    kind = "float64"


class Float32(NarrowFloat):
    """A float of a float32 column."""

    exact = 2**24
    kind = "float32"


class Float16(NarrowFloat):
    """A float of a float16 column."""

    exact = 2**11
    kind = "float16"


_CONTROLS = {"\n": ("a line break", "\\n"), "\r": ("a carriage return", "\\r"),
             "\t": ("a tab", "\\t")}  # fmt: skip


def shown(value: Any) -> str:
    """A cell as the message quotes it: text as written, a date-time (Parquet) in ISO."""
    if isinstance(value, datetime | date):
        return repr(value.isoformat())
    return repr(value)


def calendar_problem(text: str) -> str | None:
    """Why ``text``, written as a date ``YYYY-MM-DD`` (or a date-time starting with one),
    names no day or time of the calendar (``'1990-02-30' is not a day of the calendar
    (February 1990 has 28 days)``); None when it is not that shape or its date and time
    exist (then whatever is wrong with it is something else)."""
    match = _DAY.match(text)
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups()[:3])
    if year < 1:
        return f"{text!r} is not a day of the calendar (years start at 0001)"
    if not 1 <= month <= 12:
        return f"{text!r} is not a day of the calendar (months are 01 to 12)"
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return (f"{text!r} is not a day of the calendar ({MONTHS[month - 1]} {year} has "
                f"{days} days)")  # fmt: skip
    hour, minute, second = (int(part or 0) for part in match.groups()[3:])
    if hour > 23 or minute > 59 or second > 59:
        return (f"{text!r} is not a time of day (hours are 00 to 23, minutes and seconds "
                "00 to 59)")  # fmt: skip
    return None


def event_cell(column: str, kind: str, value: Any) -> str | None:
    """The message, without its column, for the event model's error ``kind`` on the cell
    ``value`` of ``column``, when a person needs more than the model says (None: the
    model's message stands)."""
    if column == "type" and kind == "string_pattern_mismatch" and isinstance(value, str):
        return type_name(value)
    if column == "amount" and kind == "decimal_parsing" and isinstance(value, str):
        return amount(value)
    if column == "amount" and kind == "greater_than_equal":
        return (f"{shown(value)} is negative; an amount is 0 or more (a refund is a row of "
                "type refund, with a positive amount)")  # fmt: skip
    if column == "at" and kind == "timezone_aware":
        return f"needs a UTC offset (e.g. +00:00): {shown(value)}"
    if column == "at" and kind.startswith("datetime") and isinstance(value, str):
        return calendar_problem(value) or (
            f"{value!r} is not an ISO 8601 date-time (date, T, time and UTC offset: {ISO_EXAMPLE})"
        )
    return None


def type_name(value: str) -> str:
    """An event type cell that is no type name, with the name it likely means: the
    same in lower case, its spaces and hyphens as ``_`` (``'Purchase'``: ``'purchase'``)."""
    rule = "lower-case letters, digits and _, starting with a letter"
    guess = re.sub(r"[\s-]+", "_", value.strip()).lower()
    if _TYPE.fullmatch(guess) and guess != value:
        return f"{value!r} is not an event type name ({rule}; did you mean {guess!r}?)"
    return f"{value!r} is not an event type name ({rule})"


def amount(value: str) -> str:
    """An amount cell that is no number, and how to write it: the import reads a point
    as the decimal separator and no thousands separator, whatever the locale."""
    text = value.strip()
    start = f"{value!r} is not a number"
    if _DECIMAL_COMMA.fullmatch(text) and len(text.partition(",")[2]) == 3:
        return (f"{start}; use a point as the decimal separator ({text.replace(',', '.')}) "
                f"and no thousands separator ({text.replace(',', '')})")  # fmt: skip
    if _DECIMAL_COMMA.fullmatch(text):
        return f"{start}; use a point as the decimal separator ({text.replace(',', '.')})"
    if _THOUSANDS.fullmatch(text):
        return f"{start}; write it without thousands separators ({text.replace(',', '')})"
    if _EUROPEAN.fullmatch(text):
        plain = text.replace(".", "").replace(",", ".")
        return (f"{start}; write it with a point as the decimal separator and no "
                f"thousands separator ({plain})")  # fmt: skip
    return f"{start}; write digits with a point as the decimal separator (e.g. 12.50)"


def id_text(value: Any) -> Any:
    """An id cell (``member``, ``event_id``, ``refund_of``, ``coupon``, ``store``,
    ``channel``) as the text it names, in both imports: an integer (a Parquet int64
    column) as its decimal text, and a whole number of a decimal column as the same
    text (``1001.0`` is ``'1001'``: pandas writes an id column with an empty cell as
    float64, and a Parquet decimal column gives ``Decimal('1001.00')``); text and any
    other value as is. ``ValueError`` (without the column) for a number that names no
    id: a fraction (``8.5``), NaN or an infinity, or a float at or beyond
    :data:`EXACT_FLOAT` (a float32 column's at or beyond 2**24, a float16's 2**11,
    :class:`NarrowFloat`): the id may have been rounded when it was written.

    Invariant: a number and the text of its whole value name the same id, so a member
    is the same whether a file gives its id as int64, float64, decimal or text."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, int):
        return str(value)
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite or value != int(value):
        raise ValueError(f"{value} is not a whole number, so it names no id (an id column "
                         "holds text or whole numbers: 1001, or 1001.0 as a decimal "
                         "column holds it)")  # fmt: skip
    if isinstance(value, float) and abs(value) >= _exact(value):
        kind = value.kind if isinstance(value, NarrowFloat) else "float64"
        raise ValueError(f"{value} is too large for the precision of a {kind} column to "
                         f"hold an id exactly (from {_exact(value)} on, not every whole "
                         "number is such a float): the id may have been rounded; export "
                         "the column as whole numbers (int64) or text")  # fmt: skip
    return str(int(value))


def _exact(value: float) -> int:
    """The whole number from which a float like ``value`` holds not every whole number."""
    return value.exact if isinstance(value, NarrowFloat) else EXACT_FLOAT


def id_key(value: Any) -> str:
    """An id cell as the text a reject line or a lookup names it by: :func:`id_text`, or
    the cell as written when it names no id (the row is refused for it)."""
    try:
        return str(id_text(value))
    except ValueError:
        return str(value)


def json_problem(exc: json.JSONDecodeError) -> str:
    """What is wrong with a JSON cell, for ``invalid JSON (...)``: the decoder's message,
    completed with the place in the cell where it ends on "at" (``Invalid control
    character at``, ``Unterminated string starting at``), and for a control character
    (a line break a spreadsheet keeps in a quoted cell) how a JSON string writes it."""
    if not exc.msg.endswith(" at"):
        return exc.msg
    where = f"{exc.msg} line {exc.lineno}, column {exc.colno} of the cell"
    char = exc.doc[exc.pos : exc.pos + 1]
    if not exc.msg.startswith("Invalid control character") or not char:
        return where
    name, escape = _CONTROLS.get(char, (f"the control character U+{ord(char):04X}",
                                        f"\\u{ord(char):04x}"))  # fmt: skip
    return f"{where}: {name} inside a JSON string must be written {escape}"
