"""String literals compared with ``event.coupon`` that it can never hold as written.

``event.coupon`` is the code as the event records it (:func:`fidelite.engine.coupon.normalise`:
upper-cased, spaces dropped, an issued code's dashes put back). So
``event.coupon == "hello30"`` or ``event.coupon.startsWith("spring")`` is valid CEL of
the right types, passes the type probe, and never matches: the rule silently gives
nothing. This module finds each string literal compared with ``event.coupon`` (``==``,
``!=``, an entry of a list literal after ``in``, ``startsWith``, ``endsWith``,
``contains``; the literal on either side) that is not written as a code is recorded.

Invariant: only literals compared with ``event.coupon`` itself are judged (not
``event.channel == "web"`` beside it, nor ``event`` bound by a macro). A whole value
(``==``, ``!=``, ``in``) is refused when normalising it changes it: a recorded code is
its own normal form, so such a literal never equals one. A part of a code
(``startsWith``, ``endsWith``, ``contains``) is refused when it holds a lower-case
letter or a space, which no recorded code holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fidelite.program.comparison import Call, Comparison, Operand, calls, comparisons, position

COUPON = "event.coupon"
_PARTS = frozenset({"startsWith", "endsWith", "contains"})


def coupon_literal_problems(source: str) -> list[tuple[int, str]]:
    """Each literal compared with ``event.coupon`` in ``source`` that it never holds as
    written, with the comparison's offset in ``source``, in source order."""
    found = []
    for comparison in comparisons(source):
        for literal in _compared_values(comparison):
            found.append((comparison.start, _message(source, comparison, literal, whole=True)))
    for call in calls(source, _PARTS):
        for literal in _call_values(call):
            found.append((call.start, _message(source, call, literal, whole=False)))
    return sorted(found, key=lambda problem: problem[0])


def _compared_values(comparison: Comparison) -> list[str]:
    """The literals ``event.coupon`` is compared with that it can never equal."""
    if _is_coupon(comparison.left, comparison.scope):
        other = comparison.right
    elif comparison.op != "in" and _is_coupon(comparison.right, comparison.scope):
        other = comparison.left
    else:
        return []
    entries = other.elements if comparison.op == "in" else (other,)
    values = [_string_value(entry) for entry in entries or ()]
    return list(dict.fromkeys(v for v in values if v is not None and _recorded(v) != v))


def _call_values(call: Call) -> list[str]:
    """The literals of ``call`` (target or argument, the other side ``event.coupon``)
    that hold what no recorded code holds."""
    if len(call.arguments) != 1:
        return []
    sides = (call.target, call.arguments[0])
    values = []
    for side, other in (sides, sides[::-1]):
        value = _string_value(side)
        if value is not None and _is_coupon(other, call.scope) and _part(value) != value:
            values.append(value)
    return values


def _message(source: str, where: Comparison | Call, literal: str, whole: bool) -> str:
    text = source[where.start : where.end]
    written = _recorded(literal) if whole else _part(literal)
    return (
        f"{text}{position(source, where)}: {COUPON} is the code as recorded (upper-cased,"
        f' spaces dropped), so "{literal}" never matches it; write "{written}"'
    )


def _recorded(value: str) -> str:
    """``value`` as a code is recorded (imported here: the engine imports the program)."""
    from fidelite.engine.coupon import normalise

    return normalise(value)


def _part(value: str) -> str:
    """``value`` as a part of a recorded code would read: upper-cased, without spaces."""
    return value.upper().replace(" ", "")


def _is_coupon(operand: Operand, scope: Mapping[str, str]) -> bool:
    """Whether ``operand`` is ``event.coupon`` (parentheses around it allowed), unless a
    macro binds ``event`` there."""
    text = re.sub(r"\s+", "", operand.text).removeprefix(".")
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return text == COUPON and "event" not in scope


def _string_value(operand: Operand) -> str | None:
    """The value of ``operand`` if it is a plain string literal without escapes (else
    None: a value computed at run time, or one this check does not read)."""
    if operand.literal != "string":
        return None
    text = operand.text.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if len(text) < 2 or text[0] not in "\"'" or text[-1] != text[0]:
        return None
    if "\\" in text or text[:3] in ('"""', "'''"):
        return None
    return text[1:-1]
