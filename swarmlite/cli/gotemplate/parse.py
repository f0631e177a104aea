"""Parsing Go's text/template: the lexer (text, actions, trim markers, comments) and a
parser into nodes (text, pipelines, if/range/with blocks).

Owns the syntax and Go's words for a template that does not parse (``template: :1:
unclosed action``, ``function "x" not defined``, ``undefined variable "$x"``); what the
nodes do is ``gotemplate.execute``'s. Functions are known at parse time, as in Go, so that
a misspelt one is refused before any data is seen. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from swarmlite.cli.gotemplate.functions import TemplateError, unquote

# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class Operand:
    kind: str  # field | variable | function | literal | dot | pipe
    pos: int
    text: str  # the source, for error messages: <.Foo>
    chain: tuple[str, ...] = ()  # field names after the operand
    name: str = ""  # variable or function name
    value: Any = None  # literal value, or the Pipeline in parentheses


@dataclass(frozen=True)
class Pipeline:
    pos: int
    text: str
    commands: tuple[tuple[Operand, ...], ...]
    declare: tuple[str, ...] = ()  # $x := ...  /  range $k, $v := ...
    assign: bool = False  # $x = ...


@dataclass
class Block:
    keyword: str  # if | range | with
    pipe: Pipeline
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


Node = str | Pipeline | Block

# --------------------------------------------------------------------------- lexing

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+))
  | (?P<field>(?:\.[A-Za-z_]\w*)+|\.)
  | (?P<variable>\$\w*(?:\.[A-Za-z_]\w*)*)
  | (?P<ident>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
  | (?P<declare>:=)
  | (?P<punct>[|(),=])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block"}
_UNSUPPORTED = {"define", "template", "block", "break", "continue"}
_LITERALS = {"true": True, "false": False, "nil": None}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Action:
    tokens: tuple[Token, ...]
    pos: int  # where the action's content starts


def line_of(source: str, pos: int) -> int:
    return source.count("\n", 0, pos) + 1


def _lex(source: str) -> list[str | Action]:
    """Text and actions, trim markers applied, comments dropped."""
    items: list[str | Action] = []
    at = 0
    while True:
        start = source.find("{{", at)
        if start < 0:
            items.append(source[at:])
            return [item for item in items if item != ""]
        text = source[at:start]
        inner = start + 2
        if source.startswith("-", inner) and source[inner + 1 : inner + 2].isspace():
            text = text.rstrip()
            inner += 2
        items.append(text)
        if source.startswith("/*", inner):
            end = source.find("*/", inner)
            if end < 0:
                raise _syntax(source, start, "unclosed comment")
            if source.startswith("}}", end + 2):
                at = end + 4
            elif source.startswith(" -}}", end + 2):
                at = _skip_space(source, end + 6)
            else:
                raise _syntax(source, start, "comment ends before closing delimiter")
            continue
        tokens, at = _lex_action(source, inner, start)
        items.append(Action(tokens, inner))


def _skip_space(source: str, at: int) -> int:
    while at < len(source) and source[at].isspace():
        at += 1
    return at


def _lex_action(source: str, at: int, start: int) -> tuple[tuple[Token, ...], int]:
    tokens: list[Token] = []
    while True:
        if at >= len(source):
            raise _syntax(source, start, "unclosed action")
        if source.startswith("}}", at):
            return tuple(tokens), at + 2
        if source.startswith("-}}", at) and at > 0 and source[at - 1].isspace():
            return tuple(tokens), _skip_space(source, at + 3)
        match = _TOKEN.match(source, at)
        if match is None:
            if source.startswith("\n", at):
                raise _syntax(source, start, "unclosed action")
            char = source[at]
            if char in '"`':
                raise _syntax(source, at, "unterminated quoted string")
            raise _syntax(source, at, f"bad character U+{ord(char):04X} {char!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), at))
        at = match.end()


def _syntax(source: str, pos: int, message: str) -> TemplateError:
    return TemplateError(f"template: :{line_of(source, pos)}: {message}", syntax=True)


# --------------------------------------------------------------------------- parsing


class Parser:
    def __init__(self, source: str, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.source = source
        self.functions = functions
        self.items = _lex(source)
        self.at = 0
        self.scope: list[str] = ["$"]

    def error(self, pos: int, message: str) -> TemplateError:
        return _syntax(self.source, pos, message)

    def parse(self) -> list[Node]:
        nodes, end = self.nodes()
        if end is not None:
            raise self.error(end.pos, f"unexpected {{{{{end.tokens[0].text}}}}}")
        return nodes

    def nodes(self) -> tuple[list[Node], Action | None]:
        """Nodes up to an ``else`` or ``end`` (returned) or the end of the template."""
        nodes: list[Node] = []
        while self.at < len(self.items):
            item = self.items[self.at]
            self.at += 1
            if isinstance(item, str):
                nodes.append(item)
                continue
            if not item.tokens:
                raise self.error(item.pos, "missing value for command")
            first = item.tokens[0]
            if first.kind == "ident" and first.text in ("else", "end"):
                return nodes, item
            if first.kind == "ident" and first.text in _UNSUPPORTED:
                raise self.error(item.pos, f"{{{{{first.text}}}}} is not supported here")
            if first.kind == "ident" and first.text in ("if", "range", "with"):
                nodes.append(self.block(first.text, item, item.tokens[1:]))
            else:
                nodes.append(self.pipeline(item.tokens, item.pos, declare_ok=True))
        return nodes, None

    def block(self, keyword: str, action: Action, tokens: Sequence[Token]) -> Block:
        mark = len(self.scope)
        block = Block(keyword, self.pipeline(tokens, action.pos, declare_ok=keyword != "if"))
        block.body, end = self.nodes()
        del self.scope[mark + len(block.pipe.declare) :]
        if end is None:
            raise self.error(len(self.source), "unexpected EOF")
        words = end.tokens
        if words[0].text == "else":
            if len(words) > 1 and words[1].text == keyword and keyword != "range":
                block.orelse = [self.block(keyword, end, words[2:])]
                del self.scope[mark:]
                return block
            if len(words) > 1:
                raise self.error(end.pos, f"unexpected {words[1].text!r} after else")
            block.orelse, end = self.nodes()
            if end is None:
                raise self.error(len(self.source), "unexpected EOF")
            if end.tokens[0].text != "end" or len(end.tokens) > 1:
                raise self.error(end.pos, "expected end; found else")
        elif len(words) > 1:
            raise self.error(end.pos, f"unexpected {words[1].text!r} in end")
        del self.scope[mark:]
        return block

    def pipeline(self, tokens: Sequence[Token], pos: int, *, declare_ok: bool) -> Pipeline:
        tokens = list(tokens)
        if not tokens:
            raise self.error(pos, "missing value for pipeline")
        declare: list[str] = []
        assign = False
        for index, token in enumerate(tokens):
            if token.kind in ("declare", "punct") and token.text in (":=", "="):
                names = tokens[:index]
                if (
                    not declare_ok
                    or not names
                    or any(t.kind != "variable" or "." in t.text for t in names[::2])
                    or any(t.text != "," for t in names[1::2])
                ):
                    raise self.error(token.pos, f"unexpected {token.text!r} in command")
                declare = [t.text for t in names[::2]]
                assign = token.text == "="
                tokens = tokens[index + 1 :]
                break
        commands = self.commands(tokens, pos)
        if assign:
            for name in declare:
                self.variable(name, pos)
        else:
            self.scope += declare
        text = self.source[tokens[0].pos : tokens[-1].pos + len(tokens[-1].text)] if tokens else ""
        return Pipeline(pos, text, tuple(commands), tuple(declare), assign)

    def commands(self, tokens: list[Token], pos: int) -> list[tuple[Operand, ...]]:
        commands: list[tuple[Operand, ...]] = []
        current: list[Operand] = []
        at = 0
        while at < len(tokens):
            token = tokens[at]
            if token.kind == "punct" and token.text == "|":
                if not current:
                    raise self.error(token.pos, "missing value for command")
                commands.append(tuple(current))
                current = []
                at += 1
                continue
            operand, at = self.operand(tokens, at)
            current.append(operand)
        if not current:
            raise self.error(pos, "missing value for command")
        commands.append(tuple(current))
        return commands

    def operand(self, tokens: list[Token], at: int) -> tuple[Operand, int]:
        token = tokens[at]
        kind, text, pos = token.kind, token.text, token.pos
        if kind == "field":
            names = tuple(text.split(".")[1:]) if text != "." else ()
            return Operand("field" if names else "dot", pos, text, names), at + 1
        if kind == "variable":
            name, *fields = text.split(".")
            self.variable(name, pos)
            return Operand("variable", pos, text, tuple(fields), name=name), at + 1
        if kind in ("string", "raw", "number"):
            return Operand("literal", pos, text, value=_literal(kind, text)), at + 1
        if kind == "ident":
            if text in _LITERALS:
                return Operand("literal", pos, text, value=_LITERALS[text]), at + 1
            if text in _KEYWORDS or text in _UNSUPPORTED:
                raise self.error(pos, f"unexpected <{text}> in command")
            if "." in text or text not in self.functions:
                raise self.error(pos, f'function "{text.split(".")[0]}" not defined')
            return Operand("function", pos, text, name=text), at + 1
        if kind == "punct" and text == "(":
            depth, end = 0, at
            for end in range(at, len(tokens)):
                if tokens[end].kind == "punct":
                    depth += {"(": 1, ")": -1}.get(tokens[end].text, 0)
                if depth == 0:
                    break
            if depth:
                raise self.error(pos, "unclosed left paren")
            inner = self.pipeline(tokens[at + 1 : end], pos, declare_ok=False)
            chain: tuple[str, ...] = ()
            following = tokens[end + 1] if end + 1 < len(tokens) else None
            close = tokens[end]
            if following and following.kind == "field" and following.pos == close.pos + 1:
                chain = tuple(following.text.split(".")[1:])
                end += 1
            source = self.source[pos : tokens[end].pos + len(tokens[end].text)]
            return Operand("pipe", pos, source, chain, value=inner), end + 1
        raise self.error(pos, f"unexpected {text!r} in operand")

    def variable(self, name: str, pos: int) -> None:
        if name not in self.scope:
            raise self.error(pos, f'undefined variable "{name}"')


def _literal(kind: str, text: str) -> Any:
    if kind == "raw":
        return text[1:-1]
    if kind == "string":
        return unquote(text)
    if text.lower().lstrip("-").startswith("0x"):
        return int(text, 16)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return float(text)
