"""Input checks shared by every operation. Each failure names the field at fault."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fidelite.engine.calendar import in_utc
from fidelite.engine.member_id import member_id_problem
from fidelite.ledger.errors import invalid

MAX_POINTS = 10**15  # far beyond any real balance; keeps sums inside BIGINT
MAX_TEXT = 200


def points(value: Any, field: str = "points") -> int:
    """A strictly positive integer number of points (bools, floats and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, f"must be a whole number of points, got {value!r}")
    if value <= 0:
        raise invalid(field, f"must be greater than zero, got {value}")
    if value > MAX_POINTS:
        raise invalid(field, f"must be at most {MAX_POINTS}, got {value}")
    return value


def signed_points(value: Any, field: str = "points") -> int:
    """A non-zero integer (credit if positive, debit if negative)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, f"must be a whole number of points, got {value!r}")
    if value == 0:
        raise invalid(field, "must not be zero")
    points(abs(value), field)
    return value


def moment(value: Any, field: str) -> datetime:
    """A timezone-aware UTC datetime.

    Accepts an aware datetime, a date or a date-only ISO text (both meaning midnight
    UTC), or ISO 8601 text with an offset. A time without a zone is refused: it would
    shift expiry dates silently depending on the server's zone.
    """
    if isinstance(value, str):
        raw = value.strip()
        try:
            value = (
                date.fromisoformat(raw)
                if len(raw) == 10
                else datetime.fromisoformat(raw.replace("Z", "+00:00"))
            )
        except ValueError:
            raise invalid(field, f"is not an ISO 8601 date or time: {raw!r}") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, datetime):
        raise invalid(field, f"must be a date or time, got {value!r}")
    if value.tzinfo is None:
        raise invalid(field, f"needs a time zone (e.g. {value.isoformat()}+00:00)")
    try:
        return in_utc(value)
    except ValueError as exc:
        raise invalid(field, str(exc)) from None


def optional_moment(value: Any, field: str) -> datetime | None:
    return None if value is None else moment(value, field)


def text(value: Any, field: str, *, required: bool = True) -> str | None:
    """A non-blank string of at most 200 characters (``None`` allowed when optional)."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "must be a non-empty text")
    if len(value) > MAX_TEXT:
        raise invalid(field, f"must be at most {MAX_TEXT} characters")
    return value


def member_id(value: Any, field: str) -> str:
    """A member id to enrol: a text, by the rule of :mod:`fidelite.engine.member_id`
    (the API's and the imports' rule too), so that no way in enrols an id the member
    URLs cannot reach."""
    if not isinstance(value, str):
        raise invalid(field, "must be a non-empty text")
    problem = member_id_problem(value)
    if problem is not None:
        raise invalid(field, problem)
    return value


def key(value: Any) -> str:
    """An idempotency key: required on every mutating call."""
    checked = text(value, "key")
    assert checked is not None
    return checked
