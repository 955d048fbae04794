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
builtins and the sprig functions listed in ``sprig.FUNCS``. Not supported:
``define``/``template``/``block``, methods. Templates compile once to a tree;
execution raises :class:`TemplateError` with Go-like messages.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from knevents.sensors import govalues, sprig

__all__ = ["MISSING", "Template", "TemplateError", "compile_template", "go_json", "go_print", "go_value"]


TemplateError = govalues.TemplateError
MISSING = govalues.MISSING
go_print = govalues.go_print
go_value = govalues.go_value
go_json = govalues.go_json


# --- lexing -------------------------------------------------------------------------------

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


def _action_body(source: str, pos: int) -> tuple[str, int]:
    """The text of the action starting at ``pos`` and the index just past its ``}}``."""
    stripped = pos
    while stripped < len(source) and source[stripped].isspace():
        stripped += 1
    if source.startswith("/*", stripped):
        end = source.find("*/", stripped + 2)
        if end < 0:
            raise TemplateError("unclosed comment")
        close = source.find("}}", end + 2)
        if close < 0 or source[end + 2 : close].strip() not in ("", "-"):
            raise TemplateError("comment ends before closing delimiter")
        return source[pos:close], close + 2
    index = pos
    while index < len(source):
        char = source[index]
        if char in "\"'`":
            index = _skip_quoted(source, index)
            continue
        if source.startswith("}}", index):
            return source[pos:index], index + 2
        index += 1
    raise TemplateError("unclosed action")


def _skip_quoted(source: str, index: int) -> int:
    quote = source[index]
    index += 1
    while index < len(source):
        char = source[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            return index + 1
        if char == "\n" and quote != "`":
            break
        index += 1
    raise TemplateError("unterminated quoted string")


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
        """Text and action bodies, with Go's trim markers applied; ``}}`` inside quotes does not end an action."""
        items: list[tuple[str, str]] = []
        pos, trim_next = 0, False
        while True:
            start = source.find("{{", pos)
            text = source[pos:] if start < 0 else source[pos:start]
            if trim_next:
                text = text.lstrip()
            if start < 0:
                if text:
                    items.append(("text", text))
                return items
            inner = start + 2
            trim_left = source[inner : inner + 1] == "-" and source[inner + 1 : inner + 2].isspace()
            if trim_left:
                text, inner = text.rstrip(), inner + 2
            if text:
                items.append(("text", text))
            body, pos = _action_body(source, inner)
            trim_next = len(body) >= 2 and body[-1] == "-" and body[-2].isspace()
            if trim_next:
                body = body[:-2]
            if not body.strip().startswith("/*"):
                items.append(("action", body))

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
            if tok.text not in sprig.FUNCS:
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


def _field(value: Any, name: str) -> Any:
    if value is MISSING:
        return MISSING
    if value is None:
        raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(value, dict):
        return value.get(name, MISSING)
    raise TemplateError(f"can't evaluate field {name} in type {govalues.type_name(value)}")


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
                    branch = node.body if govalues.truth(self.pipe(node.pipe, dot)) else node.orelse
                    self.run(branch, dot)
                finally:
                    self.scopes.pop()
            elif kind == "with":
                assert node.pipe is not None
                self.scopes.append({})
                try:
                    value = self.pipe(node.pipe, dot)
                    if govalues.truth(value):
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
                return sprig.FUNCS[name](*args)
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
            if govalues.truth(value) != (name == "and"):
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
