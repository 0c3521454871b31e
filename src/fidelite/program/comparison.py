"""The comparisons written in a CEL expression, with their operands.

CEL compares values of different types without an error: ``event.weekday == "6"`` is
false for every event (an int is never equal to a string), ``event.store != 12`` true
for every event. The load-time probe (:mod:`fidelite.program.probe`) only sees
errors, so it needs the operands of each comparison to try them one by one; the CEL
binding exposes no syntax tree, so this module parses the expression far enough to
find them.

:func:`comparisons` follows CEL's grammar and precedence (``?:``, ``||``, ``&&``, the
relations, ``+ -``, ``* / %``, unary ``! -``, member access, calls, indexes, list and
map literals) and records each ``==``, ``!=`` and ``in`` with the source text of both
operands, the elements of a list literal on the right of ``in``, and the names that
enclosing macros bind (``event.items.exists(line, line.sku == 5)``: ``line`` ranges over
``event.items``). Anything it does not know (message literals, optional syntax) makes it
give no comparison at all: the expression compiled, so a gap here can only hide a
mistake, never report a correct expression.

The orderings (``<``, ``<=``, ``>``, ``>=``) are found on request: across types CEL
refuses them with ``no such overload``, an error the probe sees but whose message names
neither side; the probe looks for the ordering at fault to say which and how to fix it.

The same parse gives the fields an expression reads (:func:`field_reads`): those of each
variable (``event.amount``), and those of each basket line, reached through a macro's
name over ``event.items`` (or over ``event.items.filter(...)``) or an index into it
(``event.items[0].category``). A line is a map, so reading a misspelt field of it is
no type error but a missing key on every event, which the probe cannot tell from an
attribute the event may lack; the load-time check (:mod:`fidelite.program.expression`)
judges these reads by name instead. A macro's name hides a variable of the same name
inside the macro (``event.items.exists(member, member.sku == "A")`` reads no field of
``member``), as CEL resolves it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*)
    |(?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''
        |"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+
        |\d+[uU]?)
    |(?P<name>[A-Za-z_]\w*)
    |(?P<op>&&|\|\||==|!=|<=|>=|[<>!?:+\-*/%.,()\[\]{}])
    """,
    re.VERBOSE,
)
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_LINES = "lines"  # a node giving a list of basket lines (event.items, a filter of it)
_LINE = "line"  # a node giving one basket line (a macro's name over lines, an index)
_RELATIONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})
EQUALITIES = frozenset({"==", "!=", "in"})
"""The relations CEL answers across types (false or true), never with an error."""
ORDERINGS = frozenset({"<", "<=", ">", ">="})
"""The relations CEL refuses across types (``no such overload``) on every event."""


@dataclass(frozen=True)
class Operand:
    """One side of a comparison: its source text and, for a literal, what kind it is."""

    text: str
    literal: str | None = None  # "string" or "number" for a plain literal, else None
    elements: tuple[Operand, ...] | None = None  # the entries of a list literal


@dataclass(frozen=True)
class Comparison:
    """``left op right`` at ``start`` (0-based offset) in the expression's source.

    ``scope`` maps each name bound by an enclosing macro to the source of the list it
    ranges over, without spaces (``{"line": "event.items"}``).
    """

    op: str
    left: Operand
    right: Operand
    start: int
    end: int
    scope: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """``target.function(arguments)`` at ``start`` (0-based offset) in the source: a
    method call such as ``event.coupon.startsWith("SPRING")``; ``scope`` as in
    :class:`Comparison`."""

    function: str
    target: Operand
    arguments: tuple[Operand, ...]
    start: int
    end: int
    scope: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LineRead:
    """A field read from one basket line: ``i.category`` in a macro over ``event.items``.

    ``line`` is the source of the line read from, spaces squeezed (``i``,
    ``event.items[0]``); ``start`` the offset of the field's name in the expression.
    """

    line: str
    field: str
    start: int


@dataclass(frozen=True)
class FieldReads:
    """The fields an expression reads.

    ``variables`` maps each name used outside any macro binding it (``event``, but also
    ``true`` or a misspelt variable: the caller knows which names are variables) to the
    fields read from it, or to None if it is also used another way (``event["x"]``,
    passed whole); ``lines`` lists the fields read from basket lines, in source order.
    """

    variables: Mapping[str, frozenset[str] | None]
    lines: tuple[LineRead, ...]


class _Unknown(Exception):
    """Syntax this parser does not follow: report no comparison."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Node:
    start: int
    end: int
    literal: str | None = None
    elements: tuple[_Node, ...] | None = None
    kind: str | None = None  # _LINES, _LINE or None (anything else)
    variable: str | None = None  # the name, if the node is a variable alone


def position(source: str, comparison: Comparison | Call) -> str:
    """`` (at column 7)`` (or `` (at line 2 column 4)``) for a comparison that is only
    part of ``source``; empty when it is the whole expression."""
    if source[comparison.start : comparison.end] == source.strip():
        return ""
    line = source.count("\n", 0, comparison.start) + 1
    column = comparison.start - source.rfind("\n", 0, comparison.start)
    return f" (at column {column})" if line == 1 else f" (at line {line} column {column})"


def field_reads(source: str) -> FieldReads | None:
    """The fields ``source`` reads (see :class:`FieldReads`), or None if the expression
    uses syntax this module does not parse."""
    parser = _Parser(source, frozenset())
    try:
        parser.parse()
    except (_Unknown, RecursionError):
        return None
    variables: dict[str, frozenset[str] | None] = {
        name: None if name in parser.whole else frozenset(read)
        for name, read in parser.reads.items()
    }
    return FieldReads(variables, tuple(parser.lines))


def comparisons(source: str, relations: frozenset[str] = EQUALITIES) -> list[Comparison]:
    """The comparisons of ``source`` by one of ``relations`` (``==``, ``!=`` and ``in``
    by default), in source order (none if the expression uses syntax this module does
    not parse)."""
    try:
        return _Parser(source, relations).parse()
    except (_Unknown, RecursionError):
        return []


def calls(source: str, functions: frozenset[str]) -> list[Call]:
    """The method calls of ``source`` to one of ``functions``, in source order (none if
    the expression uses syntax this module does not parse)."""
    parser = _Parser(source, frozenset(), functions)
    try:
        parser.parse()
    except (_Unknown, RecursionError):
        return []
    return sorted(parser.calls, key=lambda call: call.start)


def _tokens(source: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise _Unknown(source[position:])
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), match.start(), match.end()))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over CEL's grammar, recording the comparisons it meets."""

    def __init__(
        self, source: str, relations: frozenset[str], functions: frozenset[str] = frozenset()
    ) -> None:
        self.source = source
        self.relations = relations
        self.functions = functions
        self.calls: list[Call] = []
        self.tokens = _tokens(source)
        self.index = 0
        self.scope: dict[str, str] = {}
        self.kinds: dict[str, str | None] = {}  # what each name in scope ranges over
        self.found: list[Comparison] = []
        self.reads: dict[str, set[str]] = {}  # variable -> fields read
        self.whole: set[str] = set()  # variables used other than as variable.field
        self.lines: list[LineRead] = []

    def parse(self) -> list[Comparison]:
        self._expression()
        if self.index != len(self.tokens):
            raise _Unknown("trailing tokens")
        return sorted(self.found, key=lambda c: c.start)

    def _peek(self) -> str | None:
        return self.tokens[self.index].text if self.index < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> _Token:
        if self.index >= len(self.tokens):
            raise _Unknown("end of expression")
        token = self.tokens[self.index]
        if expected is not None and token.text != expected:
            raise _Unknown(token.text)
        self.index += 1
        return token

    def _span(self, first: _Node, last: _Node) -> _Node:
        return _Node(first.start, last.end)

    def _expression(self) -> _Node:
        node = self._binary(0)
        if self._peek() == "?":
            self._take()
            self._binary(0)
            self._take(":")
            node = self._span(node, self._expression())
        return node

    _LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"||"}),
        frozenset({"&&"}),
        _RELATIONS,
        frozenset({"+", "-"}),
        frozenset({"*", "/", "%"}),
    )

    def _binary(self, level: int) -> _Node:
        if level == len(self._LEVELS):
            return self._unary()
        node = self._binary(level + 1)
        while self._peek() in self._LEVELS[level]:
            op = self._take().text
            right = self._binary(level + 1)
            if op in self.relations:
                self.found.append(
                    Comparison(
                        op,
                        self._operand(node),
                        self._operand(right),
                        node.start,
                        right.end,
                        dict(self.scope),
                    )
                )
            node = self._span(node, right)
        return node

    def _operand(self, node: _Node) -> Operand:
        elements = None
        if node.elements is not None:
            elements = tuple(self._operand(element) for element in node.elements)
        return Operand(self.source[node.start : node.end], node.literal, elements)

    def _unary(self) -> _Node:
        if self._peek() in ("!", "-"):
            sign = self._take()
            operand = self._unary()
            literal = operand.literal if sign.text == "-" and operand.literal == "number" else None
            return _Node(sign.start, operand.end, literal)
        return self._member()

    def _member(self) -> _Node:
        node = self._primary()
        if node.variable is not None and self._peek() != ".":
            self.whole.add(node.variable)
        while self._peek() in (".", "["):
            if self._take().text == "[":
                self._expression()
                kind = _LINE if node.kind == _LINES else None
                node = _Node(node.start, self._take("]").end, kind=kind)
                continue
            name = self._take()
            if name.kind != "name":
                raise _Unknown(name.text)
            if node.variable is not None:
                self.reads[node.variable].add(name.text)
            if self._peek() == "(":
                target = self.source[node.start : node.end]
                element = _LINE if node.kind == _LINES else None
                end, arguments = self._call(name.text, target, element)
                if name.text in self.functions:
                    self._record_call(name.text, node, arguments, end)
                kind = _LINES if name.text == "filter" and element == _LINE else None
                node = _Node(node.start, end, kind=kind)
                continue
            kind = None
            if node.variable == "event" and name.text == "items":
                kind = _LINES
            elif node.kind == _LINE:
                line = re.sub(r"\s+", "", self.source[node.start : node.end])
                self.lines.append(LineRead(line, name.text, name.start))
            node = _Node(node.start, name.end, kind=kind)
        return node

    def _record_call(self, function: str, target: _Node, arguments: list[_Node], end: int) -> None:
        operands = tuple(self._operand(argument) for argument in arguments)
        call = Call(function, self._operand(target), operands, target.start, end, dict(self.scope))
        self.calls.append(call)

    def _call(
        self, function: str, target: str | None, element: str | None = None
    ) -> tuple[int, list[_Node]]:
        """The arguments of a call (``(`` next); the end offset of its ``)`` and the
        arguments (without a macro's name).

        ``element`` is what a macro's name takes: _LINE over basket lines, else None."""
        self._take("(")
        bound = None
        if (
            target is not None
            and function in _MACROS
            and self.index + 1 < len(self.tokens)
            and self.tokens[self.index].kind == "name"
            and self.tokens[self.index + 1].text == ","
        ):
            bound = self._take().text
            self._take(",")
        saved, saved_kinds = dict(self.scope), dict(self.kinds)
        if bound is not None:
            self.scope[bound] = re.sub(r"\s+", "", target or "")
            self.kinds[bound] = element
        arguments: list[_Node] = []
        try:
            if self._peek() != ")":
                arguments.append(self._expression())
                while self._peek() == ",":
                    self._take()
                    arguments.append(self._expression())
        finally:
            self.scope, self.kinds = saved, saved_kinds
        return self._take(")").end, arguments

    def _primary(self, root: bool = False) -> _Node:
        """One operand; ``root``: after a leading dot, where a name is a variable even
        inside a macro binding it."""
        token = self._take()
        if token.kind == "string":
            literal = "string" if token.text[0] in "\"'" else None  # not raw, not bytes
            return _Node(token.start, token.end, literal)
        if token.kind == "number":
            return _Node(token.start, token.end, "number")
        if token.kind == "name":
            if self._peek() == "(":
                return _Node(token.start, self._call(token.text, None)[0])
            if self._peek() == "{":
                raise _Unknown("message literal")
            if token.text in self.kinds and not root:
                return _Node(token.start, token.end, kind=self.kinds[token.text])
            self.reads.setdefault(token.text, set())
            return _Node(token.start, token.end, variable=token.text)
        if token.text == "(":
            inner = self._expression()
            close = self._take(")")
            return _Node(token.start, close.end, inner.literal, inner.elements, inner.kind)
        if token.text == "[":
            elements = self._sequence("]")
            return _Node(token.start, self._take("]").end, None, tuple(elements))
        if token.text == "{":
            self._entries()
            return _Node(token.start, self._take("}").end)
        if token.text == "." and self._peek() is not None:
            return self._primary(root=True)  # a leading dot: .event (the root scope)
        raise _Unknown(token.text)

    def _sequence(self, closing: str) -> list[_Node]:
        elements: list[_Node] = []
        while self._peek() != closing:
            elements.append(self._expression())
            if self._peek() != ",":
                break
            self._take()
        return elements

    def _entries(self) -> None:
        while self._peek() != "}":
            self._expression()
            self._take(":")
            self._expression()
            if self._peek() != ",":
                break
            self._take()
