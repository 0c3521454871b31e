"""Load a program file: YAML -> validated :class:`ProgramDefinition`.

Every problem is reported with the file, the line and column in that file and the
field path (``rules[2].when``), all at once and in file order, so a business can fix a
file in one pass: schema errors from pydantic, and the model-level and cross-section
checks of :mod:`fidelite.program.consistency`, which run on the document as written
even when other parts of it fail validation.
YAML timestamps and floats are read as text so that dates keep their offsets and money
keeps its exact decimal digits (pydantic then parses them into aware datetimes and
``Decimal``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from fidelite.program.consistency import document_problems, expression_problems, is_expression
from fidelite.program.definition import Location, ProgramDefinition
from fidelite.program.model import FieldError, as_decimal
from fidelite.textfile import ADVICE


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a program file, with where it is (1-based line and column)."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ProgramError(ValueError):
    """A program file that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_program(path: str | Path) -> ProgramDefinition:
    """Read and validate the program file at ``path`` (raises :class:`ProgramError`)."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ProgramError([Problem(str(file), 1, 1, "", f"cannot read: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column, message = not_utf8(data, exc)
        raise ProgramError([Problem(str(file), line, column, "", message)]) from None
    return parse_program(text, name=str(file))


def not_utf8(data: bytes, exc: UnicodeDecodeError) -> tuple[int, int, str]:
    """The line and column (1-based, in characters) of the first byte of ``data`` that is
    not UTF-8, and what to do, in the words of :mod:`fidelite.textfile`: a file saved in
    Latin-1 or Windows-1252 holds ``café`` as the byte 0xe9."""
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    column = len(data[line_start : exc.start].decode("utf-8")) + 1
    return line, column, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); {ADVICE}"


def parse_program(text: str, *, name: str = "<program>") -> ProgramDefinition:
    """Validate program ``text``; ``name`` is the file name used in error messages."""
    try:
        document = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ProgramError(
            [Problem(name, line, column, "", f"invalid YAML: {exc.problem}")]
        ) from None
    except TypeError:  # ruamel cannot hash a mapping or list used as a key: {{a: 1}: 2}
        message = "invalid YAML: a mapping or a list used as a key"
        raise ProgramError([Problem(name, 1, 1, "", message)]) from None
    if not isinstance(document, CommentedMap):
        raise ProgramError([Problem(name, 1, 1, "", "a program file is a YAML mapping")])
    plain = _plain(document)
    program: ProgramDefinition | None = None
    found: list[tuple[Location, str]] = []
    try:
        program = ProgramDefinition.model_validate(plain)
    except ValidationError as exc:
        found = [(_error_location(err), _message(err)) for err in exc.errors()]
    found = _new_problems(found, document_problems(plain), plain)
    if found or program is None:
        lines = text.splitlines()
        problems = [_problem(name, document, lines, loc, message) for loc, message in found]
        raise ProgramError(sorted(problems, key=lambda p: (p.line, p.column)))
    return program


def _error_location(error: Any) -> Location:
    """Pydantic's location, extended to the field a :class:`FieldError` names."""
    loc: Location = tuple(error["loc"])
    cause = error.get("ctx", {}).get("error")
    return loc + cause.loc if isinstance(cause, FieldError) else loc


def _new_problems(
    reported: list[tuple[Location, str]],
    checks: list[tuple[Location, str]],
    document: dict[str, Any],
) -> list[tuple[Location, str]]:
    """The schema problems with the consistency problems at fields nothing was reported
    at yet.

    A field with a schema error keeps that error alone (its value did not even parse,
    or a model validator already raised this very problem), but for a CEL expression:
    the schema stops at its first problem, so every problem of the expression replaces
    it, in the order of its source (:func:`fidelite.program.consistency.expression_problems`:
    ``event.weekday == "6" || member.tier == "Gold"`` has two). An expression may have
    several consistency problems too (two tier literals that are no tier).
    """
    merged: list[tuple[Location, str]] = []
    for loc, message in reported:
        every = expression_problems(document, _path(loc)) or []
        merged += [(loc, message)] if message not in every else [(loc, m) for m in every]
    taken = {_path(loc) for loc, _ in reported}
    seen = {(_path(loc), message) for loc, message in merged}
    for loc, message in checks:
        path = _path(loc)
        several = is_expression(path) and path not in taken
        if (path not in {p for p, _ in seen} or several) and (path, message) not in seen:
            seen.add((path, message))
            merged.append((loc, message))
    return merged


def _path(loc: Location) -> Location:
    """``loc`` without the names pydantic adds for annotated validators (keys, indexes
    and field names only): two reports of one field compare equal."""
    return tuple(part for part in loc if isinstance(part, int) or str(part).isidentifier())


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    constructors = yaml.constructor.yaml_constructors
    as_text = constructors["tag:yaml.org,2002:str"]
    constructors["tag:yaml.org,2002:timestamp"] = as_text
    constructors["tag:yaml.org,2002:float"] = as_text
    return yaml


def _plain(node: Any) -> Any:
    """Plain dicts/lists, so validation never depends on ruamel's types."""
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    return node


def _message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "int_parsing":  # YAML floats are read as text (see _yaml)
        number = as_decimal(error.get("input"))
        if number is not None and number != number.to_integral_value():
            return "Input should be a valid integer, got a number with a fractional part"
        if number is not None:  # 1e3
            return f"Input should be a valid integer, got {error['input']}: write {int(number)}"
    return message.removeprefix("Value error, ")


def _problem(
    name: str, document: CommentedMap, lines: list[str], loc: Location, message: str
) -> Problem:
    line, column, path, node = _locate(document, loc)
    if isinstance(node, FoldedScalarString | LiteralScalarString):
        inside = _in_block(lines, line, str(node), message)
        if inside is not None:
            line, column, message = inside
    return Problem(name, line, column, path, message)


# Where in an expression a problem is: `` (at column 26)``, `` (at line 2 column 4)``
# (fidelite.program.comparison.position) or `` at column 38`` (a CEL syntax error).
_IN_EXPRESSION = re.compile(
    r"(?P<around> \(at (?:line (?P<l1>\d+) )?column (?P<c1>\d+)\))"
    r"|(?<=^invalid CEL expression)(?P<at> at (?:line (?P<l2>\d+) )?column (?P<c2>\d+))"
)


def _in_block(
    lines: list[str], indicator: int, value: str, message: str
) -> tuple[int, int, str] | None:
    """The file line and column of a problem ``message`` places inside an expression
    written as a block scalar (``>-`` or ``|``) whose indicator is on line
    ``indicator``, and the message without that place; None if it names no place.

    Folding only changes line breaks into spaces (or drops them), so the n-th character
    other than white space of the expression is the n-th of the block's lines.
    """
    match = _IN_EXPRESSION.search(message)
    if match is not None:
        line = int(match["l1"] or match["l2"] or 1)
        column = int(match["c1"] or match["c2"])
        starts = [0] + [i + 1 for i, char in enumerate(value) if char == "\n"]
        if line > len(starts):
            return None
        offset = starts[line - 1] + column - 1
        shown = message[: match.start()] + message[match.end() :]
    else:
        found = _named_place(value, message)
        if found is None:
            return None
        offset, shown = found, message
    # The block: the lines after the indicator indented at least as its first line.
    block: list[tuple[int, int, str]] = []  # (file line, column of the text, text)
    indent = None
    for number in range(indicator + 1, len(lines) + 1):
        raw = lines[number - 1]
        if not raw.strip():
            continue
        width = len(raw) - len(raw.lstrip(" "))
        if indent is None:
            indent = width
        if width < indent:
            break
        block.append((number, indent + 1, raw[indent:]))
    places = [
        (number, start + i) for number, start, text in block for i, c in enumerate(text)
        if not c.isspace()
    ]  # fmt: skip
    if [c for c in value if not c.isspace()] != [
        c for _, _, text in block for c in text if not c.isspace()
    ]:
        return None  # not the text read: leave the place in the expression
    before = sum(1 for c in value[:offset] if not c.isspace())
    if before < len(places):
        file_line, file_column = places[before]
    elif places:  # past the end (a syntax error at the end): just after the last character
        file_line, file_column = places[-1][0], places[-1][1] + 1
    else:
        return None
    return file_line, file_column, shown


# What a problem names that can be found in the expression: an unknown variable, an
# unknown field (``event.chanel``, ``i.categry``), a function given the wrong
# arguments, or the operator of an operation on two types (``double * int``).
_NAMED = re.compile(
    r"^unknown variable '(?P<variable>\w+)'"
    r"|^unknown field (?P<owner>\w+)\.(?P<field>\w+)"
    r"|^no CEL function (?P<function>\w+)\(\)"
    r"|^type error: Unsupported operation: \w+ (?P<operator>[-+*/%]) \w+"
)
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')


def _named_place(value: str, message: str) -> int | None:
    """The offset in expression ``value`` of what ``message`` names (see :data:`_NAMED`),
    outside string literals; None when the message names nothing to look for, or the
    expression holds it nowhere or (an operator) more than once, so the place is not
    known: the problem then stays at the expression's first line."""
    named = _NAMED.search(message)
    if named is None:
        return None
    code = _STRING.sub(lambda literal: " " * len(literal.group()), value)
    if named["variable"]:
        pattern = rf"(?<![\w.]){named['variable']}\b"
    elif named["owner"]:
        pattern = rf"(?<![\w.]){named['owner']}\s*\.\s*{named['field']}\b"
    elif named["function"]:
        pattern = rf"(?<![\w]){named['function']}\s*\("
    else:
        pattern = re.escape(named["operator"])
    places = [found.start() for found in re.finditer(pattern, code)]
    # An operator, or a name used outside the macro binding it, may be at any of its places.
    unsure = named["operator"] or message.endswith("(used outside the macro that binds it?)")
    if not places or (unsure and len(places) > 1):
        return None
    return places[0]


def _locate(document: CommentedMap, loc: Location) -> tuple[int, int, str, Any]:
    """Follow ``loc`` into the YAML tree; the deepest node found gives line and column.

    Elements of ``loc`` that are not keys or indexes (pydantic adds validator names for
    annotated types) are skipped; a missing key points at its parent mapping.
    """
    node: Any = document
    line, column = 1, 1
    path = ""
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line, column = node.lc.value(part)
            line, column = line + 1, column + 1
            node = node[part]
            path = f"{path}.{part}" if path else part
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, column = node.lc.item(part)
            line, column = line + 1, column + 1
            node = node[part]
            path = f"{path}[{part}]"
        elif isinstance(node, CommentedMap) and isinstance(part, str) and part.isidentifier():
            path = f"{path}.{part}" if path else part  # a missing field: keep the parent's line
            node = None
    return line, column, path, node
