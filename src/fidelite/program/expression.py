"""CEL expressions in a program file, compiled once when the program loads.

A program's conditions and formulas are written in CEL (Common Expression Language).
Each one is compiled when the file is loaded, so a syntax error or a reference to an
unknown variable is reported with the file, line and column before any event is
processed; evaluating a compiled expression then costs microseconds.

Invariant: an :class:`Expression` only ever references the variables allowed where it
appears (``event`` and ``member`` in rule conditions, plus ``item`` in per-item rules).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import cel
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

RULE_VARIABLES = frozenset({"event", "member"})
ITEM_VARIABLES = frozenset({"event", "member", "item"})

# The fields each variable has (documented in docs/program.md); reading any other
# field is a load-time error rather than a rule that silently never matches.
VARIABLE_FIELDS: Mapping[str, frozenset[str]] = {
    "event": frozenset(
        {"type", "amount", "channel", "store", "coupon", "items", "attributes"}
        | {"hour", "minute", "weekday", "day", "month", "year", "date"}
    ),
    "member": frozenset(
        {"tier", "segments", "attributes", "purchases", "days_since_joined", "birthday"}
    ),
    "item": frozenset({"sku", "category", "quantity", "price"}),
}

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
    unknown = sorted(set(program.variables()) - allowed)
    if unknown:
        names = ", ".join(sorted(allowed))
        raise ExpressionError(f"unknown variable {unknown[0]!r} (available here: {names})")
    fields = _fields_read(source, allowed)
    for variable, read in sorted(fields.items()):
        unknown_fields = sorted((read or frozenset()) - VARIABLE_FIELDS[variable])
        if unknown_fields:
            known = ", ".join(sorted(VARIABLE_FIELDS[variable]))
            raise ExpressionError(
                f"unknown field {variable}.{unknown_fields[0]} (fields of {variable}: {known})"
            )
    return Expression(source=source, program=program, fields=fields)


def _describe_compile_error(message: str) -> str:
    match = _CEL_POSITION.search(message)
    if match is None:
        return f"invalid CEL expression: {message.splitlines()[0]}"
    line, column, reason = match.groups()
    # CEL reports 1-based line and column within the expression text.
    where = f"column {column}" if line == "1" else f"line {line} column {column}"
    return f"invalid CEL expression at {where}: {reason}"


def _fields_read(source: str, allowed: frozenset[str]) -> dict[str, frozenset[str] | None]:
    """Over-approximate the attributes read from each variable.

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


def _validator(allowed: frozenset[str]) -> BeforeValidator:
    def validate(value: object) -> Expression:
        if isinstance(value, Expression):
            return value
        if not isinstance(value, str) or not value.strip():
            raise ValueError("expected a CEL expression (a non-empty string)")
        try:
            return compile_expression(value, allowed)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None

    return BeforeValidator(validate)


_SERIALIZE = PlainSerializer(lambda expr: expr.source, return_type=str)
_SCHEMA = WithJsonSchema({"type": "string", "description": "CEL expression"})

RuleExpression = Annotated[Expression, _validator(RULE_VARIABLES), _SERIALIZE, _SCHEMA]
"""A CEL expression over ``event`` and ``member``."""

ItemExpression = Annotated[Expression, _validator(ITEM_VARIABLES), _SERIALIZE, _SCHEMA]
"""A CEL expression over ``event``, ``member`` and one basket line ``item``."""
