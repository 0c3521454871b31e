"""Events the engine evaluates: purchases, refunds and any named member action.

An event is immutable input. Money is ``Decimal``; ``at`` is timezone-aware (the
engine derives local hour, weekday and date in the program's zone from it).
``id`` is the client's event id: the store uses it to make processing idempotent.

Bounds: an amount, an item's unit price and a line total (price x quantity) are at
most :data:`MAX_AMOUNT` (10^10 money units), a quantity at most :data:`MAX_QUANTITY`.
The events table keeps money as ``NUMERIC(18, 4)`` (below 10^14), and a member's tier
window sums their purchases (in ten-thousandths, as a 64-bit integer on SQLite, below
9.2 x 10^18, and as ``NUMERIC(18, 4)`` on the timeline): 10^10 per event leaves room for
10,000 purchases at the bound in one window, and keeps every product the engine forms
(amount x rate, with 4 decimal places) far inside ``Decimal``'s 28 digits. 10^10 is
still above any real purchase, even in currencies of small units (a car in Indonesian
rupiah). An amount beyond the bound is refused here, at validation, naming its field,
rather than failing a whole import chunk or corrupting a member's tier window.

Places: an amount has at most :data:`MONEY_PLACES` (4) decimal places, the places the
books keep (``NUMERIC(18, 4)``). A finer amount (10.00005) would be kept rounded
(10.0001 on SQLite, through a float): the same event sent again would no longer match
what is recorded under its id, and a refund of the amount sent would exceed what is
recorded. It is refused here, naming ``amount``; trailing zeros (10.00000) are not
places: such an amount is accepted. An item's price is not kept by the store (only the
rules read it, and the amount is what refunds and tier windows use): it may be finer.

Binary floating point: a spreadsheet or a pandas export writes the double nearest a
sum, 11.000000000000002 or 0.30000000000000004, for what is 11 and 0.3. A number
written with more than :data:`DBL_DIG` (15) significant digits, more than a double
holds exactly, is read at 15 significant digits first; if that has at most 4 decimal
places, that is the amount (11, 0.3: trailing zeros dropped, as the spreadsheet shows
it), else it is refused as above. An amount of at most 15 significant digits is taken
as written (10.00005 is refused). The reading is a function of the value alone, so
the same file read again gives the same amount, the one recorded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fidelite.engine.calendar import fixed_offset, in_utc
from fidelite.engine.member_id import MemberId

PURCHASE = "purchase"
REFUND = "refund"

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest time a client may give (an event's ``at``, a member's ``joined_at``, an
adjustment's ``expires_at``, an assignment's ``until``): 1970-01-01T00:00:00Z. Nothing
a loyalty program records happened before it, and a time before it is a typing or
export mistake (``0001-01-01``, or a day count read as seconds since 1970), whose
points would be dated centuries ago and expired at once."""

ISO_INSTANT_EXAMPLE = "2026-12-01T10:00:00+01:00"

WESTMOST_OFFSET = timedelta(hours=-12)
EASTMOST_OFFSET = timedelta(hours=14)
"""The UTC offsets of the world's clocks since 1970 run from -12:00 (Baker Island) to
+14:00 (Kiritimati): a time written with an offset outside them (``-23:59``,
``+18:00``) is a typing or export mistake, and PostgreSQL keeps no offset beyond
+-15:59 (the event was a 500)."""
_ISO_DAY = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DAY_ONLY = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*")


def _written_as_iso(value: Any) -> Any:
    """``value`` if it is a time already or text in ISO 8601 (``2026-12-01T10:00:00+01:00``,
    starting with its date ``YYYY-MM-DD``), else refused: a number (``20261201``,
    ``1700000000``) or numeric text would otherwise be read as seconds since 1970, and a
    purchase of 2026-12-01 dated 1970-08-23, its points expired."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DAY.match(value)):
        return value
    raise PydanticCustomError(
        "datetime_iso",
        "must be an ISO 8601 date and time with a UTC offset, e.g. {example}, got {got}",
        {"example": ISO_INSTANT_EXAMPLE, "got": repr(value)},
    )


def _with_offset(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``value`` read as a date and time (``handler``), refused without a UTC offset in
    the import's words, quoting it as written (``'2026-12-01T10:00:00'``; pydantic said
    ``Input should have timezone info``)."""
    moment = handler(value)
    if isinstance(moment, datetime) and moment.tzinfo is None:
        written = value.isoformat() if isinstance(value, datetime) else str(value)
        raise PydanticCustomError(
            "timezone_aware", "needs a UTC offset (e.g. +00:00): {got}", {"got": repr(written)}
        )
    return moment


def offset_problem(at: datetime) -> str | None:
    """Why ``at``'s UTC offset is no clock's (outside :data:`WESTMOST_OFFSET` ..
    :data:`EASTMOST_OFFSET`), or None."""
    offset = at.utcoffset()
    if offset is None or WESTMOST_OFFSET <= offset <= EASTMOST_OFFSET:
        return None
    sign = "-" if offset < timedelta(0) else "+"
    minutes = int(abs(offset).total_seconds() // 60)
    shown = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return (f"{at.isoformat()} has UTC offset {shown}: offsets run from -12:00 to +14:00 "
            "(write the time with its real offset, or in UTC with Z)")  # fmt: skip


def _written_as_day(value: Any) -> Any:
    """``value`` if it is a date already or text ``YYYY-MM-DD``, else refused: a number
    (``19900517``) would otherwise be read as seconds since 1970."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY_ONLY.fullmatch(value):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            # the members import's words for a day that is not in the calendar
            from fidelite.processing.cells import calendar_problem  # (processing imports us)

            told = calendar_problem(value.strip())
            if told is None:
                raise
            raise PydanticCustomError("date_not_in_calendar", told) from None
    raise PydanticCustomError(
        "date_iso",
        "must be an ISO 8601 date YYYY-MM-DD, e.g. 1990-05-17, got {got}",
        {"got": repr(value)},
    )


def _finite(value: Any) -> Any:
    """``value`` unless it is a number that is not finite (NaN, infinity: JSON has no
    such numbers, but ``NaN`` or ``1e999`` reach a JSON reader; stored, they became null)."""
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        raise PydanticCustomError(
            "finite_number",
            "must be a finite number (not NaN or infinity), got {got}",
            {"got": str(value)},
        )
    return value


def encodable(value: str) -> str | None:
    """Why ``value`` is no text UTF-8 can hold (a lone surrogate, ``"\\ud800"`` in JSON:
    half of a character, which no database column or JSON answer can carry), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"must be text UTF-8 can encode: character {exc.start + 1} is a lone "
                f"surrogate (U+{ord(value[exc.start]):04X}), half of a character")  # fmt: skip
    return None


def _utf8(value: str) -> str:
    why = encodable(value)
    if why is not None:
        raise PydanticCustomError("text_not_utf8", why)
    return _without_nul(value)


NUL_MESSAGE = "must not hold U+0000 (NUL): no text the API keeps can carry it"
"""Why text with the NUL character is refused, in every field and on every route
(:mod:`fidelite.api.bodies`): no PostgreSQL text column can hold it (the database
refused the row with an error), while SQLite stored it."""


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("text_nul", NUL_MESSAGE)
    return value


Text = Annotated[str, AfterValidator(_without_nul)]
"""Text an event carries and the store keeps (an id, a channel, a SKU): without NUL."""


def _whole_number(value: Any) -> Any:
    """``value`` unless it is true/false or text: JSON ``true`` was read as 1 and ``"5"``
    as 5 (a quantity of 1 nobody sent); a whole number is written as a number."""
    if isinstance(value, bool | str | bytes):
        raise PydanticCustomError(
            "int_type",
            "must be a whole number written as a number (not true/false or text), got {got}",
            {"got": json_repr(value)},
        )
    return value


def json_repr(value: Any) -> str:
    """``value`` as JSON writes it (``true``, ``"5"``), for a refusal's message."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
"""A whole number as JSON writes one: true, false and numeric text are refused."""


def _not_a_flag(value: Any) -> Any:
    """``value`` unless it is true/false (read as 1 or 0: a quantity nobody sent)."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "int_type", "must be a whole number, not true/false, got {got}",
            {"got": json_repr(value)},
        )  # fmt: skip
    return value


_NUMBER_TEXT = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|(?i:[+-]?(?:s?nan|inf|infinity))"  # refused as not finite, as before
)


def _number_text(kind: str) -> Callable[[Any], Any]:
    """A before-validator refusing (error ``kind``) a number written as text that is not
    ASCII digits with an optional sign, decimal point and exponent: Python reads
    ``'1_000'`` as 1000 and Arabic-Indic digits as 0-9, which a till or a file never means. Spaces
    around the text are dropped, as the imports drop them around a member or a date cell
    (a spreadsheet shows none): ``' 10 '`` is 10 in the API and in a file alike."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if _NUMBER_TEXT.fullmatch(text) is None:
            raise PydanticCustomError(
                kind,
                "must be a number written with the digits 0-9 and a point as the decimal "
                "separator (no _, no thousands separator), got {got}",
                {"got": json_repr(value)},
            )
        return text

    return check


Quantity = Annotated[
    int, BeforeValidator(_not_a_flag), BeforeValidator(_number_text("int_parsing"))
]
"""A basket line's quantity: a whole number, also written as text (``"2"``, as a price
may be ``"2.50"``: files and tills recorded with it before stay importable, and
re-importing them finds their events), never true/false."""


def _attribute(value: Any) -> Any:
    """``value`` unless it is a list, an object or null (an attribute is one value), a
    number that is not finite (:func:`_finite`), a whole number beyond 64 bits (a rule
    condition reading it failed with a conversion error) or text with a lone surrogate
    (:func:`encodable`): stored, it answered 500 wherever the member was shown."""
    if value is None or isinstance(value, dict | list | tuple | set):
        got = "null" if value is None else "an object" if isinstance(value, dict) else "a list"
        raise PydanticCustomError(
            "attribute_type",
            "must be text, a whole number, a finite number or true/false, got {got}",
            {"got": got},
        )
    if isinstance(value, str):
        return _utf8(value)
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not (INT64_MIN <= value <= INT64_MAX)
    ):
        raise PydanticCustomError(
            "attribute_int_range",
            "a whole number must be from {low} to {high} (the 64-bit range rule conditions "
            "compute with), got a number of {digits} digits",
            {"low": INT64_MIN, "high": INT64_MAX, "digits": len(str(abs(value)))},
        )
    return _finite(value)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The whole numbers an attribute may hold: those rule conditions (CEL) compute with."""

AttributeValue = Annotated[str | int | float | bool, BeforeValidator(_attribute)]
"""A member's or an event's attribute: text, a whole number, a finite number or a flag
(never a list, an object, null, NaN, infinity, or text UTF-8 cannot hold)."""

AttributeName = Annotated[str, AfterValidator(_utf8)]
"""An attribute's name: any text UTF-8 can hold."""

MAX_ATTRIBUTES = 100
"""Most attributes a member or an event may be sent with (a member's stored before
keep working: only what is sent is checked)."""
MAX_ATTRIBUTE_NAME = 64
"""Longest attribute name, in characters."""


def _bounded_attributes(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` unless it has more than :data:`MAX_ATTRIBUTES` attributes or a name
    longer than :data:`MAX_ATTRIBUTE_NAME` characters (told cut, with its length)."""
    if len(value) > MAX_ATTRIBUTES:
        raise PydanticCustomError(
            "too_many_attributes",
            "at most {max} attributes, got {got}",
            {"max": MAX_ATTRIBUTES, "got": len(value)},
        )
    for name in value:
        if len(name) > MAX_ATTRIBUTE_NAME:
            raise PydanticCustomError(
                "attribute_name_too_long",
                "an attribute name is at most {max} characters, got {got} ({length} "
                "characters)",
                {"max": MAX_ATTRIBUTE_NAME, "got": repr(name[:40] + "..."),
                 "length": len(name)},
            )  # fmt: skip
    return value


Attributes = Annotated[dict[AttributeName, AttributeValue], AfterValidator(_bounded_attributes)]
"""A member's or an event's attributes, as the API and both imports take them: at most
:data:`MAX_ATTRIBUTES`, names of at most :data:`MAX_ATTRIBUTE_NAME` characters."""

_ATTRIBUTES: TypeAdapter[dict[str, Any]] = TypeAdapter(Attributes)


def read_attributes(value: Any) -> dict[str, Any]:
    """``value`` as :data:`Attributes` (a ``ValueError`` naming each attribute wrong,
    ``attributes.<name>: <why>``, joined by ``'; '``): the one check of the API's member
    routes and of the members import, so a file is refused what the API refuses."""
    try:
        return _ATTRIBUTES.validate_python(value)
    except ValidationError as exc:
        raise ValueError("; ".join(_told(error) for error in exc.errors())) from None


def _told(error: Any) -> str:
    """One attribute's problem; a name refused is quoted as Python writes it
    (``'\\ud800'``: a message must be text UTF-8 can hold)."""
    loc = [str(part) for part in error["loc"]]
    if not loc:  # the attributes as a whole (their number, a name's length)
        return "attributes: " + str(error["msg"])
    if loc[-1:] == ["[key]"]:
        return f"attributes: the name {error['input']!r} {error['msg']}"
    return ".".join(["attributes", *loc]) + ": " + str(error["msg"])


Day = Annotated[date, BeforeValidator(_written_as_day)]
"""A date written ``YYYY-MM-DD`` (a birth date): never a number."""

MAX_AMOUNT = Decimal(10**10)
"""Largest amount, unit price or line total an event may carry (see the module doc)."""
MAX_QUANTITY = 10**15
"""Largest quantity of a basket line: the most points the ledger takes in one entry,
and far inside the 64-bit integers rule expressions compute with."""
MONEY_PLACES = 4
"""Decimal places of an event amount: those the books keep (see the module doc)."""
DBL_DIG = 15
"""Significant digits a binary double holds exactly (C's ``DBL_DIG``): an amount written
with more is read at this many first (see the module doc)."""

_AT_DOUBLE_PRECISION = Context(prec=DBL_DIG, rounding=ROUND_HALF_EVEN)


def _in_calendar(at: datetime) -> datetime:
    wrong_offset = offset_problem(at)
    if wrong_offset is not None:
        raise PydanticCustomError("utc_offset", wrong_offset)
    in_utc(at)  # ValueError naming it if its UTC time is before year 1 or after 9999
    if at < EARLIEST:
        raise PydanticCustomError(
            "time_too_early",
            "{at} is before 1970-01-01T00:00:00Z, the earliest time accepted",
            {"at": at.isoformat()},
        )
    return fixed_offset(at)


def _places(amount: Decimal) -> int:
    """Decimal places of ``amount`` once trailing zeros are dropped (10.00000 has none)."""
    exponent = amount.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _significant_digits(amount: Decimal) -> int:
    """Digits of ``amount`` from its first non-zero one to its last (0.30 has 1)."""
    return len(amount.normalize().as_tuple().digits)


def _as_a_double_holds(amount: Decimal) -> Decimal:
    """``amount`` at :data:`DBL_DIG` significant digits (half to even), trailing zeros
    dropped, never in exponent form: 11.000000000000002 gives 11, 0.30000000000000004
    gives 0.3."""
    read = _AT_DOUBLE_PRECISION.plus(amount).normalize()
    exponent = read.as_tuple().exponent
    return read.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else read


def _to_the_unit(amount: Decimal) -> Decimal:
    """``amount`` if it has at most :data:`MONEY_PLACES` decimal places once trailing
    zeros are dropped (10.00000 has none); written with more than :data:`DBL_DIG`
    significant digits, ``amount`` as a double holds it if that has at most
    :data:`MONEY_PLACES` places (11.000000000000002 is 11); else refused, with the
    amount sent, as pydantic's own ``decimal_max_places`` error (no "Value error"
    before the message)."""
    if _places(amount) <= MONEY_PLACES:
        return amount
    if _significant_digits(amount) > DBL_DIG:
        read = _as_a_double_holds(amount)
        if _places(read) <= MONEY_PLACES:
            return read
    raise PydanticCustomError(
        "decimal_max_places",
        "at most {places} decimal places (the books keep money to 1/10,000), got {amount}",
        {"places": MONEY_PLACES, "amount": str(amount)},
    )


Instant = Annotated[
    datetime,
    BeforeValidator(_written_as_iso),
    WrapValidator(_with_offset),
    AfterValidator(_in_calendar),
]
"""A time written in ISO 8601 with its UTC offset (never a number: ``20261201`` is no
date; without an offset it is refused as the import refuses it), an offset a clock has
(-12:00 to +14:00, :func:`offset_problem`), whose UTC time is in the calendar, as the
store keeps it
(0001-01-01T00:00:00+05:00 is refused: in UTC it falls in year 0), and not before
:data:`EARLIEST`. A time in a named zone (a Parquet column typed
``timestamp[us, tz=Europe/Paris]``) is kept with its offset at that instant, fixed
(:func:`~fidelite.engine.calendar.fixed_offset`): the engine adds to it and compares
it in elapsed time, as it does a time sent in the API or written in a CSV file."""

MAX_PLACE = 128
"""Longest ``store`` or ``channel`` an event may carry, in characters."""

MAX_COUPON = 64
"""Longest coupon code an event may carry, as sent and as read (upper-cased, spaces
dropped): the events table keeps it in ``String(64)``. An issued code is at most 25
characters (a prefix of 8, 12 symbols, a check symbol and 4 dashes)."""


def _coupon_fits(code: str) -> str:
    """``code`` if it fits the events table, as sent and as read; else refused naming the
    field (it was ``coupon_invalid`` on SQLite and a database error on PostgreSQL)."""
    from fidelite.engine.coupon import normalise  # here: the coupon module imports this one

    _without_nul(code)
    read = len(normalise(code))
    if max(len(code), read) > MAX_COUPON:
        got = str(len(code)) if read <= len(code) else f"{len(code)} ({read} upper-cased)"
        raise PydanticCustomError(
            "coupon_too_long",
            "at most {max} characters (a coupon code is at most 25), got {got}",
            {"max": MAX_COUPON, "got": got},
        )
    return code


Coupon = Annotated[str, AfterValidator(_coupon_fits)]
"""A coupon code as presented: any text of at most :data:`MAX_COUPON` characters (an
unknown or mistyped code is the rule trace's ``coupon_invalid``)."""

NEGATIVE_AMOUNT = (
    "Input should be greater than or equal to 0; a refund is an event of type refund "
    "with a positive amount and refund_of (the purchase's event id)"
)
"""The message for a negative event amount: pydantic's, with what to send instead, as
the import says it of a negative amount cell."""


def _not_negative(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``handler``'s amount, its error for a negative one (``greater_than_equal``, the
    kind the import words for a cell) saying that a refund is sent as a refund event:
    pydantic's bare "greater than or equal to 0" leaves a till wondering how to send
    money back."""
    try:
        return handler(value)
    except ValidationError as exc:
        if any(e["type"] == "greater_than_equal" for e in exc.errors()):
            raise PydanticCustomError("greater_than_equal", NEGATIVE_AMOUNT, {"ge": 0}) from None
        raise


Amount = Annotated[
    Decimal,
    Field(ge=0, le=MAX_AMOUNT),
    BeforeValidator(_number_text("decimal_parsing")),
    WrapValidator(_not_negative),
    AfterValidator(_to_the_unit),
]
"""An event amount: not negative (:data:`NEGATIVE_AMOUNT`), at most :data:`MAX_AMOUNT`,
to the 1/10,000 the books keep, a binary double's noise beyond 15 significant digits
dropped (see the module doc); written as text, plain digits (:func:`_number_text`)."""


class Item(BaseModel):
    """One basket line: ``price`` is the unit price, so the line total is price x quantity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Text = Field(min_length=1)
    category: Text = ""
    quantity: Quantity = Field(default=1, gt=0, le=MAX_QUANTITY)
    price: Annotated[
        Decimal, Field(ge=0, le=MAX_AMOUNT), BeforeValidator(_number_text("decimal_parsing"))
    ]

    @model_validator(mode="after")
    def _bounded(self) -> Item:
        if self.total > MAX_AMOUNT:
            raise ValueError(f"line total (price x quantity) {self.total} is above {MAX_AMOUNT}")
        return self

    @property
    def total(self) -> Decimal:
        """Line total in money."""
        return self.price * self.quantity


class Event(BaseModel):
    """Something a member did. ``type`` is ``purchase``, ``refund`` or any action name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Text = Field(min_length=1, max_length=200)
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    member: MemberId
    at: Instant
    amount: Amount | None = None
    channel: Text = Field(default="", max_length=MAX_PLACE)
    store: Text = Field(default="", max_length=MAX_PLACE)
    items: list[Item] = Field(default_factory=list)
    coupon: Coupon | None = None
    refund_of: Text | None = Field(default=None, description="purchase event id (refunds)")
    attributes: Attributes = Field(default_factory=dict)

    @field_validator("coupon", mode="before")
    @classmethod
    def _blank_coupon_is_none(cls, value: object) -> object:
        """A coupon of spaces only is no coupon, as an empty one is (a till or a CSV
        cell sending blanks): it was read as the code ``''`` and traced
        ``coupon_invalid``, and recorded so."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _shape(self) -> Event:
        if self.type in (PURCHASE, REFUND) and self.amount is None:
            raise ValueError(f"a {self.type} event needs 'amount'")
        if self.type == REFUND and not self.refund_of:
            raise ValueError("a refund event needs 'refund_of' (the purchase event id)")
        if self.type != REFUND and self.refund_of:
            raise ValueError("'refund_of' is only for refund events")
        return self

    @property
    def money(self) -> Decimal:
        """The event amount, zero for events without one."""
        return self.amount if self.amount is not None else Decimal(0)
