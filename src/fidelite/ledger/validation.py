"""Input checks shared by every operation. Each failure names the field at fault."""

from __future__ import annotations

from datetime import UTC, date, datetime
from hashlib import sha256
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


DIGEST_MARK = "sha256:"
"""Marks the digest standing for a caller's key in a derived key too long to keep whole."""


def derived_key(prefix: str, key: str, suffix: str = "", *, room: int = MAX_TEXT) -> str:
    """The key an operation stores for a caller's ``key`` under ``prefix`` (and ``suffix``,
    e.g. ``":<member>"`` for one member of a bulk call), in at most ``room`` characters
    (the ledger's limit and its columns' size by default).

    Invariants: ``prefix + key + suffix`` itself whenever it fits, as every derived key
    was stored before digests were used (a retry of an earlier call finds its key);
    otherwise ``prefix + "sha256:" + <48 hex digits of the SHA-256 of key> + suffix``,
    which keeps the suffix readable (erasure rewrites a bulk key's member there); if
    even that is too long (a suffix of over 100 characters, which names no member), the
    digest covers key and suffix. Deterministic, and two different keys give different
    derived keys unless a key is itself written as another's digest form.
    """
    plain = f"{prefix}{key}{suffix}"
    if len(plain) <= room:
        return plain
    fitted = f"{prefix}{_digest(key)}{suffix}"
    if len(fitted) <= room:
        return fitted
    whole = f"{prefix}{_digest(f'{len(key)}:{key}{suffix}')}"
    assert len(whole) <= room, "the prefix leaves room for a digest"
    return whole


def _digest(text: str) -> str:
    """``sha256:`` and the first 48 hex digits (192 bits) of the SHA-256 of ``text``
    (UTF-8; a lone surrogate, e.g. from a command line's undecodable byte, kept as is)."""
    return DIGEST_MARK + sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:48]


def redemption_key(origin: str, key: str) -> str:
    """The key a redemption is stored under for a caller's ``key`` (``origin``: ``api:``
    or ``cli:``): room is left for the ``redeem:`` the processor puts before it for the
    ledger's spend, so both fit (a key of up to 189 characters is kept whole, as before)."""
    return derived_key(origin, key, room=MAX_TEXT - len("redeem:"))
