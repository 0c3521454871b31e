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
  (``double * int``, ``double > string``, ``!`` on a double); an ordering between two
  kinds of value is named with its fix (``event.weekday <= "5"``: write
  ``event.weekday <= 5``, :func:`ordering_problem`), as CEL's message names neither side;
- a call to a function CEL does not have for these argument types;
- an invalid regular expression;
- a result of the wrong type: a condition must give a bool, a formula a number;
- ``==``, ``!=`` or ``in`` between values that can never be equal (CEL gives false, no
  error: ``event.weekday == "6"`` never matches, ``event.store != 12`` always does):
  each side is evaluated alone on the samples (:func:`comparison_problem`).

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
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import cel

from fidelite.program.comparison import (
    EQUALITIES,
    ORDERINGS,
    Comparison,
    Operand,
    comparisons,
    position,
)
from fidelite.program.variables import (
    CEL_TYPE_NAMES,
    FIELD_TYPES,
    ITEM_FIELDS,
    VARIABLE_FIELDS,
    cel_type_name,
)

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

UNKNOWN_DAYS = -1_000_000
"""``fidelite.engine.context.UNKNOWN_DAYS`` (the engine imports the program, so not
imported from there; a test keeps the two equal)."""

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
    "days_since_joined": (UNKNOWN_DAYS, None),  # negative before joining; unknown: the floor
    "quantity": (1, None),
}
_INT_DEFAULTS: Mapping[str, list[int]] = {
    "year": [2026],
    "days_since_joined": [UNKNOWN_DAYS, -1, 0, 400],
}
_FLOAT_DEFAULTS = [0.0, 1_000_000.0]
_INT64_MAX = 2**63 - 1
_STRING_DEFAULTS: Mapping[str, str] = {"type": "purchase", "date": "2026-11-23", "sku": "A"}
_SEGMENT = "vip"

_COMPARED = re.compile(r"==|!=|\bin\b")
# The kinds of value comparisons judge: values of two kinds are never equal; ints and
# doubles (and uints, which reach Python as ints) compare by value, so they are one.
_KINDS: Mapping[type, str] = {
    bool: "bool",
    int: "number",
    float: "number",
    str: "string",
    bytes: "bytes",
    list: "list",
    dict: "map",
    datetime: "timestamp",
    timedelta: "duration",
}


def type_problem(expression: Expression, result: Result) -> str | None:
    """Why ``expression`` cannot work where a ``result`` is expected, or None.

    See the module docstring for what is reported and what is left to run time.
    """
    literals = _Literals.of(expression.source)
    for values in _samples(expression.fields, literals):
        try:
            value = expression.program.execute(values)
        except TypeError as exc:
            return ordering_problem(expression, literals) or _type_error(str(exc), expression)
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
    return comparison_problem(expression, literals)


def type_problems(expression: Expression, result: Result) -> list[tuple[int, str]]:
    """Every problem of ``expression`` where a ``result`` is expected, each with the
    offset in the source of the comparison it is about (0 if it is about the whole
    expression), in source order; the first is :func:`type_problem`'s.

    :func:`type_problem` stops at the first problem (the schema reports one per field);
    a file check lists them all, so that one pass fixes the expression: the failure of
    the evaluation, if any, then each ``==``, ``!=`` or ``in`` whose sides can never be
    equal.
    """
    first = type_problem(expression, result)
    if first is None:
        return []
    literals = _Literals.of(expression.source)
    found = [
        (comparison.start, message)
        for comparison, message in _mismatches(expression, literals, EQUALITIES)
    ]
    if all(message != first for _, message in found):
        ordering = next(_mismatches(expression, literals, ORDERINGS), None)
        start = ordering[0].start if ordering is not None and ordering[1] == first else 0
        found.insert(0, (start, first))
    return sorted(found, key=lambda problem: problem[0])


def comparison_problem(expression: Expression, literals: _Literals | None = None) -> str | None:
    """A ``==``, ``!=`` or ``in`` whose two sides can never be equal, or None.

    CEL gives false (no error) for ``event.weekday == "6"``, so the rule silently never
    (or, with ``!=``, always) applies. Each side of each comparison
    (:func:`fidelite.program.comparison.comparisons`) is evaluated alone on the sample
    values; a problem is reported when every value one side gave has a type that none of
    the other's has (ints and doubles compare by value: one kind). A side that fails on
    every sample (an attribute, a name bound by a macro over an untyped list), or that
    gives null or a type this module does not name, is not judged.
    """
    if _COMPARED.search(expression.source) is None:
        return None
    literals = literals if literals is not None else _Literals.of(expression.source)
    return _first_mismatch(expression, literals, EQUALITIES)


def ordering_problem(expression: Expression, literals: _Literals) -> str | None:
    """A ``<``, ``<=``, ``>`` or ``>=`` between values of two kinds, or None.

    CEL refuses such an ordering (``no such overload``) on every event, so the rule
    could never apply; its message names neither side, so the probe, on that error,
    looks for the ordering at fault to name it and its fix (``event.weekday <= 5``).
    """
    return _first_mismatch(expression, literals, ORDERINGS)


def _first_mismatch(
    expression: Expression, literals: _Literals, relations: frozenset[str]
) -> str | None:
    first = next(_mismatches(expression, literals, relations), None)
    return None if first is None else first[1]


def _mismatches(
    expression: Expression, literals: _Literals, relations: frozenset[str]
) -> Iterator[tuple[Comparison, str]]:
    """Each comparison by one of ``relations`` whose sides are of kinds that never
    compare, with its message, in source order."""
    for comparison in comparisons(expression.source, relations):
        left = _operand_types(comparison, comparison.left, expression, literals, members=False)
        members = comparison.op == "in"
        right = _operand_types(comparison, comparison.right, expression, literals, members)
        if left is None or right is None or {_KINDS[t] for t in left} & {_KINDS[t] for t in right}:
            continue
        yield comparison, _mismatch(expression.source, comparison, left, right)


def _operand_types(
    comparison: Comparison,
    operand: Operand,
    expression: Expression,
    literals: _Literals,
    members: bool,
) -> frozenset[type] | None:
    """The types of the values ``operand`` gives on the samples (of its elements, or of
    its keys for a map, if ``members``); None if it gives none this module judges."""
    try:
        program = cel.compile(operand.text)
    except ValueError:
        return None
    fields: dict[str, frozenset[str] | None] = {}
    bound: dict[str, list[Any]] = {}
    for name in program.variables():
        if name in comparison.scope:
            values = _bound_values(comparison.scope[name], literals)
            if values is None:
                return None
            bound[name] = values
        elif name in expression.fields:
            fields[name] = _fields_in(operand.text, name, expression.fields[name])
        # else: a name the operand's own macros bind
    found: set[type] = set()
    for sample in itertools.islice(_with_bound(fields, bound, literals), MAX_SAMPLES):
        try:
            value = program.execute(sample)
        except Exception:  # data-dependent (a missing attribute, an empty basket): skip
            continue
        if members and not isinstance(value, list | dict):
            return None
        for item in list(value) if members else [value]:
            if type(item) not in _KINDS:
                return None
            found.add(type(item))
    return frozenset(found) or None


def _bound_values(over: str, literals: _Literals) -> list[Any] | None:
    """The values a macro's name takes ranging ``over`` a list, if its type is known."""
    if over == "event.items":
        return _item_variants(literals)
    if over == "member.segments":
        return _unique([_SEGMENT, *literals.strings])
    return None


def _fields_in(text: str, variable: str, read: frozenset[str] | None) -> frozenset[str] | None:
    """The fields of ``variable`` that ``text`` (a part of the expression) reads."""
    if read is None:
        return None
    return frozenset(
        name for name in read if re.search(rf"\b{variable}\s*\.\s*{name}\b", text) is not None
    )


def _with_bound(
    fields: Mapping[str, frozenset[str] | None],
    bound: Mapping[str, list[Any]],
    literals: _Literals,
) -> Iterator[dict[str, Any]]:
    for sample in _samples(fields, literals):
        for values in itertools.product(*bound.values()):
            yield {**sample, **dict(zip(bound, values, strict=True))}


def _mismatch(
    source: str, comparison: Comparison, left: frozenset[type], right: frozenset[type]
) -> str:
    verdict = {"!=": "always true", "==": "never true", "in": "never true"}.get(
        comparison.op, "an error on every event"
    )
    text = source[comparison.start : comparison.end]
    where = position(source, comparison)
    held = f"{comparison.right.text} holds {_plural(right)}"
    if comparison.right.elements is not None:
        held = f"the list holds {_plural(right)}"
    sides = f"{comparison.left.text} is {_article(left)} and " + (
        held if comparison.op == "in" else f"{comparison.right.text} {_article(right)}"
    )
    return f"{text} is {verdict}{where}: {sides}; {_hint(comparison, left, right)}"


def _hint(comparison: Comparison, left: frozenset[type], right: frozenset[type]) -> str:
    op, left_side, right_side = comparison.op, comparison.left, comparison.right
    (left_type,) = left if len(left) == 1 else (None,)
    (right_type,) = right if len(right) == 1 else (None,)
    if op == "in" and right_side.elements is not None and left_type is not None:
        converted = [
            _converted(element, left_type, left_side.text) for element in right_side.elements
        ]
        if all(converted):
            return f"write {left_side.text} in [{', '.join(c for c in converted if c)}]"
    elif op == "in" and right_type is not None and left_side.literal is not None:
        literal = _converted(left_side, right_type, right_side.text)
        if literal:
            return f"write {literal} in {right_side.text}"
    elif op != "in":
        written = None
        if left_type is not None and right_side.literal is not None:
            literal = _converted(right_side, left_type, left_side.text)
            written = literal and f"{left_side.text} {op} {literal}"
        elif right_type is not None and left_side.literal is not None:
            literal = _converted(left_side, right_type, right_side.text)
            written = literal and f"{literal} {op} {right_side.text}"
        if written:
            return f"write {written}"
        if right == {list} or left == {list}:  # a list equal to a string: a membership test
            element, members = (
                (left_side, right_side) if right == {list} else (right_side, left_side)
            )
            test = f"{element.text} in {members.text}"
            return f"write {test}" if op == "==" else f"write !({test})"
    if _is_date(left_side.text) or _is_date(right_side.text):
        return (
            f'{_DATE} is written "YYYY-MM-DD": compare it with a date so written,'
            f' e.g. {_DATE} >= "2026-11-01"'
        )
    if {_KINDS[t] for t in left | right} <= {"string", "number"}:
        return "compare values of one type: convert one side with string(), int() or double()"
    return "compare values of one type"


_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")


_DATE = "event.date"
"""The event's local date, a string written ``"YYYY-MM-DD"``: compared with a string
literal, as strings (``"2026-11-22" >= "20261101"`` is false)."""


def _is_date(text: str) -> bool:
    return re.sub(r"\s", "", text) == _DATE


def _converted(operand: Operand, target: type, other: str = "") -> str | None:
    """The literal ``operand`` rewritten as a ``target`` literal, if it is one; ``other``
    is the text of what it is compared with (a number compared with ``event.date`` is
    rewritten as a date, 20261101 as ``"2026-11-01"``, or not at all)."""
    text = operand.text
    if operand.literal == "number" and target is str and _is_date(other):
        return _as_date(text)
    if operand.literal == "string" and len(text) >= 2 and text[0] == text[-1] in "\"'":
        content = text[1:-1]
        if target is int and _DECIMAL.fullmatch(content) and "." not in content:
            return str(int(content))
        if target is float and _DECIMAL.fullmatch(content):
            return repr(float(content))
        if target is bool and content in ("true", "false"):
            return content
    if operand.literal == "number" and target is str and _DECIMAL.fullmatch(text):
        return f'"{text}"'
    return None


def _as_date(text: str) -> str | None:
    """A number written as a date (``20261101``) as ``event.date`` writes it."""
    if re.fullmatch(r"\d{8}", text) is None:
        return None
    try:
        day = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    return f'"{day.isoformat()}"'


def _article(types: frozenset[type]) -> str:
    name = _type_names(types)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _plural(types: frozenset[type]) -> str:
    return " or ".join(f"{name}s" for name in _type_names(types).split(" or "))


def _type_names(types: frozenset[type]) -> str:
    if types == {int, float}:
        return "number"
    return " or ".join(sorted(CEL_TYPE_NAMES.get(t, t.__name__) for t in types))


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
        segments = [[], [_SEGMENT], *[[text] for text in literals.strings]]
        return _unique([*segments, sorted(literals.strings)])
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
