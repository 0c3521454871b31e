"""Base class for every program-definition model, and what model-level checks share.

A typo in a program file (``multiplyer:``) must be an error naming the line, not a
silently ignored key that changes how points are given.

Checks that involve several fields of one model (a tier ladder, a reward's kind and
its ``value``) are written once, as a function over a mapping of the model's fields
that yields ``(location of the offending field, message)``. The model runs it on its
own validated fields (so a model built in code is always consistent) and the loader
runs it on the YAML as written (so it reports even when another field of the same
model failed validation, which stops pydantic from running model validators). The
functions therefore read values leniently: a value that does not parse is skipped,
its own field error already says why.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

Location = tuple[str | int, ...]
"""A path into the program file: ``("rules", 2, "when")`` is ``rules[2].when``."""

Problems = Iterator[tuple[Location, str]]
"""Problems found by a check: where (relative to the checked mapping) and what."""


_YAML11_TRUE = frozenset({"yes", "y", "on"})
_YAML11_FLAGS = _YAML11_TRUE | {"no", "n", "off"}
"""Words YAML 1.1 read as true/false, which YAML 1.2 reads as text: a yes/no field
takes them as YAML 1.1 did (files were written so), and nothing else but true/false."""


class ProgramModel(BaseModel):
    """Frozen, no extra keys; expressions are compiled objects, not strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @field_validator("*", mode="before")
    @classmethod
    def _written_as_its_type(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse ``true``/``false`` for a number and anything but them for a yes/no.

        Pydantic would read ``fixed: true`` as 1 point, ``budget: true`` as a budget
        of 1, and ``stop: "off"`` or ``stop: 1`` as a bool: a value of the wrong type
        is a mistake to report at its line, as any other.
        """
        if info.field_name is None or value is None:
            return value
        kinds = _scalar_kinds(cls.model_fields[info.field_name].annotation)
        if bool in kinds and not isinstance(value, bool):
            word = value.strip().lower() if isinstance(value, str) else None
            if word in _YAML11_FLAGS:  # true/false in YAML 1.1, as files were written
                return word in _YAML11_TRUE
            raise PydanticCustomError(
                "bool_type", "Input should be true or false, got {got}", {"got": repr(value)}
            )
        if (
            isinstance(value, bool)
            and bool not in kinds
            and kinds & _NUMBERS
            and kinds <= _NUMBERS | {type(None)}
        ):
            kind = "a valid integer" if kinds & _NUMBERS == {int} else "a valid number"
            raise PydanticCustomError(
                "number_type",
                "Input should be {kind}, got {got}",
                {"kind": kind, "got": "true" if value else "false"},
            )
        return value


_NUMBERS: frozenset[object] = frozenset({int, float, Decimal})


def _scalar_kinds(annotation: object) -> frozenset[object]:
    """The types a field's annotation allows, through ``Annotated`` and unions:
    ``Annotated[int, ...] | None`` is ``{int, NoneType}``."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_kinds(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return frozenset().union(*(_scalar_kinds(arg) for arg in get_args(annotation)))
    return frozenset({annotation})


class FieldError(ValueError):
    """A model-level problem that belongs to one field of the model.

    ``loc`` is the field's path inside the model; the loader appends it to the model's
    location so the problem points at the field's line (``tiers.levels[1].threshold``),
    not at the model's (``tiers``).
    """

    def __init__(self, loc: Location, message: str) -> None:
        super().__init__(message)
        self.loc = loc


def raise_first(problems: Iterable[tuple[Location, str]]) -> None:
    """Raise the first problem as a :class:`FieldError` (a model validator's answer)."""
    for loc, message in problems:
        raise FieldError(loc, message)


def as_decimal(value: object) -> Decimal | None:
    """``value`` as a Decimal if it is a number (or its text), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def as_aware_datetime(value: object) -> datetime | None:
    """``value`` as a timezone-aware datetime if it is one (or its ISO text), else None."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return None


CALENDAR = "the calendar runs from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
OUTSIDE_CALENDAR_FIX = "write a date inside it, or leave the field out for no limit on that side"


def _in_calendar(at: datetime) -> datetime:
    """``at`` if its UTC time is in the calendar, else the error naming it, with the fix.

    The engine compares these dates in UTC: one whose UTC time is in year 0 or 10000
    (``0001-01-01T00:00:00+05:00``) would pass the check and fail on the first event.
    """
    # Here, not at the top: fidelite.engine imports this package.
    from fidelite.engine.calendar import in_utc

    try:
        in_utc(at)
    except ValueError as exc:
        raise ValueError(f"{exc} ({CALENDAR}); {OUTSIDE_CALENDAR_FIX}") from None
    return at


def _written_as_iso(value: object) -> object:
    """``value`` if it is a time (YAML reads ``2026-12-01T10:00:00+01:00`` as one) or text
    starting with a date ``YYYY-MM-DD``; a number (``20261201``) or numeric text is
    refused, rather than read as seconds since 1970 (a window of 1970-08-23)."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DAY.match(value)):
        return value
    raise PydanticCustomError(
        "datetime_iso",
        "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-12-01T10:00:00+01:00, "
        "got {got}",
        {"got": repr(value)},
    )


_ISO_DAY = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}")

ProgramTime = Annotated[
    AwareDatetime, BeforeValidator(_written_as_iso), AfterValidator(_in_calendar)
]
"""A date of a program file (a window's bounds, a reward's validity): written in ISO 8601
with its UTC offset (never a number), and inside the calendar once in UTC, as the engine
compares it."""


def unused_fields(section: Mapping[str, Any], names: Iterable[str], why: str) -> Problems:
    """Each of ``names`` written in ``section`` although another setting makes it do
    nothing: ``'months' does nothing <why>`` at the field.

    A field that changes nothing would be silently ignored, like a misspelt key: the
    business means something by it (points that expire, a return window), so say so.
    """
    for name in names:
        if section.get(name) is not None:
            yield (name,), f"'{name}' does nothing {why}"


def mappings(value: object) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The entries of a list that are mappings, with their index (others are skipped)."""
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, Mapping):
                yield index, entry


IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER.pattern, max_length=64)]
"""A lower-case name used to refer to a currency, rule, tier, reward, campaign or segment."""
