"""A small evaluator for govaluate expressions, the language of Argo's ``exprs`` filters.

Argo binds each ``fields[].name`` to the gjson value at ``fields[].path`` and
evaluates ``expr`` with Knetic/govaluate. This module implements that language
(tokenizer + precedence-climbing parser compiled to closures; never ``eval``):
float64 numbers, single/double-quoted strings, ``true``/``false``, variables
(letters, digits, ``_``, ``.``, ``\\``-escaped characters, or ``[any name]``),
``== != > >= < <= =~ !~ in``, ``&& || !``, ``+ - * / % **``, bitwise
``& | ^ << >> ~``, ``? :``, ``??`` and ``(a, b)`` lists. Type errors are
specific, as govaluate's are. Compile once, evaluate many times.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from knevents import errors

__all__ = ["ExprError", "Expression", "compile_expr"]

Env = Mapping[str, Any]
Node = Callable[[Env], Any]


ExprError = errors.ExprError


_OPERATORS = (
    "**", "??", "==", "!=", ">=", "<=", "=~", "!~", "&&", "||", "<<", ">>",
    "+", "-", "*", "/", "%", ">", "<", "!", "~", "&", "|", "^", "?", ":", "(", ")", ",",
)  # fmt: skip
_NUMBER = re.compile(r"(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num", "str", "bool", "var", "op", "end"
    value: Any
    pos: int


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append(text[index + 1])
            index += 2
            continue
        if char == quote:
            return "".join(out), index + 1
        out.append(char)
        index += 1
    raise ExprError(f"unclosed string literal starting at position {start}")


def _read_variable(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            if index + 1 >= len(text):
                raise ExprError(f"dangling escape at position {index}")
            out.append(text[index + 1])
            index += 2
        elif char.isalnum() or char in "_.":
            out.append(char)
            index += 1
        else:
            break
    return "".join(out), index


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
            continue
        if char in "'\"":
            value, index2 = _read_string(text, index)
            tokens.append(_Token("str", value, index))
            index = index2
            continue
        if char == "[":
            end = text.find("]", index)
            if end < 0:
                raise ExprError(f"unclosed '[' at position {index}")
            tokens.append(_Token("var", text[index + 1 : end], index))
            index = end + 1
            continue
        number = _NUMBER.match(text, index) if char.isdigit() or char == "." else None
        if number:
            literal = number.group(0)
            number_value = float(int(literal, 16)) if literal.startswith("0x") else float(literal)
            tokens.append(_Token("num", number_value, index))
            index = number.end()
            continue
        if char.isalpha() or char in "_\\":
            name, index2 = _read_variable(text, index)
            if name in ("true", "false"):
                tokens.append(_Token("bool", name == "true", index))
            elif name == "in":
                tokens.append(_Token("op", "in", index))
            else:
                tokens.append(_Token("var", name, index))
            index = index2
            continue
        for op in _OPERATORS:
            if text.startswith(op, index):
                tokens.append(_Token("op", op, index))
                index += len(op)
                break
        else:
            raise ExprError(f"invalid character {char!r} at position {index}")
    tokens.append(_Token("end", None, len(text)))
    return tokens


# --- type checks, with govaluate's wording -------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _num(value: Any, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExprError(
            f"value '{_describe(value)}' cannot be used with the operator '{op}', it is not a number"
        )
    return float(value)


def _bool(value: Any, op: str) -> bool:
    if not isinstance(value, bool):
        raise ExprError(
            f"value '{_describe(value)}' cannot be used with the logical operator '{op}', it is not a bool"
        )
    return value


def _text(value: Any, op: str) -> str:
    if not isinstance(value, str):
        raise ExprError(
            f"value '{_describe(value)}' cannot be used with the comparator '{op}', it is not a string"
        )
    return value


def _order(op: str, test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        if isinstance(left, str) and isinstance(right, str):
            return test(left, right)
        return test(_num(left, op), _num(right, op))

    return compare


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ExprError(f"invalid regular expression {pattern!r}: {exc}") from None


def _plus(left: Any, right: Any) -> Any:
    if isinstance(left, str) or isinstance(right, str):
        return _describe(left) + _describe(right)
    return _num(left, "+") + _num(right, "+")


def _divide(left: Any, right: Any) -> float:
    a, b = _num(left, "/"), _num(right, "/")
    if b == 0:
        return math.copysign(math.inf, a) if a else math.nan
    return a / b


def _modulo(left: Any, right: Any) -> float:
    a, b = _num(left, "%"), _num(right, "%")
    return math.fmod(a, b) if b else math.nan


_INT64 = 1 << 64


def _int64(value: float) -> int:
    """Go's ``int64(f)`` for the bitwise operators (NaN/Inf and out-of-range values saturate)."""
    if math.isnan(value):
        return 0
    if value >= 2**63:
        return 2**63 - 1
    if value < -(2**63):
        return -(2**63)
    return int(value)


def _wrap(value: int) -> int:
    value %= _INT64
    return value - _INT64 if value >= 2**63 else value


def _shift_left(a: int, b: int) -> int:
    # Go: a shift count of 64 or more yields 0; a negative count panics (govaluate: error).
    if b < 0:
        raise ExprError("negative shift count")
    return 0 if b >= 64 else _wrap(a << b)


def _shift_right(a: int, b: int) -> int:
    if b < 0:
        raise ExprError("negative shift count")
    return (-1 if a < 0 else 0) if b >= 64 else a >> b


def _bits(fn: Callable[[int, int], int], op: str) -> Callable[[Any, Any], float]:
    return lambda left, right: float(fn(_int64(_num(left, op)), _int64(_num(right, op))))


def _power(left: Any, right: Any) -> float:
    a, b = _num(left, "**"), _num(right, "**")
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf  # Go's math.Pow overflows to +Inf
    except ValueError:
        return math.nan


def _contains(left: Any, right: Any) -> bool:
    if not isinstance(right, list | tuple):
        raise ExprError(
            f"value '{_describe(right)}' cannot be used with the operator 'in', it is not an array"
        )
    return any(_equal(left, item) for item in right)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    ">": _order(">", lambda a, b: a > b),
    ">=": _order(">=", lambda a, b: a >= b),
    "<": _order("<", lambda a, b: a < b),
    "<=": _order("<=", lambda a, b: a <= b),
    "=~": lambda a, b: _regex(_text(b, "=~")).search(_text(a, "=~")) is not None,
    "!~": lambda a, b: _regex(_text(b, "!~")).search(_text(a, "!~")) is None,
    "in": _contains,
    "+": _plus,
    "-": lambda a, b: _num(a, "-") - _num(b, "-"),
    "*": lambda a, b: _num(a, "*") * _num(b, "*"),
    "/": _divide,
    "%": _modulo,
    "**": _power,
    "&": _bits(lambda a, b: a & b, "&"),
    "|": _bits(lambda a, b: a | b, "|"),
    "^": _bits(lambda a, b: a ^ b, "^"),
    "<<": _bits(_shift_left, "<<"),
    ">>": _bits(_shift_right, ">>"),
}

# Binding power, lowest first (govaluate's planner order).
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!=", ">", ">=", "<", "<=", "=~", "!~", "in"),
    ("&", "|", "^"),
    ("<<", ">>"),
    ("+", "-"),
    ("*", "/", "%"),
    ("**",),
)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.variables: list[str] = []

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, op: str) -> None:
        token = self.take()
        if token.kind != "op" or token.value != op:
            raise ExprError(f"expected '{op}' at position {token.pos}")

    def parse(self) -> Node:
        node = self.ternary()
        token = self.peek()
        if token.kind != "end":
            raise ExprError(f"unexpected {token.value!r} at position {token.pos}")
        return node

    def ternary(self) -> Node:
        cond = self.binary(0)
        token = self.peek()
        if token.kind == "op" and token.value == "??":
            self.take()
            other = self.ternary()
            return lambda env: value if (value := cond(env)) is not None else other(env)
        if token.kind == "op" and token.value == "?":
            self.take()
            then = self.binary(0)
            otherwise: Node = lambda env: None  # noqa: E731 - govaluate: `a ? b` alone yields nil
            if self.peek().kind == "op" and self.peek().value == ":":
                self.take()
                otherwise = self.ternary()
            return lambda env: then(env) if _bool(cond(env), "?") else otherwise(env)
        return cond

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.prefix()
        left = self.binary(level + 1)
        while True:
            token = self.peek()
            if token.kind != "op" or token.value not in _LEVELS[level]:
                return left
            self.take()
            # ** is right-associative; everything else is left-associative.
            right = self.binary(level) if token.value == "**" else self.binary(level + 1)
            left = self._combine(token.value, left, right)

    @staticmethod
    def _combine(op: str, left: Node, right: Node) -> Node:
        if op == "&&":
            return lambda env: _bool(left(env), "&&") and _bool(right(env), "&&")
        if op == "||":
            return lambda env: _bool(left(env), "||") or _bool(right(env), "||")
        fn = _BINARY[op]
        return lambda env: fn(left(env), right(env))

    def prefix(self) -> Node:
        token = self.peek()
        if token.kind == "op" and token.value in ("!", "-", "~"):
            self.take()
            operand = self.prefix()
            if token.value == "!":
                return lambda env: not _bool(operand(env), "!")
            if token.value == "-":
                return lambda env: -_num(operand(env), "-")
            return lambda env: float(~_int64(_num(operand(env), "~")))
        return self.value()

    def value(self) -> Node:
        token = self.take()
        if token.kind in ("num", "str", "bool"):
            constant = token.value
            return lambda env: constant
        if token.kind == "var":
            if self.peek().kind == "op" and self.peek().value == "(":
                raise ExprError(f"unknown function '{token.value}' at position {token.pos}")
            return self._variable(token.value)
        if token.kind == "op" and token.value == "(":
            items = [self.ternary()]
            while self.peek().kind == "op" and self.peek().value == ",":
                self.take()
                items.append(self.ternary())
            self.expect(")")
            if len(items) == 1:
                return items[0]
            return lambda env: [item(env) for item in items]
        if token.kind == "end":
            raise ExprError("unexpected end of expression")
        raise ExprError(f"unexpected {token.value!r} at position {token.pos}")

    def _variable(self, name: str) -> Node:
        self.variables.append(name)

        head, _, rest = name.partition(".")

        def lookup(env: Env) -> Any:
            try:
                value = env[name]
            except KeyError:
                # govaluate reads `a.b` as an accessor into parameter `a`; a parameter literally
                # named `a.b` (as the seed documents write them) is tried first.
                if not rest or head not in env:
                    raise ExprError(f"no parameter '{name}' found") from None
                value = env[head]
                for part in rest.split("."):
                    if not isinstance(value, dict) or part not in value:
                        raise ExprError(f"no field '{part}' in parameter '{head}' (for '{name}')") from None
                    value = value[part]
            if isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            return value

        return lookup


@dataclass(frozen=True)
class Expression:
    """A compiled govaluate expression."""

    text: str
    variables: tuple[str, ...]
    _node: Node

    def evaluate(self, env: Env) -> Any:
        """The expression's value with ``env`` as its parameters; raises ExprError."""
        try:
            return self._node(env)
        except ExprError:
            raise
        except (ArithmeticError, ValueError, RecursionError) as exc:
            raise ExprError(f"cannot evaluate {self.text!r}: {exc}") from None


@functools.lru_cache(maxsize=1024)
def compile_expr(text: str) -> Expression:
    """Parse a govaluate expression once; raises ExprError with the position of the problem."""
    if not text.strip():
        raise ExprError("expression is empty")
    parser = _Parser(text)
    node = parser.parse()
    return Expression(text, tuple(dict.fromkeys(parser.variables)), node)
