"""Tier ids written as string literals next to ``member.tier``, checked against the ladder.

``member.tier == "gld"`` is valid CEL of the right types, so the type probe
(:mod:`fidelite.program.probe`) passes it, and it never matches: the rule silently
gives nothing. This module finds each string literal that ``member.tier`` is compared
with (``==``, ``!=``, or an entry of a list literal after ``in``) and that is no tier id
of the program.

Invariant: a comparison is only called never (``==``, ``in``) or always (``!=``) true
when it is: when every value it may compare ``member.tier`` with is a literal that no
member's tier can equal. ``""`` is what a member without a tier has, so it is always a
fair value. A list that also holds a tier id, ``""`` or anything computed at run time
(``member.tier in ["gold", "silverr"]`` is true for gold members) only has a dead
entry, reported as such. ``member`` bound by a macro (``list.exists(member, ...)``) is
not the member, and is not judged.
"""

from __future__ import annotations

import difflib
import re

from fidelite.program.comparison import Comparison, Operand, comparisons, position

NO_TIER = ""
"""What ``member.tier`` holds for a member without a tier."""


def tier_literal_problems(source: str, tier_ids: list[str]) -> list[tuple[int, str]]:
    """Each comparison of ``member.tier`` in ``source`` with a literal that is no tier id
    (of ``tier_ids``), with its offset in ``source``, in source order."""
    found = []
    for comparison in comparisons(source):
        problem = _problem(source, comparison, tier_ids)
        if problem is not None:
            found.append((comparison.start, problem))
    return found


def _problem(source: str, comparison: Comparison, tier_ids: list[str]) -> str | None:
    other = _compared_with_tier(comparison)
    if other is None:
        return None
    entries = other.elements if comparison.op == "in" else (other,)
    if entries is None:  # in a list computed at run time
        return None
    values = [_string_value(entry) for entry in entries]
    unknown = list(dict.fromkeys(v for v in values if v is not None and _is_unknown(v, tier_ids)))
    if not unknown:
        return None
    text = source[comparison.start : comparison.end]
    where = position(source, comparison)
    known = f" (known: {', '.join(tier_ids)})" if tier_ids else " (none is defined)"
    hint = _did_you_mean(unknown, tier_ids)
    if all(value is not None and _is_unknown(value, tier_ids) for value in values):
        verdict = "always true" if comparison.op == "!=" else "never true"
        what = _quoted(unknown)
        is_no = "is no tier" if len(unknown) == 1 else "are no tiers"
        return (
            f"{text} is {verdict}{where}: {what} {is_no} of this program{known};"
            f' a member without a tier has ""{hint}'
        )
    entry = "the entry" if len(unknown) == 1 else "the entries"
    is_no = "is no tier" if len(unknown) == 1 else "are no tiers"
    return f"{text}{where}: {entry} {_quoted(unknown)} {is_no} of this program{known}{hint}"


def _is_unknown(value: str, tier_ids: list[str]) -> bool:
    return value != NO_TIER and value not in tier_ids


def _compared_with_tier(comparison: Comparison) -> Operand | None:
    """The side ``member.tier`` is compared with in ``comparison``, if it reads the tier."""
    if _reads_tier(comparison.left, comparison):
        return comparison.right
    if comparison.op != "in" and _reads_tier(comparison.right, comparison):
        return comparison.left
    return None


def _reads_tier(operand: Operand, comparison: Comparison) -> bool:
    """Whether ``operand`` is the member's tier: ``member.tier``, unless a macro binds
    ``member`` there (then it is an element of the macro's list)."""
    text = _unwrapped(re.sub(r"\s+", "", operand.text))
    return text == "member.tier" and "member" not in comparison.scope


def _string_value(operand: Operand) -> str | None:
    """The value of ``operand`` if it is a plain string literal (parentheses around it
    allowed), else None: a value computed at run time may be any tier."""
    if operand.literal != "string":
        return None
    text = _unwrapped(operand.text.strip())
    if len(text) < 2 or text[0] not in "\"'" or text[-1] != text[0]:
        return None
    if "\\" in text or text[:3] in ('"""', "'''"):
        return None
    return text[1:-1]


def _unwrapped(text: str) -> str:
    """``text`` without the parentheses around the whole of it."""
    while text.startswith("(") and text.endswith(")"):
        inner = text[1:-1].strip()
        if _balanced(inner):
            text = inner
        else:
            break
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _quoted(values: list[str]) -> str:
    quoted = [f'"{value}"' for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _did_you_mean(unknown: list[str], tier_ids: list[str]) -> str:
    """``; did you mean "gold"?`` for the unknown values close to a tier id."""
    guesses = []
    for value in unknown:
        lowered = {tier.lower(): tier for tier in tier_ids}
        close = difflib.get_close_matches(value.lower(), sorted(lowered), n=1)
        if close:
            guesses.append((value, lowered[close[0]]))
    if not guesses:
        return ""
    if len(unknown) == 1:
        return f'; did you mean "{guesses[0][1]}"?'
    return "; did you mean " + ", ".join(f'"{c}" for "{v}"' for v, c in guesses) + "?"
