"""Type errors in CEL expressions, found when the program loads by trying each one.

The CEL binding (``common-expression-language``) compiles and evaluates but offers no
type checker, so ``event.amount * 3`` (a double times an int) compiles and then fails
on every event, which the engine can only trace as ``condition_error``: the rule
silently gives nothing. This module finds such mistakes before any event: it runs the
compiled expression against sample values of exactly the types the engine provides
(:mod:`fidelite.program.variables`), chosen so that comparisons with the expression's
own literals go both ways (amounts 0, just below, at and above each constant; each
string constant for string fields; baskets empty, with one line, with several).

What counts as a mistake, because it fails whatever the event's data:

- a ``TypeError`` from CEL: an operator or function applied to types it does not take
  (``double * int``, ``double > string``, ``!`` on a double);
- a call to a function CEL does not have for these argument types;
- an invalid regular expression;
- a result of the wrong type: a condition must give a bool, a formula a number.

What does not, because it depends on the data and the engine traces it per event as
``condition_error``: a missing key (an attribute the event may or may not carry, which
is why attribute maps are always empty here: their values have no fixed type), an
index out of range, a division by zero, an overflow, a string that does not parse.

Invariant: a problem is only reported from an evaluation on values of the engine's
types, so a correct expression is never rejected. The converse is not guaranteed: a
type error in a branch that no sample reaches (or hidden behind a missing attribute)
still shows at run time, as ``condition_error``.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fidelite.program.variables import FIELD_TYPES, ITEM_FIELDS, VARIABLE_FIELDS, cel_type_name

if TYPE_CHECKING:
    from fidelite.program.expression import Expression


class Result(StrEnum):
    """What an expression must give where it appears."""

    condition = "condition"  # a bool: the rule (or basket line) matches or not
    formula = "formula"  # a number of points (int or double)


MAX_SAMPLES = 200
"""Evaluations per expression at most (each costs ~10 us, ~60 us with a basket)."""

_CANDIDATES = 10  # values tried per field at most
_VARIANTS = 5  # distinct basket lines at most

_STRING = re.compile(r"""[rRbB]?("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')""")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']+)'")

# Values the engine can give (inclusive bounds; None: unbounded above) and the values
# tried whatever the expression's constants.
_INT_RANGES: Mapping[str, tuple[int, int | None]] = {
    "hour": (0, 23),
    "minute": (0, 59),
    "weekday": (1, 7),
    "day": (1, 31),
    "month": (1, 12),
    "year": (1, None),
    "purchases": (0, None),
    "days_since_joined": (-1, None),
    "quantity": (1, None),
}
_INT_DEFAULTS: Mapping[str, list[int]] = {"year": [2026], "days_since_joined": [-1, 0, 400]}
_FLOAT_DEFAULTS = [0.0, 1_000_000.0]
_INT64_MAX = 2**63 - 1
_STRING_DEFAULTS: Mapping[str, str] = {"type": "purchase", "date": "2026-11-23", "sku": "A"}


def type_problem(expression: Expression, result: Result) -> str | None:
    """Why ``expression`` cannot work where a ``result`` is expected, or None.

    See the module docstring for what is reported and what is left to run time.
    """
    literals = _Literals.of(expression.source)
    for values in _samples(expression.fields, literals):
        try:
            value = expression.program.execute(values)
        except TypeError as exc:
            return _type_error(str(exc), expression)
        except RuntimeError as exc:
            problem = _runtime_problem(str(exc), expression)
            if problem is not None:
                return problem
            continue
        except Exception:  # data-dependent: a missing key, an index, zero, an overflow
            continue
        problem = _result_problem(value, result)
        if problem is not None:
            return problem
    return None


def _result_problem(value: object, result: Result) -> str | None:
    if result is Result.condition and type(value) is not bool:
        return f"a condition must be true or false, but this one gives a {cel_type_name(value)}"
    if result is Result.formula and (type(value) is bool or not isinstance(value, int | float)):
        return (
            "a formula must give a number (int or double), "
            f"but this one gives a {cel_type_name(value)}"
        )
    return None


def _type_error(message: str, expression: Expression) -> str:
    reason = re.sub(r"\bfloat\b", "double", message.split(". ")[0].strip())
    if reason.startswith("Unsupported operation"):
        hint = (
            "arithmetic needs two operands of one type: write 3.0 rather than 3 next to a "
            "double, or convert with double(...) or int(...)"
        )
    else:
        hint = "no CEL operator or function takes these operand types"
    return f"type error: {reason}{_types_read(expression)}; {hint}"


def _runtime_problem(message: str, expression: Expression) -> str | None:
    undefined = _UNDEFINED.search(message)
    if undefined is not None:
        name = undefined.group(1)
        if re.search(rf"\b{re.escape(name)}\s*\(", expression.source) is None:
            return f"unknown variable {name!r} (used outside the macro that binds it?)"
        return (
            f"no CEL function {name}() takes these arguments{_types_read(expression)}"
            " (see the CEL language definition for the functions and their argument types)"
        )
    if "not a valid regex" in message:
        return f"invalid regular expression: {message.splitlines()[0]}"
    return None  # e.g. int("abc"): depends on the data


def _types_read(expression: Expression) -> str:
    """`` (event.amount is a double, ...)`` for the fixed-type fields the expression reads."""
    parts = []
    for variable, fields in sorted(expression.fields.items()):
        typed = FIELD_TYPES.get(variable, {})
        for name in sorted(fields if fields is not None else ()):
            if name in typed:
                kind = "list of strings" if typed[name] is list else cel_type_name(typed[name]())
                article = "an" if kind[0] in "aeiou" else "a"
                parts.append(f"{variable}.{name} is {article} {kind}")
    return f" ({', '.join(parts[:4])})" if parts else ""


class _Literals:
    """The string and number constants written in an expression."""

    def __init__(self, strings: list[str], numbers: list[float]) -> None:
        self.strings = strings
        self.numbers = numbers

    @classmethod
    def of(cls, source: str) -> _Literals:
        strings: list[str] = []
        for match in _STRING.finditer(source):
            text = match.group(1)[1:-1]
            if "\\" not in text and text not in strings:
                strings.append(text)
        bare = _STRING.sub(" ", source)
        numbers: list[float] = []
        for match in _NUMBER.finditer(bare):
            number = float(match.group())
            if math.isfinite(number) and number not in numbers:
                numbers.append(number)
        return cls(strings[:_CANDIDATES], numbers[:_CANDIDATES])


def _samples(
    fields: Mapping[str, frozenset[str] | None], literals: _Literals
) -> Iterator[dict[str, dict[str, Any]]]:
    """Variable values to try: every combination if few, else a fixed spread of them."""
    columns: list[tuple[str, str, list[Any]]] = []
    for variable, read in sorted(fields.items()):
        names = VARIABLE_FIELDS[variable] if read is None else read
        for name in sorted(names):
            columns.append((variable, name, _candidates(variable, name, literals)))
    if not columns:
        yield {}
        return
    sizes = [len(values) for _, _, values in columns]
    if math.prod(sizes) <= MAX_SAMPLES:
        picks: Iterator[Sequence[int]] = itertools.product(*(range(size) for size in sizes))
    else:
        picks = _spread(sizes)
    for pick in picks:
        sample: dict[str, dict[str, Any]] = {variable: {} for variable in fields}
        for (variable, name, values), index in zip(columns, pick, strict=True):
            sample[variable][name] = values[index]
        yield sample


def _spread(sizes: list[int]) -> Iterator[Sequence[int]]:
    """The diagonal (each field's i-th value together), then fixed pseudo-random picks."""
    longest = max(sizes)
    for i in range(longest):
        yield [i % size for size in sizes]
    rng = random.Random(0)  # the same samples on every load: a load gives one answer
    for _ in range(MAX_SAMPLES - longest):
        yield [rng.randrange(size) for size in sizes]


def _candidates(variable: str, name: str, literals: _Literals) -> list[Any]:
    """The values tried for one field (see the module docstring)."""
    if name == "attributes":
        return [{}]
    if variable == "event" and name == "items":
        lines = _item_variants(literals)
        baskets = [[], *[[line] for line in lines], lines]
        return _unique(baskets)
    field_type = FIELD_TYPES[variable][name]
    if field_type is list:  # member.segments
        return _unique([[], *[[text] for text in literals.strings], sorted(literals.strings)])
    return _scalar_candidates(name, field_type, literals)


def _scalar_candidates(name: str, field_type: type, literals: _Literals) -> list[Any]:
    if field_type is bool:
        return [False, True]
    if field_type is str:
        return _unique([_STRING_DEFAULTS.get(name, ""), *literals.strings])
    if field_type is int:
        low, high = _INT_RANGES.get(name, (0, None))
        values = list(_INT_DEFAULTS.get(name, [low, high if high is not None else 1_000_000]))
        for number in literals.numbers:
            values += [math.floor(number), math.floor(number) - 1, math.ceil(number) + 1]
        top = _INT64_MAX if high is None else high
        inside = [v for v in values if low <= v <= top]
        return _unique(inside)[:_CANDIDATES]
    floats = list(_FLOAT_DEFAULTS)
    for number in literals.numbers:
        floats += [number, number - 1.0, number + 1.0]
    return _unique([v for v in floats if v >= 0.0])[:_CANDIDATES]


def _item_variants(literals: _Literals) -> list[dict[str, Any]]:
    """Distinct basket lines, the i-th taking each field's i-th candidate."""
    columns = {name: _scalar_candidates(name, kind, literals) for name, kind in ITEM_FIELDS.items()}
    count = min(max(len(values) for values in columns.values()), _VARIANTS)
    return [
        {name: values[i % len(values)] for name, values in columns.items()} for i in range(count)
    ]


def _unique(values: list[Any]) -> list[Any]:
    """``values`` without repeats, first occurrence kept (1 and 1.0 stay distinct)."""
    seen: list[tuple[type, Any]] = []
    result = []
    for value in values:
        key = (type(value), value)
        if key not in seen:
            seen.append(key)
            result.append(value)
    return result
