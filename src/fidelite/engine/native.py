"""Simple CEL expressions compiled to Python closures, where that gives the same result.

Handing an event to CEL costs far more than the check itself: the CEL binding
converts every value it is given (a basket of four lines costs tens of microseconds)
while ``event.amount >= 100.0 && event.channel == "web"`` is a few hundred
nanoseconds of Python. Most conditions in real programs are of that shape, so the
engine runs them as Python and keeps CEL for everything else.

Only a subset whose Python meaning is provably the CEL meaning is translated; any
other expression returns ``None`` here and stays with CEL. The subset:

- fields of ``event``, ``member`` and ``item`` whose type is fixed by the engine
  (:data:`FIELD_TYPES`; not ``attributes``, whose values have no fixed type);
- literals: ``true``, ``false``, integers within int64, decimal doubles (``100.0``,
  ``1e3``), strings without backslashes (no escape sequences to reinterpret), lists
  of literals of one type (only as the right side of ``in``);
- ``&&``, ``||``; ``==``, ``!=`` between operands of the same type; ``<``, ``<=``,
  ``>``, ``>=`` between two ints or two doubles; ``x in list``; ``+``, ``-``, ``*``
  and unary ``-`` on doubles (IEEE 754 in both languages; no ``/``, whose division by
  zero differs, and no integer arithmetic, which overflows in CEL only).

Invariant: every operand is statically typed and every operator is applied to types
for which CEL defines it, so the translated expression can never raise where CEL
would not (CEL's error-absorbing ``&&``/``||`` then behave like Python's short
circuit) and gives the same value. ``!`` is left to CEL: it binds tighter than ``==``
in CEL but looser in Python. Chained comparisons (``a < b < c``) are left to CEL too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from typing import Any

from fidelite.engine.context import ITEM_ATTRIBUTES

# The Python type of each field as built by fidelite.engine.context (list = list[str]),
# one table with the program's load-time checks.
from fidelite.program.variables import FIELD_TYPES

Values = Mapping[str, Mapping[str, Any]]
"""Python values of the fields read: ``{"event": {...}, "member": {...}, "item": {...}}``."""

NativeExpression = Callable[[Values], Any]

ItemExpression = Callable[[Values, Any], Any]
"""A per-item condition as Python: ``(values, item)`` where ``item`` is the basket line."""

# The conversions of item attributes, as globals of item closures: ``_item_price``.
_ITEM_CONVERSIONS = {
    f"_item_{name}": convert for name, convert in ITEM_ATTRIBUTES.items() if convert is not None
}

_INT64 = (-(2**63), 2**63 - 1)

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<string>"[^"\\\n]*"|'[^'\\\n]*')
    |(?P<number>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|[1-9]\d*|0)(?![\w.])
    |(?P<name>[A-Za-z_]\w*)
    |(?P<op>&&|\|\||==|!=|<=|>=|[<>()\[\],.+*-])
    """,
    re.VERBOSE,
)
_WORDS = {"true": "True", "false": "False"}
_ORDERED = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class _Unsupported(Exception):
    """The expression is outside the translated subset (it stays with CEL)."""


def translate(source: str, variables: frozenset[str]) -> NativeExpression | None:
    """A Python closure equal to the CEL expression ``source``, or None if not translatable.

    ``variables`` are the names the expression may use (``event``, ``member``, ``item``).
    The closure takes the fields' Python values (see :data:`Values`).
    """
    function: NativeExpression | None = _closure(source, variables, _Rewriter(), ("values",))
    return function


def translate_item(source: str, variables: frozenset[str]) -> ItemExpression | None:
    """Like :func:`translate` for a per-item condition, or None if not translatable.

    The closure takes the fields' Python values (``event`` and ``member``) and the
    basket line itself (an :class:`~fidelite.engine.event.Item`): ``item.<field>`` reads
    the item's attribute, converted as :data:`fidelite.engine.context.ITEM_ATTRIBUTES`
    says, which is the value ``event.items`` holds for that line. So no dictionary is
    built per line, and none at all for ``event.items`` when only such conditions read
    the basket.
    """
    function: ItemExpression | None = _closure(
        source, variables, _ItemRewriter(), ("values", "item"), _ITEM_CONVERSIONS
    )
    return function


def _closure(
    source: str,
    variables: frozenset[str],
    rewriter: ast.NodeTransformer,
    arguments: tuple[str, ...],
    names: Mapping[str, Any] | None = None,
) -> Any:
    """``lambda <arguments>: <source as Python>``, or None outside the subset.

    ``names`` are the only globals the closure sees (no builtins).
    """
    try:
        python = _python_source(source, variables)
        tree = ast.parse(python, mode="eval")
        _Typer(variables).type_of(tree.body)
        body = rewriter.visit(tree.body)
    except (_Unsupported, SyntaxError, RecursionError):
        return None
    lambda_ = ast.Lambda(
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(name) for name in arguments],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=body,
    )
    module = ast.fix_missing_locations(ast.Expression(lambda_))
    return eval(compile(module, "<cel>", "eval"), {**(names or {}), "__builtins__": {}})


def _python_source(source: str, variables: frozenset[str]) -> str:
    """Token-by-token CEL -> Python text; rejects any token outside the subset."""
    parts: list[str] = []
    position, previous = 0, ""
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise _Unsupported(source[position:])
        kind, text = match.lastgroup, match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "name" and text == "in":
            parts.append("in")
        elif kind == "name":
            if previous == "name" or previous == "number":
                raise _Unsupported(text)
            if parts and parts[-1] == ".":
                parts.append(text)
            elif text in _WORDS:
                parts.append(_WORDS[text])
            elif text in variables:
                parts.append(text)
            else:
                raise _Unsupported(text)  # has(), size(), null, ...
        elif kind == "string":
            if previous in ("name", "string"):
                raise _Unsupported(text)  # r"..", b"..", or implicit concatenation
            parts.append(text)
        elif kind == "op":
            parts.append({"&&": " and ", "||": " or "}.get(text, text))
        else:
            parts.append(text)
        previous = "op" if text == "in" else kind or ""
    return " ".join(parts)


class _Typer:
    """Static types of the translated subset; raises :class:`_Unsupported` elsewhere."""

    def __init__(self, variables: frozenset[str]) -> None:
        self.variables = variables

    def type_of(self, node: ast.expr) -> type:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self._expect(value, bool)
            return bool
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult):
            self._expect(node.left, float)
            self._expect(node.right, float)
            return float
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            if isinstance(node.operand, ast.Constant) and type(node.operand.value) is int:
                self._int_literal(-node.operand.value)
                return int
            self._expect(node.operand, float)
            return float
        if isinstance(node, ast.Attribute):
            return self._field(node)
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        raise _Unsupported(type(node).__name__)

    def _expect(self, node: ast.expr, expected: type) -> None:
        if self.type_of(node) is not expected:
            raise _Unsupported("operand type")

    def _compare(self, node: ast.Compare) -> type:
        if len(node.ops) != 1:
            raise _Unsupported("chained comparison")
        op, right = node.ops[0], node.comparators[0]
        left_type = self.type_of(node.left)
        if isinstance(op, ast.In):
            if isinstance(right, ast.List):
                types = {self.type_of(element) for element in right.elts}
                if not all(isinstance(e, ast.Constant | ast.UnaryOp) for e in right.elts):
                    raise _Unsupported("list of non-literals")
                if types - {left_type} or left_type not in (int, float, str):
                    raise _Unsupported("list element types")
                return bool
            if self.type_of(right) is list and left_type is str:
                return bool
            raise _Unsupported("in")
        right_type = self.type_of(right)
        if left_type is not right_type:
            raise _Unsupported("mixed types")
        if isinstance(op, ast.Eq | ast.NotEq) and left_type in (bool, int, float, str):
            return bool
        if isinstance(op, _ORDERED) and left_type in (int, float):
            return bool
        raise _Unsupported(type(op).__name__)

    def _field(self, node: ast.Attribute) -> type:
        if not isinstance(node.value, ast.Name) or node.value.id not in self.variables:
            raise _Unsupported("nested field")
        field_type = FIELD_TYPES.get(node.value.id, {}).get(node.attr)
        if field_type is None:
            raise _Unsupported(f"{node.value.id}.{node.attr}")
        return field_type

    def _constant(self, value: object) -> type:
        if type(value) is int:
            self._int_literal(value)
        if type(value) not in (bool, int, float, str):
            raise _Unsupported(type(value).__name__)
        return type(value)

    @staticmethod
    def _int_literal(value: int) -> None:
        if not _INT64[0] <= value <= _INT64[1]:
            raise _Unsupported("int64 range")


class _Rewriter(ast.NodeTransformer):
    """``event.amount`` -> ``values["event"]["amount"]`` (the closure's argument)."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        assert isinstance(node.value, ast.Name)
        variable = ast.Subscript(
            value=ast.Name("values", ast.Load()), slice=ast.Constant(node.value.id), ctx=ast.Load()
        )
        return ast.Subscript(value=variable, slice=ast.Constant(node.attr), ctx=ast.Load())


class _ItemRewriter(_Rewriter):
    """As :class:`_Rewriter`, but ``item.price`` -> ``_item_price(item.price)``: the item's
    own attribute, converted as :data:`fidelite.engine.context.ITEM_ATTRIBUTES` says."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        assert isinstance(node.value, ast.Name)
        if node.value.id != "item":
            return super().visit_Attribute(node)
        if node.attr not in ITEM_ATTRIBUTES:  # the typer allows only ITEM_FIELDS
            raise _Unsupported(f"item.{node.attr}")
        attribute = ast.Attribute(
            value=ast.Name("item", ast.Load()), attr=node.attr, ctx=ast.Load()
        )
        if ITEM_ATTRIBUTES[node.attr] is None:
            return attribute
        return ast.Call(
            func=ast.Name(f"_item_{node.attr}", ast.Load()), args=[attribute], keywords=[]
        )
