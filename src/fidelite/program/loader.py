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
from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
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
        aliases = _alias_places(text)
        problems = [
            _problem(name, document, lines, aliases, loc, message) for loc, message in found
        ]
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
    and field names only, a key ``1`` or ``1.5`` too): two reports of one field compare
    equal."""
    return tuple(part for part in loc if isinstance(part, int) or _KEY.fullmatch(str(part)))


_KEY = re.compile(r"[\w.]+")  # not a validator's name: function-after[...], is-instance[...]


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


# Keys that YAML 1.1 reads as a boolean (YAML 1.2, the default, reads them as text);
# true and false are booleans in both, and no program key.
_YAML11_BOOLS = frozenset({"on", "off", "yes", "no", "y", "n"})


def _problem(
    name: str,
    document: CommentedMap,
    lines: list[str],
    aliases: dict[Location, tuple[int, int]],
    loc: Location,
    message: str,
) -> Problem:
    line, column, path, node, key = _locate(document, lines, aliases, loc)
    written = path.rsplit(".", 1)[-1]
    if (
        message == "Extra inputs are not permitted"
        and isinstance(key, bool)
        and (written.lower() in _YAML11_BOOLS)
    ):
        message += (
            f"; YAML 1.1 (a %YAML 1.1 line) reads the key {written} as a boolean: quote it"
            f" ('{written}':) or remove the %YAML 1.1 line"
        )
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


def _locate(
    document: CommentedMap,
    lines: list[str],
    aliases: dict[Location, tuple[int, int]],
    loc: Location,
) -> tuple[int, int, str, Any, Any]:
    """Follow ``loc`` into the YAML tree; the deepest node found gives line and column.

    Elements of ``loc`` that are not keys or indexes (pydantic adds validator names for
    annotated types) are skipped; a missing key points at its parent mapping. A node
    reached through an alias (``- *base_rule``) is placed at the alias (``aliases``,
    from :func:`_alias_places`), whatever is wrong inside it: the positions inside it
    are those of the anchored node, elsewhere in the file. The node is then not returned
    (its text is not at the alias). A key YAML reads as no text (``1:``, ``null:``,
    ``on:`` under ``%YAML 1.1``) is named as written; a key merged in (``<<: *base``)
    is placed at the merge. Returned: the line, column, path,
    node and the last key followed (None if the last part was an index or missing).
    """
    node: Any = document
    line, column = 1, 1
    path = ""
    followed: list[str | int] = []
    aliased = False
    last: Any = None
    for part in loc:
        key = _key(node, part) if isinstance(node, CommentedMap) else _MISSING
        last = None if key is _MISSING else key
        if key is not _MISSING:
            if key not in node.lc.data:  # a key merged in (<<: *base): placed at the merge
                merged = aliases.get((*followed, "<<")) or aliases.get((*followed, "<<", 0))
                if merged is not None and not aliased:
                    line, column = merged
                aliased = True
            if not aliased:
                line, column = node.lc.value(key)
                line, column = line + 1, column + 1
            name = key if isinstance(key, str) else _written_key(node, key, lines)
            node = node[key]
            path = f"{path}.{name}" if path else name
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            if not aliased:
                line, column = node.lc.item(part)
                line, column = line + 1, column + 1
            node = node[part]
            path = f"{path}[{part}]"
        elif isinstance(node, CommentedMap) and isinstance(part, str) and part.isidentifier():
            path = f"{path}.{part}" if path else part  # a missing field: keep the parent's line
            node = None
            continue
        else:
            continue
        followed.append(part)
        place = aliases.get(tuple(followed))
        if place is not None and not aliased:
            line, column = place
            aliased = True
    return line, column, path, None if aliased else node, last


_MISSING = object()


def _key(node: CommentedMap, part: object) -> Any:
    """The key of ``node`` that :func:`_plain` made ``part`` (``1`` for ``"1"``, None for
    ``"None"``), or :data:`_MISSING`."""
    if not isinstance(part, str):
        return _MISSING
    if part in node:
        return part
    return next((k for k in node if not isinstance(k, str) and str(k) == part), _MISSING)


def _written_key(node: CommentedMap, key: object, lines: list[str]) -> str:
    """A key that YAML reads as a number, null or a bool, as the file writes it: the
    text from its place up to its ``:`` (``null``, ``~``, ``on``), else as YAML writes
    that value."""
    line, column = node.lc.key(key) if key in node.lc.data else (len(lines), 0)
    text = lines[line][column:] if line < len(lines) else ""
    written = text.split(":", 1)[0].strip() if ":" in text else ""
    if written:
        return written
    if key is None:
        return "null"
    return str(key).lower() if isinstance(key, bool) else str(key)


def _alias_places(text: str) -> dict[Location, tuple[int, int]]:
    """The place (1-based line and column) of each alias (``*name``) in the YAML
    ``text``, by the path of the node it stands for (``("rules", 1)``). Read from the
    parser's events: the composed tree holds the anchored node itself at every place it
    is used, with the anchor's position. A key is named by its text, as :func:`_plain`
    names it but for a key YAML reads as no text (``null``), rare enough under an alias."""
    places: dict[Location, tuple[int, int]] = {}
    open_nodes: list[_Open] = []  # the mappings and lists open around the event
    try:
        events = list(_yaml().parse(text))
    except MarkedYAMLError:
        return places
    for event in events:
        if isinstance(event, MappingEndEvent | SequenceEndEvent):
            open_nodes.pop()
            if open_nodes:
                open_nodes[-1].advance()
            continue
        if not isinstance(event, ScalarEvent | AliasEvent | MappingStartEvent | SequenceStartEvent):
            continue
        top = open_nodes[-1] if open_nodes else None
        if top is not None and top.mapping and top.key is None:  # the event is a key
            if not isinstance(event, ScalarEvent):
                return places  # a mapping, list or alias as a key: no path names it
            top.key = str(event.value)
            continue
        path = top.child() if top is not None else ()
        if isinstance(event, AliasEvent):
            places[path] = (event.start_mark.line + 1, event.start_mark.column + 1)
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            open_nodes.append(_Open(path, isinstance(event, MappingStartEvent)))
        elif top is not None:
            top.advance()
    return places


@dataclass
class _Open:
    """A mapping or list being read by :func:`_alias_places`: its path, and the key
    (None while the next key is awaited) or index of the node being read in it."""

    path: Location
    mapping: bool
    key: str | None = None
    index: int = 0

    def child(self) -> Location:
        return (*self.path, self.key if self.mapping and self.key is not None else self.index)

    def advance(self) -> None:
        self.key = None
        self.index += 1
