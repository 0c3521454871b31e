"""Unique single-use coupon codes: generation, checksum and acceptance.

A code looks like ``SPRING-7KQ2-M9XD-4HRT-B``: the campaign prefix, 12 random symbols
from Crockford's base-32 alphabet (no I, L, O or U, so nothing reads ambiguously), and
one check symbol. 12 symbols carry 60 bits from the operating system's CSPRNG: with a
million codes issued, a guess succeeds with probability about 1e-12. The check symbol
is a position-weighted sum modulo the prime 37, written with Crockford's 37 check
symbols (``0-9``, the 22 letters, ``*~$=U``). Because 37 is prime and the weights of
the prefix and body symbols are distinct and below 37, it catches, before the database
is even asked, any single mistyped symbol (check symbol included) and any swap of two
symbols of the prefix and body, adjacent or not. A swap of a body symbol with the check
symbol is not always caught: the check symbol is not itself weighed, so such a swap
reads as a valid code whenever the symbol moved into the check place happens to be the
check of the new body (about one such swap in fifty). The scheme stays as it is: codes
already issued must stay valid.

A code is read as a cashier may type it (:func:`normalise`): in any case, with or
without its dashes. O typed for 0, or I / L for 1, is not read as the digit (as
Crockford's base 32 would): prefixes may hold those letters, and reading them as digits
would let some swaps between prefix and body through.
"""

from __future__ import annotations

import random
import secrets
from datetime import datetime
from enum import StrEnum

from fidelite.engine.decision import CouponUse
from fidelite.engine.member import MemberState
from fidelite.program.definition import ProgramDefinition

RANDOM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # prefix and body symbols -> 0..35
CHECK_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"  # Crockford's check symbols
BODY_LENGTH = 12


class CouponStatus(StrEnum):
    """What the store knows about a presented code."""

    issued = "issued"
    used = "used"
    not_found = "not_found"
    other_member = "other_member"  # issued to a named member, presented by another one


_VALUE = {c: i for i, c in enumerate(CODE_ALPHABET)}


def check_symbol(text: str) -> str:
    """Check symbol of ``text``: sum of (position x value) modulo 37, positions from 1."""
    value = _VALUE
    total = sum((i + 1) * value[c] for i, c in enumerate(text))
    return CHECK_ALPHABET[total % 37]


def make_code(prefix: str, body: str) -> str:
    """Format a code from its prefix and random body, appending the check symbol."""
    groups = "-".join(body[i : i + 4] for i in range(0, len(body), 4))
    return f"{prefix}-{groups}-{check_symbol(prefix + body)}"


_BITS = 5 * BODY_LENGTH  # 60: 5 bits per symbol of the 32-symbol random alphabet
_SHIFTS = tuple(range(_BITS - 5, -1, -5))  # the body's symbols, first to last
_RANDOM_VALUES = tuple(_VALUE[c] for c in RANDOM_ALPHABET)  # a random symbol's check value


def generate_codes(prefix: str, count: int, rng: random.Random | None = None) -> list[str]:
    """``count`` distinct codes for a campaign. ``rng`` is for reproducible tests only.

    Each body is one draw of 60 bits from the operating system's CSPRNG
    (:func:`secrets.randbits`), 5 bits per symbol: every body is equally likely, as when
    each symbol was drawn on its own (12 draws), at a fraction of the cost. The check
    symbol is :func:`check_symbol`'s, the prefix's part of the sum computed once."""
    codes: set[str] = set()
    ordered: list[str] = []
    alphabet, values, checks = RANDOM_ALPHABET, _RANDOM_VALUES, CHECK_ALPHABET
    base = sum((i + 1) * _VALUE[c] for i, c in enumerate(prefix))
    weights = tuple((len(prefix) + i + 1, shift) for i, shift in enumerate(_SHIFTS))
    randbits = secrets.randbits
    while len(ordered) < count:
        if rng is not None:
            n = sum(rng.choice(range(32)) << shift for shift in _SHIFTS)
        else:
            n = randbits(_BITS)
        symbols = [(n >> shift) & 31 for _, shift in weights]
        total = base + sum(w * values[v] for (w, _), v in zip(weights, symbols, strict=True))
        body = "".join([alphabet[v] for v in symbols])
        code = f"{prefix}-{body[:4]}-{body[4:8]}-{body[8:]}-{checks[total % 37]}"
        if code not in codes:
            codes.add(code)
            ordered.append(code)
    return ordered


def normalise(code: str) -> str:
    """The code as issued, from what a cashier might type: upper-cased, spaces dropped,
    and dashes put back where they belong (typed without them, or misplaced) if what is
    then read is a valid code (check symbol included). The prefix is the text before the
    last 13 symbols (12 of body, 1 check), so this is unambiguous. Anything else is
    returned upper-cased, without spaces.

    O is not read as 0, nor I or L as 1: a prefix may hold those letters (VIPWELC), and
    a swap of one of them into the body would then read as another code, which the check
    symbol is not sure to catch."""
    text = code.strip().upper().replace(" ", "")
    joined = text.replace("-", "")
    tail = BODY_LENGTH + 1
    prefix, rest = joined[:-tail], joined[-tail:]
    if len(prefix) < 2 or not prefix.isalnum() or not prefix.isascii():
        return text
    body, check = rest[:-1], rest[-1]
    groups = "-".join(body[i : i + 4] for i in range(0, BODY_LENGTH, 4))
    read = f"{prefix}-{groups}-{check}"
    return read if _parse(read) is not None else text  # a typo is shown as typed


def parse_code(code: str) -> tuple[str, str] | None:
    """``(prefix, body)`` if ``code`` is well formed with a correct check symbol, once
    read as :func:`normalise` reads it."""
    return _parse(normalise(code))


def _parse(code: str) -> tuple[str, str] | None:
    """``(prefix, body)`` if ``code``, as given, is a well-formed code (dashes in their
    places, upper case) with a correct check symbol."""
    parts = code.split("-")
    if len(parts) != 5:
        return None
    prefix, body, check = parts[0], "".join(parts[1:4]), parts[4]
    if len(body) != BODY_LENGTH or any(c not in RANDOM_ALPHABET for c in body):
        return None
    if not prefix or len(prefix) + BODY_LENGTH >= 37 or len(check) != 1:
        return None
    if any(c not in CODE_ALPHABET for c in prefix):
        return None
    if check_symbol(prefix + body) != check:
        return None
    return prefix, body


COUPON_ACCEPTED = "coupon_accepted"
"""The reason of a code accepted: its campaign's rules may apply (and it is used if one
of them gives points; otherwise :data:`COUPON_NOT_APPLIED`)."""
COUPON_NOT_APPLIED = "coupon_not_applied"
"""Why a valid code was not used: no rule of its campaign gave points for the event."""


def not_applied(coupon: CouponUse) -> tuple[CouponUse, str]:
    """A valid code left unused, and the note of its trace line: a single-use code is
    used up only by an event that a rule of its campaign gave points for (a condition
    that is false, an event type no coupon rule handles, a rule stopped, capped to 0 or
    out of budget leave it to a later purchase)."""
    note = f"{COUPON_NOT_APPLIED}: no rule of campaign {coupon.campaign} gave points"
    detail = _DETAILS[COUPON_NOT_APPLIED]
    return CouponUse(coupon.code, coupon.campaign, False, COUPON_NOT_APPLIED, detail), note


def check_coupon(
    program: ProgramDefinition,
    code: str,
    status: CouponStatus,
    member: MemberState,
    at: datetime,
) -> CouponUse:
    """Whether ``code`` may be used by ``member`` at ``at``; reasons are stable codes.

    Accepted here means the code's campaign rules may apply; it is used only if one of
    them then gives points (otherwise :func:`not_applied`).

    The first refusal wins, in this order: ``coupon_invalid``, ``coupon_unknown``,
    ``coupon_issued_to_other_member`` (the store found it issued to someone else: it is
    not this member's, used or not), ``coupon_already_used``, ``coupon_not_valid_now``,
    ``coupon_not_for_member`` (not in the campaign's segments).
    """
    parsed = parse_code(code)
    if parsed is None:
        return _refused(normalise(code), None, "coupon_invalid", code)
    campaign = program.campaign_for_prefix(parsed[0])
    if campaign is None or status is CouponStatus.not_found:
        return _refused(normalise(code), None, "coupon_unknown", code)
    canonical = normalise(code)
    if status is CouponStatus.other_member:
        return _refused(canonical, campaign.id, "coupon_issued_to_other_member", code)
    if status is CouponStatus.used:
        return _refused(canonical, campaign.id, "coupon_already_used", code)
    if campaign.window is not None and not campaign.window.contains(at):
        return _refused(canonical, campaign.id, "coupon_not_valid_now", code)
    if campaign.segments and not member.segments.intersection(campaign.segments):
        return _refused(canonical, campaign.id, "coupon_not_for_member", code)
    return CouponUse(canonical, campaign.id, True, COUPON_ACCEPTED)


def _refused(canonical: str, campaign: str | None, reason: str, typed: str) -> CouponUse:
    return CouponUse(canonical, campaign, False, reason, refusal_detail(reason, typed))


_DETAILS = {
    "coupon_unknown": "no coupon campaign of the program issued this code",
    "coupon_issued_to_other_member": "the code was issued to another member",
    "coupon_already_used": "the code was already used",
    "coupon_not_valid_now": "the code's campaign is not running at the event's time",
    "coupon_not_for_member": "the member is in none of the code's campaign segments",
    COUPON_NOT_APPLIED: "no rule of the code's campaign gave points: it stays unused",
}


def refusal_detail(reason: str, typed: str) -> str:
    """Why a code was refused, in words a cashier acts on (``reason`` is the stable
    code). For ``coupon_invalid``: whether the code has the form of an issued code with
    a check symbol that does not match (a symbol mistyped: type it again) or is no code
    of that form at all. The expected check symbol is never given (it would turn a typo
    into another valid-looking code)."""
    if reason != "coupon_invalid":
        return _DETAILS.get(reason, "")
    if _well_formed(typed):
        return ("the check symbol (the last one) does not match the rest of the code: a "
                "symbol is likely mistyped (O is not read as 0, nor I or L as 1); check "
                "the code and type it again")  # fmt: skip
    return (f"not a single-use code of a coupon campaign (PREFIX-XXXX-XXXX-XXXX-C: "
            f"{BODY_LENGTH} symbols, digits and letters but I, L, O and U, and a check "
            "symbol after the campaign's prefix); a rule may still read it as "
            "event.coupon (a shared code)")  # fmt: skip


_MISREAD = "OIL"
"""Letters codes never hold, typed for the digits they look like (O for 0, I and L for 1)."""


def _well_formed(typed: str) -> bool:
    """``typed`` reads as a prefix, 12 random symbols and a check symbol, whatever the
    check symbol's value. O, I and L in the random symbols count as symbols mistyped
    (for 0 and 1), not as another kind of code: a cashier reading ``OOOO`` off a voucher
    is told to type it again."""
    joined = typed.strip().upper().replace(" ", "").replace("-", "")
    tail = BODY_LENGTH + 1
    prefix, body, check = joined[:-tail], joined[-tail:-1], joined[-1:]
    return (
        len(prefix) >= 1
        and all(c in CODE_ALPHABET for c in prefix)
        and len(body) == BODY_LENGTH
        and all(c in RANDOM_ALPHABET or c in _MISREAD for c in body)
        and check in CHECK_ALPHABET
        and check != ""
    )
