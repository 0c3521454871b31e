"""CEL expressions in a program file, compiled once when the program loads.

A program's conditions and formulas are written in CEL (Common Expression Language).
Each one is compiled when the file is loaded, so a syntax error, a reference to an
unknown variable or field, or a type error (``event.amount * 3``, a condition that
does not give a bool; see :mod:`fidelite.program.probe`) is reported with the file,
line and column before any event is processed; evaluating a compiled expression then
costs microseconds. The fields of a basket line are checked wherever a line is read:
``item`` in per-item conditions, a macro's name over ``event.items``
(``event.items.exists(i, i.category == "beans")``) and an index into it
(``event.items[0].price``), so a misspelt ``i.categry`` is refused at load rather than
failing on every event.

Invariant: an :class:`Expression` only ever references the variables allowed where it
appears (``event`` and ``member`` in rule conditions and formulas, plus ``item`` in
per-item conditions), and only their fields listed in
:data:`fidelite.program.variables.VARIABLE_FIELDS`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import cel
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from fidelite.program.comparison import LineRead, field_reads
from fidelite.program.probe import Result, type_problem
from fidelite.program.variables import ITEM_FIELDS, VARIABLE_FIELDS

RULE_VARIABLES = frozenset({"event", "member"})
ITEM_VARIABLES = frozenset({"event", "member", "item"})

# Macros that bind a name for each element: ``event.items.exists(i, i.price > 10.0)``.
_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")

_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*?)(?:\n|$)")


class ExpressionError(ValueError):
    """A CEL expression that does not compile or references an unknown variable."""


@dataclass(frozen=True, eq=False)
class Expression:
    """A compiled CEL expression with the fields it reads.

    ``fields`` maps each variable to the attribute names the expression reads from it
    (``event.amount`` -> ``{"event": {"amount"}}``), or to ``None`` when the variable is
    used in another way (indexing, passed whole); the engine uses it to hand CEL only
    the data an expression can see, because converting values into CEL dominates cost.
    """

    source: str
    program: cel.Program = field(repr=False)
    fields: Mapping[str, frozenset[str] | None]

    def evaluate(self, context: cel.Context) -> Any:
        """Evaluate against a prepared context; raises on a CEL runtime error."""
        return self.program.execute(context)


def compile_expression(source: str, allowed: frozenset[str]) -> Expression:
    """Compile ``source`` and check the variables it uses against ``allowed``.

    Raises :class:`ExpressionError` with the column of the problem in the expression.
    """
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise ExpressionError(_describe_compile_error(str(exc))) from None
    unknown = sorted(set(program.variables()) - allowed - _bound_names(source))
    if unknown:
        names = ", ".join(sorted(allowed))
        raise ExpressionError(f"unknown variable {unknown[0]!r} (available here: {names})")
    reads = field_reads(source)
    lines: tuple[LineRead, ...] = ()
    if reads is None:  # syntax the parser does not follow: the regex reading, lines unchecked
        fields = _fields_read(source, allowed)
    else:
        fields = {name: read for name, read in reads.variables.items() if name in allowed}
        lines = reads.lines
    for variable, read in sorted(fields.items()):
        unknown_fields = sorted((read or frozenset()) - VARIABLE_FIELDS[variable])
        if unknown_fields:
            known = VARIABLE_FIELDS[variable]
            raise ExpressionError(
                f"unknown field {variable}.{unknown_fields[0]} (fields of {variable}: "
                f"{', '.join(sorted(known))}){_did_you_mean(unknown_fields[0], known)}"
            )
    for line in lines:
        if line.field not in ITEM_FIELDS:
            raise ExpressionError(
                f"unknown field {line.line}.{line.field}: {line.line} is a line of event.items"
                f" (fields of a line: {', '.join(sorted(ITEM_FIELDS))})"
                f"{_did_you_mean(line.field, ITEM_FIELDS)}"
            )
    return Expression(source=source, program=program, fields=fields)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _bound_names(source: str) -> set[str]:
    """Names bound by comprehension macros: variables of the macro, not of the program."""
    return set(_BINDING.findall(source))


def _describe_compile_error(message: str) -> str:
    match = _CEL_POSITION.search(message)
    if match is None:
        return f"invalid CEL expression: {message.splitlines()[0]}"
    line, column, reason = match.groups()
    # CEL reports 1-based line and column within the expression text.
    where = f"column {column}" if line == "1" else f"line {line} column {column}"
    return f"invalid CEL expression at {where}: {reason}"


def _fields_read(source: str, allowed: frozenset[str]) -> dict[str, frozenset[str] | None]:
    """Over-approximate the attributes read from each variable, for an expression whose
    syntax :func:`fidelite.program.comparison.field_reads` does not follow.

    Any use of a variable that is not ``name.attribute`` (e.g. ``event["x"]``, or the
    word inside a string literal) makes the whole variable needed: safe, never short.
    """
    result: dict[str, frozenset[str] | None] = {}
    for name in allowed:
        uses = list(re.finditer(rf"\b{name}\b", source))
        if not uses:
            continue
        attributes = re.findall(rf"\b{name}\s*\.\s*([A-Za-z_]\w*)", source)
        result[name] = frozenset(attributes) if len(attributes) == len(uses) else None
    return result


def _validator(allowed: frozenset[str], result: Result) -> BeforeValidator:
    def validate(value: object) -> Expression:
        if isinstance(value, Expression):
            return value
        if not isinstance(value, str) or not value.strip():
            raise ValueError("expected a CEL expression (a non-empty string)")
        try:
            expression = compile_expression(value, allowed)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        problem = type_problem(expression, result)
        if problem is not None:
            raise ValueError(problem)
        return expression

    return BeforeValidator(validate)


_SERIALIZE = PlainSerializer(lambda expr: expr.source, return_type=str)


def _schema(description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "description": description})


Condition = Annotated[
    Expression,
    _validator(RULE_VARIABLES, Result.condition),
    _SERIALIZE,
    _schema("CEL condition over event and member: true or false"),
]
"""A rule's ``when``: a CEL expression over ``event`` and ``member`` giving a bool."""

Formula = Annotated[
    Expression,
    _validator(RULE_VARIABLES, Result.formula),
    _SERIALIZE,
    _schema("CEL expression over event and member: a number of points"),
]
"""A rule's ``formula``: a CEL expression over ``event`` and ``member`` giving a number."""

ItemCondition = Annotated[
    Expression,
    _validator(ITEM_VARIABLES, Result.condition),
    _SERIALIZE,
    _schema("CEL condition over item, event and member: true or false"),
]
"""A ``per_item.when``: a CEL expression over one basket line ``item`` (and ``event``,
``member``) giving a bool."""
