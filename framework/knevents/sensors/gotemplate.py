"""A small interpreter for Go's text/template with the sprig functions Argo users write.

Argo renders ``dataTemplate`` / ``contextTemplate`` parameters and data-filter
``template`` fields with Go's ``text/template`` plus Masterminds/sprig. The
results are injected into Kubernetes resources and HTTP payloads, so they must
match Go byte for byte: a float64 prints as ``%v`` does (``1e+06``), a map as
``map[k:v]``, a missing key as ``<no value>``, ``toJson`` sorts keys and
escapes HTML characters.

Supported: text with ``{{- -}}`` trim markers and ``{{/* comments */}}``;
fields ``.a.b``, ``$``, ``$x.a``; variables ``:=``/``=``; pipelines with ``|``;
parenthesised pipelines; ``if``/``else if``/``else``, ``range`` (with
``$i, $v :=``, ``else``, ``break``, ``continue``), ``with``/``else``; Go's
builtins and the sprig functions listed in ``_FUNCS``. Not supported:
``define``/``template``/``block``, methods. Templates compile once to a tree;
execution raises :class:`TemplateError` with Go-like messages.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["MISSING", "Template", "TemplateError", "compile_template", "go_print", "go_value"]


class TemplateError(ValueError):
    """A template does not parse or fails while executing."""


class _Missing:
    """Go's invalid reflect.Value: a missing map key. Prints ``<no value>``."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- printing values as Go's fmt %v does -------------------------------------------------


def _go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)`` as fmt's %v prints a float64."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # position of the decimal point
    exp = point - 1
    prefix = "-" if sign else ""
    # %v is %g with the shortest digits: an exponent when exp < -4 or exp >= 6 (Go's eprec).
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def go_print(value: Any, top: bool = True) -> str:
    """A value as ``fmt.Sprint`` prints it (what ``{{ x }}`` writes)."""
    if value is MISSING or (value is None and top):
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict):
        inner = " ".join(f"{go_print(k, False)}:{go_print(value[k], False)}" for k in sorted(value, key=str))
        return f"map[{inner}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v, False) for v in value) + "]"
    if isinstance(value, bytes):
        return "[" + " ".join(str(b) for b in value) + "]"
    return str(value)


def go_value(data: bytes | str) -> Any:
    """JSON decoded as Go's ``interface{}`` (every number a float64)."""
    return json.loads(data, parse_int=float)


# --- encoding/json, as sprig's toJson uses it -------------------------------------------


def _json_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise TemplateError(f"json: unsupported value: {_go_float(value)}")
    absolute = abs(value)
    if absolute != 0 and (absolute < 1e-6 or absolute >= 1e21):
        text = _go_float(value)
        return re.sub(r"e([+-])0(\d)$", r"e\1\2", text)
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(value: Any, *, escape_html: bool = True, indent: str | None = None, level: int = 0) -> str:
    """``json.Marshal`` of a Go interface{} value (sorted keys, Go number format)."""
    if value is None or value is MISSING:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if escape_html:
            text = re.sub("[<>&\u2028\u2029]", lambda m: _HTML_ESCAPES[m.group(0)], text)
        return text
    pad = "" if indent is None else "\n" + indent * (level + 1)
    end = "" if indent is None else "\n" + indent * level
    colon = ":" if indent is None else ": "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{pad}{go_json(str(k), escape_html=escape_html)}{colon}"
            f"{go_json(value[k], escape_html=escape_html, indent=indent, level=level + 1)}"
            for k in sorted(value, key=str)
        ]
        return "{" + ",".join(items) + end + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [f"{pad}{go_json(v, escape_html=escape_html, indent=indent, level=level + 1)}" for v in value]
        return "[" + ",".join(items) + end + "]"
    raise TemplateError(f"json: unsupported type {type(value).__name__}")


# --- lexing -------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<char>'(?:[^'\\]|\\.)+')
    | (?P<num>[-+]?(?:0x[0-9a-fA-F]+|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
    | (?P<declare>:=)
    | (?P<assign>=)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<dot>\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[()|,])
    )""",
    re.VERBOSE,
)
_CHAIN = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str


def _lex_action(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    index = 0
    while index < len(text):
        if text[index:].strip() == "":
            break
        match = _TOKEN.match(text, index)
        if not match or match.end() == index:
            raise TemplateError(f"unexpected {text[index:].strip()[:20]!r} in action {text.strip()!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        # A field chain right after ")" belongs to the parenthesised value.
        if kind == "punct" and value == ")":
            chain = _CHAIN.match(text, match.end())
            tokens.append(_Tok("punct", ")"))
            if chain:
                tokens.append(_Tok("chain", chain.group(0)))
                index = chain.end()
                continue
        else:
            tokens.append(_Tok(kind, value))
        index = match.end()
    return tokens


# --- the tree -----------------------------------------------------------------------------

Scope = list[dict[str, Any]]


@dataclass
class _Pipe:
    decl: list[str]
    assign: bool
    cmds: list[list[Any]]  # each command: operands (see _Parser.operand)


@dataclass
class _Node:
    kind: str  # text, action, if, range, with, break, continue
    text: str = ""
    pipe: _Pipe | None = None
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _unquote(literal: str) -> str:
    try:
        value = json.loads(literal)
    except ValueError:
        value = literal[1:-1].encode().decode("unicode_escape")
    return str(value)


class _Parser:
    def __init__(self, source: str) -> None:
        self.items = self._split(source)
        self.pos = 0

    @staticmethod
    def _split(source: str) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        last = 0
        trim_next = False
        for match in _ACTION.finditer(source):
            text = source[last : match.start()]
            if trim_next:
                text = text.lstrip()
            if match.group(1):
                text = text.rstrip()
            if text:
                items.append(("text", text))
            body = match.group(2)
            if not body.strip().startswith("/*"):
                items.append(("action", body))
            elif not body.strip().endswith("*/"):
                raise TemplateError("unclosed comment")
            trim_next = bool(match.group(3))
            last = match.end()
        tail = source[last:]
        if "{{" in tail:
            raise TemplateError("unclosed action")
        if trim_next:
            tail = tail.lstrip()
        if tail:
            items.append(("text", tail))
        return items

    def parse(self) -> list[_Node]:
        nodes, stop = self.list_until()
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop}}}}}")
        return nodes

    def list_until(self) -> tuple[list[_Node], str | None]:
        nodes: list[_Node] = []
        while self.pos < len(self.items):
            kind, body = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                nodes.append(_Node("text", text=body))
                continue
            tokens = _lex_action(body)
            if not tokens:
                raise TemplateError("missing value for command")
            head = tokens[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                return nodes, " ".join(t.text for t in tokens)
            if head.kind == "ident" and head.text in ("if", "with", "range"):
                nodes.append(self.block(head.text, tokens[1:]))
            elif head.kind == "ident" and head.text in ("break", "continue"):
                nodes.append(_Node(head.text))
            elif head.kind == "ident" and head.text in ("define", "template", "block"):
                raise TemplateError(f"{{{{{head.text}}}}} is not supported")
            else:
                nodes.append(_Node("action", pipe=self.pipeline(tokens)))
        return nodes, None

    def block(self, kind: str, tokens: list[_Tok]) -> _Node:
        node = _Node(kind, pipe=self.pipeline(tokens, allow_two=kind == "range"))
        node.body, stop = self.list_until()
        if stop is None:
            raise TemplateError(f"unexpected EOF in {{{{{kind}}}}}")
        if stop == "end":
            return node
        rest = stop.split(None, 1)
        if rest == ["else"]:
            node.orelse, stop = self.list_until()
            if stop != "end":
                raise TemplateError(f"expected {{{{end}}}} after {{{{else}}}} in {{{{{kind}}}}}")
            return node
        if rest[0] == "else" and len(rest) == 2 and rest[1].split(None, 1)[0] in ("if", "with"):
            inner_tokens = _lex_action(rest[1])
            # `else if` shares the outer block's {{end}}.
            node.orelse = [self.block(inner_tokens[0].text, inner_tokens[1:])]
            return node
        raise TemplateError(f"unexpected {{{{{stop}}}}}")

    def pipeline(self, tokens: list[_Tok], allow_two: bool = False) -> _Pipe:
        decl: list[str] = []
        assign = False
        for count in (1, 2) if allow_two else (1,):
            sep = count * 2
            if (
                len(tokens) > sep
                and all(tokens[i].kind == "var" for i in range(0, sep, 2))
                and (count == 1 or (tokens[1].kind == "punct" and tokens[1].text == ","))
                and tokens[sep - 1].kind in ("declare", "assign")
            ):
                decl = [tokens[i].text for i in range(0, sep, 2)]
                assign = tokens[sep - 1].kind == "assign"
                tokens = tokens[sep:]
                break
        cmds: list[list[Any]] = []
        self.toks = tokens
        self.tpos = 0
        cmds.append(self.command())
        while self.tpos < len(self.toks):
            tok = self.toks[self.tpos]
            if tok.kind == "punct" and tok.text == "|":
                self.tpos += 1
                cmds.append(self.command())
            else:
                raise TemplateError(f"unexpected {tok.text!r} in command")
        return _Pipe(decl, assign, cmds)

    def command(self) -> list[Any]:
        operands: list[Any] = []
        while self.tpos < len(self.toks):
            tok = self.toks[self.tpos]
            if tok.kind == "punct" and tok.text in ("|", ")"):
                break
            operands.append(self.operand())
        if not operands:
            raise TemplateError("missing value for command")
        return operands

    def operand(self) -> Any:
        tok = self.toks[self.tpos]
        self.tpos += 1
        if tok.kind == "punct" and tok.text == "(":
            saved = (self.toks,)
            depth, start = 1, self.tpos
            while self.tpos < len(self.toks) and depth:
                t = self.toks[self.tpos]
                if t.kind == "punct" and t.text in "()":
                    depth += 1 if t.text == "(" else -1
                self.tpos += 1
            if depth:
                raise TemplateError("unclosed left paren")
            inner = self.toks[start : self.tpos - 1]
            after = self.tpos
            pipe = self.pipeline(inner)
            self.toks, self.tpos = saved[0], after
            chain: tuple[str, ...] = ()
            if self.tpos < len(self.toks) and self.toks[self.tpos].kind == "chain":
                chain = tuple(self.toks[self.tpos].text[1:].split("."))
                self.tpos += 1
            return ("pipe", pipe, chain)
        if tok.kind == "field":
            return ("field", tuple(tok.text[1:].split(".")))
        if tok.kind == "dot":
            return ("field", ())
        if tok.kind == "var":
            name, *chain_parts = tok.text.split(".")
            return ("var", name, tuple(chain_parts))
        if tok.kind in ("str", "raw"):
            return ("const", _unquote(tok.text) if tok.kind == "str" else tok.text[1:-1])
        if tok.kind == "char":
            return ("const", ord(_unquote('"' + tok.text[1:-1] + '"')))
        if tok.kind == "num":
            return ("const", _number(tok.text))
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return ("const", tok.text == "true")
            if tok.text == "nil":
                return ("const", None)
            if tok.text not in _FUNCS:
                raise TemplateError(f'function "{tok.text}" not defined')
            return ("func", tok.text)
        raise TemplateError(f"unexpected {tok.text!r} in operand")


def _number(text: str) -> int | float:
    if text.lower().startswith(("0x", "-0x", "+0x")):
        return int(text, 16)
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return float(text)


# --- execution ----------------------------------------------------------------------------


def _truth(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict | bytes):
        return len(value) > 0
    return True


def _type_name(value: Any) -> str:
    if value is MISSING or value is None:
        return "<nil>"
    return {
        bool: "bool",
        int: "int",
        float: "float64",
        str: "string",
        dict: "map[string]interface {}",
        list: "[]interface {}",
    }.get(type(value), type(value).__name__)


def _field(value: Any, name: str) -> Any:
    if value is MISSING:
        return MISSING
    if value is None:
        raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(value, dict):
        return value.get(name, MISSING)
    raise TemplateError(f"can't evaluate field {name} in type {_type_name(value)}")


class _Exec:
    def __init__(self, dot: Any) -> None:
        self.out: list[str] = []
        self.scopes: Scope = [{"$": dot}]

    def lookup(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise TemplateError(f"undefined variable: {name}")

    def run(self, nodes: list[_Node], dot: Any) -> None:
        for node in nodes:
            kind = node.kind
            if kind == "text":
                self.out.append(node.text)
            elif kind == "action":
                assert node.pipe is not None
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.out.append(go_print(value))
            elif kind == "if":
                assert node.pipe is not None
                self.scopes.append({})
                try:
                    branch = node.body if _truth(self.pipe(node.pipe, dot)) else node.orelse
                    self.run(branch, dot)
                finally:
                    self.scopes.pop()
            elif kind == "with":
                assert node.pipe is not None
                self.scopes.append({})
                try:
                    value = self.pipe(node.pipe, dot)
                    if _truth(value):
                        self.run(node.body, value)
                    else:
                        self.run(node.orelse, dot)
                finally:
                    self.scopes.pop()
            elif kind == "range":
                self.range(node, dot)
            elif kind == "break":
                raise _Break()
            elif kind == "continue":
                raise _Continue()

    def range(self, node: _Node, dot: Any) -> None:
        assert node.pipe is not None
        pipe = node.pipe
        value = self.pipe(_Pipe([], False, pipe.cmds), dot)
        items: Iterator[tuple[Any, Any]]
        if value is MISSING or value is None:
            items = iter(())
        elif isinstance(value, dict):
            items = ((k, value[k]) for k in sorted(value))
        elif isinstance(value, list | tuple):
            items = iter(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = ((i, i) for i in range(value))
        else:
            raise TemplateError(f"range can't iterate over {go_print(value)}")
        ran = False
        for key, item in items:
            ran = True
            scope: dict[str, Any] = {}
            if len(pipe.decl) == 1:
                scope[pipe.decl[0]] = item
            elif len(pipe.decl) == 2:
                scope[pipe.decl[0]] = key
                scope[pipe.decl[1]] = item
            self.scopes.append(scope)
            try:
                self.run(node.body, item)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                self.scopes.pop()
        if not ran:
            self.run(node.orelse, dot)

    def pipe(self, pipe: _Pipe, dot: Any) -> Any:
        value: Any = _NOTHING
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        if pipe.decl:
            name = pipe.decl[0]
            if pipe.assign:
                for scope in reversed(self.scopes):
                    if name in scope:
                        scope[name] = value
                        break
                else:
                    raise TemplateError(f"undefined variable: {name}")
            else:
                self.scopes[-1][name] = value
        return value

    def command(self, cmd: list[Any], dot: Any, piped: Any) -> Any:
        head = cmd[0]
        if head[0] == "func":
            name = head[1]
            if name in ("and", "or"):
                return self.logical(name, cmd[1:], dot, piped)
            args = [self.operand(op, dot) for op in cmd[1:]]
            if piped is not _NOTHING:
                args.append(piped)
            try:
                return _FUNCS[name](*args)
            except TemplateError as exc:
                raise TemplateError(f"error calling {name}: {exc}") from None
            except TypeError:
                raise TemplateError(f"wrong number of args for {name}: got {len(args)}") from None
        if len(cmd) > 1 or piped is not _NOTHING:
            raise TemplateError(f"can't give argument to non-function {self.describe(head)}")
        return self.operand(head, dot)

    def logical(self, name: str, ops: list[Any], dot: Any, piped: Any) -> Any:
        thunks: list[Callable[[], Any]] = [functools.partial(self.operand, op, dot) for op in ops]
        if piped is not _NOTHING:
            thunks.append(lambda: piped)
        if not thunks:
            raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
        value: Any = None
        for thunk in thunks:
            value = thunk()
            if _truth(value) != (name == "and"):
                return value
        return value

    @staticmethod
    def describe(op: Any) -> str:
        if op[0] == "field":
            return "." + ".".join(op[1])
        return str(op[1])

    def operand(self, op: Any, dot: Any) -> Any:
        kind = op[0]
        if kind == "field":
            value = dot
            for name in op[1]:
                value = _field(value, name)
            return value
        if kind == "const":
            return op[1]
        if kind == "var":
            value = self.lookup(op[1])
            for name in op[2]:
                value = _field(value, name)
            return value
        if kind == "pipe":
            self.scopes.append({})
            try:
                value = self.pipe(op[1], dot)
            finally:
                self.scopes.pop()
            for name in op[2]:
                value = _field(value, name)
            return value
        if kind == "func":
            return self.command([op], dot, _NOTHING)
        raise TemplateError(f"bad operand {op!r}")


_NOTHING: Any = object()


@dataclass(frozen=True)
class Template:
    """A compiled Go template."""

    source: str
    _nodes: list[_Node]

    def render(self, dot: Any) -> str:
        """Execute with ``dot`` as ``.``; raises TemplateError."""
        runner = _Exec(dot)
        try:
            runner.run(self._nodes, dot)
        except (_Break, _Continue):
            raise TemplateError("{{break}} or {{continue}} outside {{range}}") from None
        except RecursionError:
            raise TemplateError("template nesting too deep") from None
        return "".join(runner.out)


@functools.lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """Parse a Go template once; raises TemplateError naming the problem."""
    return Template(source, _Parser(source).parse())


# --- functions: Go builtins and sprig ---------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    for other in others:
        a = None if first is MISSING else first
        b = None if other is MISSING else other
        if a is None or b is None:
            if a is None and b is None:
                return True
            continue
        ka, kb = _kind(a), _kind(b)
        if ka == "other" or kb == "other":
            if ka == kb and a == b:
                return True
            if ka != kb:
                raise TemplateError("incompatible types for comparison")
            continue
        if ka != kb:
            raise TemplateError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _less(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == "other" or kb == "other" or ka == "bool":
        raise TemplateError("invalid type for comparison")
    if ka != kb:
        raise TemplateError("incompatible types for comparison")
    return bool(a < b)


def _strval(value: Any) -> str:
    if value is MISSING or value is None:
        return "<nil>" if value is None else "<no value>"
    if isinstance(value, str):
        return value
    return go_print(value, top=False)


def _need_str(value: Any) -> str:
    if not isinstance(value, str):
        if value is MISSING or value is None:
            raise TemplateError("invalid value; expected string")
        raise TemplateError(f"wrong type for value; expected string; got {_type_name(value)}")
    return value


def _to_int(value: Any) -> int:
    """spf13/cast ToInt as sprig's ``int`` uses it: bad input is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return 0
    return 0


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def _empty(value: Any) -> bool:
    return not _truth(value)


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | dict | bytes):
        return len(value.encode() if isinstance(value, str) else value)
    raise TemplateError(f"len of type {_type_name(value)}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise TemplateError(f"value has type {_type_name(key)}; should be string")
            item = item.get(key)
        elif isinstance(item, list | tuple | str):
            if isinstance(key, bool) or not isinstance(key, int):
                raise TemplateError(f"cannot index slice/array with type {_type_name(key)}")
            if not 0 <= key < len(item):
                raise TemplateError(f"index out of range: {key}")
            item = item[key] if not isinstance(item, str) else item.encode()[key]
        elif item is None or item is MISSING:
            raise TemplateError("index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {_type_name(item)}")
    return item


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _format_one(flags: str, width: str | None, prec: str | None, verb: str, arg: Any) -> str:
    if verb in ("v", "s") and isinstance(arg, str):
        text = arg if prec is None else arg[: int(prec)]
    elif verb == "v" or (verb == "s" and isinstance(arg, list | dict)):
        text = go_print(arg, top=False)
    elif verb == "d" and isinstance(arg, int) and not isinstance(arg, bool):
        text = str(arg)
    elif verb in "feEgG" and isinstance(arg, float | int) and not isinstance(arg, bool):
        text = (
            _go_float(float(arg))
            if verb == "g" and prec is None
            else f"%{'.' + prec if prec else ''}{verb}" % arg
        )
        if verb == "f" and prec is None:
            text = f"{float(arg):f}"
    elif verb == "q" and isinstance(arg, str):
        text = _go_quote(arg)
    elif verb == "t" and isinstance(arg, bool):
        text = "true" if arg else "false"
    elif verb in "xX" and isinstance(arg, int | str) and not isinstance(arg, bool):
        text = arg.encode().hex() if isinstance(arg, str) else format(arg, "x")
        text = text.upper() if verb == "X" else text
    else:
        return f"%!{verb}({_type_name(arg)}={go_print(arg, top=False)})"
    if width and width != "*":
        text = (
            text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        )
    return text


def _printf(fmt: Any, *args: Any) -> str:
    pattern = _need_str(fmt)
    remaining = list(args)
    out: list[str] = []
    last = 0
    for match in _VERB.finditer(pattern):
        out.append(pattern[last : match.start()])
        last = match.end()
        flags, width, prec, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if not remaining:
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(flags, width, prec, verb, remaining.pop(0)))
    out.append(pattern[last:])
    if remaining:
        out.append(
            "%!(EXTRA " + ", ".join(f"{_type_name(a)}={go_print(a, top=False)}" for a in remaining) + ")"
        )
    return "".join(out)


def _print(*args: Any) -> str:
    # fmt.Sprint adds spaces between operands when neither is a string.
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(arg, top=False))
    return "".join(out)


def _title(text: Any) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), _need_str(text))


def _b64dec(text: Any) -> str:
    try:
        return base64.b64decode(_need_str(text), validate=True).decode("utf-8", "replace")
    except ValueError as exc:
        return f"illegal base64 data: {exc}"


def _from_json(text: Any) -> Any:
    try:
        return go_value(_need_str(text))
    except ValueError:
        return {}


def _to_json(value: Any) -> str:
    try:
        return go_json(value)
    except TemplateError:
        return ""


def _substr(start: Any, end: Any, text: Any) -> str:
    s = _need_str(text)
    a, b = _to_int(start), _to_int(end)
    if a < 0:
        return s[:b]
    if b < 0 or b > len(s):
        return s[a:]
    return s[a:b]


def _trunc(count: Any, text: Any) -> str:
    s, n = _need_str(text), _to_int(count)
    if n < 0:
        return s[max(len(s) + n, 0) :] if len(s) + n > 0 else s
    return s[:n]


def _split(sep: Any, text: Any) -> dict[str, str]:
    return {f"_{i}": part for i, part in enumerate(_strval(text).split(_need_str(sep)))}


def _join(sep: Any, items: Any) -> str:
    if isinstance(items, list | tuple):
        return _need_str(sep).join(_strval(i) for i in items if i is not None)
    return _strval(items)


def _dict(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        out[_strval(pairs[i])] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return out


def _get(mapping: Any, key: Any) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(_need_str(key), "")
    return ""


def _list_of(items: Any) -> list[Any]:
    if isinstance(items, list | tuple):
        return list(items)
    raise TemplateError(f"cannot find first on type {_type_name(items)}")


def _int_op(fn: Callable[[int, int], int]) -> Callable[..., int]:
    def apply(*args: Any) -> int:
        values = [_to_int(a) for a in args]
        result = values[0]
        for v in values[1:]:
            result = fn(result, v)
        return result

    return apply


def _div(a: Any, b: Any) -> int:
    x, y = _to_int(a), _to_int(b)
    if y == 0:
        raise TemplateError("integer divide by zero")
    return int(x / y)


def _mod(a: Any, b: Any) -> int:
    x, y = _to_int(a), _to_int(b)
    if y == 0:
        raise TemplateError("integer divide by zero")
    return int(math.fmod(x, y))


def _regex(pattern: Any) -> re.Pattern[str]:
    try:
        return re.compile(_need_str(pattern))
    except re.error as exc:
        raise TemplateError(f"error parsing regexp: {exc}") from None


def _indent(spaces: Any, text: Any) -> str:
    pad = " " * _to_int(spaces)
    return pad + _need_str(text).replace("\n", "\n" + pad)


def _ternary(yes: Any, no: Any, cond: Any) -> Any:
    return yes if cond is True else no


def _coalesce(*values: Any) -> Any:
    for value in values:
        if not _empty(value):
            return value
    return None


def _keys(*maps: Any) -> list[str]:
    return [k for m in maps if isinstance(m, dict) for k in m]


_FUNCS: dict[str, Callable[..., Any]] = {
    # Go builtins ("and"/"or" are evaluated lazily in _Exec.logical).
    "and": lambda *a: a[-1],
    "or": lambda *a: a[-1],
    "not": lambda value: not _truth(value),
    "len": _len,
    "index": _index,
    "print": _print,
    "printf": _printf,
    "println": lambda *a: " ".join(go_print(x, top=False) for x in a) + "\n",
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _less,
    "le": lambda a, b: _less(a, b) or _eq(a, b),
    "gt": lambda a, b: not (_less(a, b) or _eq(a, b)),
    "ge": lambda a, b: not _less(a, b),
    "html": lambda *a: re.sub(
        r"[<>&'\"]",
        lambda m: {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;"}[m.group(0)],
        _print(*a),
    ),
    "urlquery": lambda *a: __import__("urllib.parse").parse.quote_plus(_print(*a)),
    # sprig: strings
    "upper": lambda s: _need_str(s).upper(),
    "lower": lambda s: _need_str(s).lower(),
    "title": _title,
    "trim": lambda s: _need_str(s).strip(),
    "trimAll": lambda chars, s: _need_str(s).strip(_need_str(chars)),
    "trimPrefix": lambda prefix, s: _need_str(s).removeprefix(_need_str(prefix)),
    "trimSuffix": lambda suffix, s: _need_str(s).removesuffix(_need_str(suffix)),
    "replace": lambda old, new, s: _need_str(s).replace(_need_str(old), _need_str(new)),
    "contains": lambda sub, s: _need_str(sub) in _need_str(s),
    "hasPrefix": lambda prefix, s: _need_str(s).startswith(_need_str(prefix)),
    "hasSuffix": lambda suffix, s: _need_str(s).endswith(_need_str(suffix)),
    "quote": lambda *a: " ".join(_go_quote(_strval(x)) for x in a if x is not None and x is not MISSING),
    "squote": lambda *a: " ".join(f"'{_strval(x)}'" for x in a if x is not None and x is not MISSING),
    "nospace": lambda s: re.sub(r"\s", "", _need_str(s)),
    "repeat": lambda count, s: _need_str(s) * max(_to_int(count), 0),
    "substr": _substr,
    "trunc": _trunc,
    "indent": _indent,
    "nindent": lambda spaces, s: "\n" + _indent(spaces, s),
    "split": _split,
    "splitList": lambda sep, s: _need_str(s).split(_need_str(sep)),
    "join": _join,
    "toString": _strval,
    "b64enc": lambda s: base64.b64encode(_need_str(s).encode()).decode(),
    "b64dec": _b64dec,
    "sha256sum": lambda s: hashlib.sha256(_need_str(s).encode()).hexdigest(),
    "regexMatch": lambda pattern, s: _regex(pattern).search(_need_str(s)) is not None,
    "regexFind": lambda pattern, s: m.group(0) if (m := _regex(pattern).search(_need_str(s))) else "",
    "regexReplaceAll": lambda pattern, s, repl: _regex(pattern).sub(
        re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", _need_str(repl)), _need_str(s)
    ),
    "snakecase": lambda s: re.sub(
        r"[\s\-]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", _need_str(s))
    ).lower(),
    "kebabcase": lambda s: re.sub(
        r"[\s_]+", "-", re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", _need_str(s))
    ).lower(),
    "camelcase": lambda s: "".join(p[:1].upper() + p[1:] for p in re.split(r"[\s_\-]+", _need_str(s)) if p),
    "sha1sum": lambda s: hashlib.sha1(_need_str(s).encode()).hexdigest(),
    "typeOf": _type_name,
    "kindOf": lambda v: {"<nil>": "invalid", "map[string]interface {}": "map", "[]interface {}": "slice"}.get(
        _type_name(v), _type_name(v)
    ),
    # sprig: defaults, conversion, JSON
    "default": lambda default, *given: given[0] if given and not _empty(given[0]) else default,
    "empty": _empty,
    "coalesce": _coalesce,
    "ternary": _ternary,
    "int": _to_int,
    "int64": _to_int,
    "float64": _to_float,
    "atoi": lambda s: _to_int(s) if isinstance(s, str) and re.fullmatch(r"[-+]?\d+", s) else 0,
    "toJson": _to_json,
    "toRawJson": lambda v: go_json(v, escape_html=False),
    "toPrettyJson": lambda v: go_json(v, indent="  "),
    "fromJson": _from_json,
    # sprig: lists and dicts
    "list": lambda *a: list(a),
    "first": lambda items: (_list_of(items) or [None])[0],
    "last": lambda items: (_list_of(items) or [None])[-1],
    "has": lambda needle, items: needle in _list_of(items),
    "dict": _dict,
    "get": _get,
    "hasKey": lambda m, key: isinstance(m, dict) and _need_str(key) in m,
    "keys": _keys,
    "values": lambda m: list(m.values()) if isinstance(m, dict) else [],
    # sprig: integer math (sprig converts with cast.ToInt64)
    "add": _int_op(lambda a, b: a + b),
    "add1": lambda a: _to_int(a) + 1,
    "sub": _int_op(lambda a, b: a - b),
    "mul": _int_op(lambda a, b: a * b),
    "div": _div,
    "mod": _mod,
    "max": _int_op(max),
    "min": _int_op(min),
}
