"""Executing a parsed Go template on plain Python data, as Go's text/template does.

Owns the meaning of each node: a field of a mapping (a Record's missing field is an error,
as a Go struct's; a plain mapping's is Go's ``map has no entry for key``), a callable as a
method with arguments, pipelines that pass their value as the last argument, Go's truth
in ``if``/``with``, ``range`` over lists, sorted map keys and integers, variables and their
scopes, and Go's words for what goes wrong there (``template: :1:2: executing "" at
<.Foo>: ...``). Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from swarmlite.cli.gotemplate.functions import FUNCTIONS, TemplateError, go_type, show, truth
from swarmlite.cli.gotemplate.parse import Block, Node, Operand, Parser, Pipeline, line_of


class Record(dict[str, Any]):
    """A listing's row: a Go struct rather than a map. A missing field is an error
    (``can't evaluate field``), and ``{{json .}}`` sorts the keys and leaves out the
    methods that take arguments, as docker's formatter does."""

    type_name = "row"


_NO_PIPE = object()


class Template:
    """A parsed template; ``execute(data)`` returns what it prints."""

    def __init__(
        self, source: str, functions: Mapping[str, Callable[..., Any]] | None = None
    ) -> None:
        self.source = source
        self.functions = dict(FUNCTIONS if functions is None else functions)
        self.nodes = Parser(source, self.functions).parse()

    def execute(self, data: Any) -> str:
        run = _Run(self, data)
        out: list[str] = []
        run.nodes(self.nodes, data, out)
        return "".join(out)


class _Run:
    def __init__(self, template: Template, root: Any) -> None:
        self.template = template
        self.vars: list[tuple[str, Any]] = [("$", root)]

    def error(self, operand: Operand | Pipeline, message: str) -> TemplateError:
        source = self.template.source
        line = line_of(source, operand.pos)
        column = operand.pos - (source.rfind("\n", 0, operand.pos) + 1)
        return TemplateError(
            f'template: :{line}:{column}: executing "" at <{operand.text}>: {message}'
        )

    def nodes(self, nodes: Sequence[Node], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, Pipeline):
                value = self.pipeline(node, dot)
                if not node.declare:
                    out.append(show(value))
            else:
                self.block(node, dot, out)

    def block(self, block: Block, dot: Any, out: list[str]) -> None:
        mark = len(self.vars)
        try:
            if block.keyword == "range":
                self.range(block, dot, out)
                return
            value = self.pipeline(block.pipe, dot, declare=block.keyword == "with")
            if truth(value):
                self.nodes(block.body, value if block.keyword == "with" else dot, out)
            else:
                self.nodes(block.orelse, dot, out)
        finally:
            del self.vars[mark:]

    def range(self, block: Block, dot: Any, out: list[str]) -> None:
        value = self.pipeline(block.pipe, dot, declare=False)
        for key, item in self.iterate(block.pipe, value):
            mark = len(self.vars)
            names = block.pipe.declare
            if len(names) == 1:
                self.vars.append((names[0], item))
            elif len(names) == 2:
                self.vars += [(names[0], key), (names[1], item)]
            self.nodes(block.body, item, out)
            del self.vars[mark:]
        if not truth(value):
            self.nodes(block.orelse, dot, out)

    def iterate(self, pipe: Pipeline, value: Any) -> Iterator[tuple[Any, Any]]:
        if value is None:
            return iter(())
        if isinstance(value, Mapping):
            return ((key, value[key]) for key in sorted(value))
        if isinstance(value, list | tuple):
            return iter(enumerate(value))
        if isinstance(value, int) and not isinstance(value, bool):
            return ((n, n) for n in range(value))
        raise self.error(pipe, f"range can't iterate over {show(value)}")

    def pipeline(self, pipe: Pipeline, dot: Any, *, declare: bool = True) -> Any:
        value: Any = _NO_PIPE
        for command in pipe.commands:
            value = self.command(command, dot, value)
        if pipe.assign:
            for index in range(len(self.vars) - 1, -1, -1):
                if self.vars[index][0] == pipe.declare[0]:
                    self.vars[index] = (pipe.declare[0], value)
                    break
        elif pipe.declare and declare:
            self.vars.append((pipe.declare[0], value))
        return value

    def command(self, operands: Sequence[Operand], dot: Any, piped: Any) -> Any:
        first, rest = operands[0], operands[1:]
        args = [self.argument(operand, dot) for operand in rest]
        if piped is not _NO_PIPE:
            args.append(piped)
        if first.kind == "function":
            return self.call(first, self.template.functions[first.name], args)
        if first.kind in ("field", "variable") and first.chain:
            receiver = self.variable(first) if first.kind == "variable" else dot
            for name in first.chain[:-1]:
                receiver = self.field(first, receiver, name)
            value = self.field(first, receiver, first.chain[-1])
            if callable(value):
                return self.call(first, value, args)
        else:
            value = self.argument(first, dot)
        if args:
            raise self.error(first, f"can't give argument to non-function {first.text}")
        return value

    def argument(self, operand: Operand, dot: Any) -> Any:
        if operand.kind == "literal":
            return operand.value
        if operand.kind == "dot":
            return dot
        if operand.kind == "function":
            return self.call(operand, self.template.functions[operand.name], [])
        if operand.kind == "pipe":
            value = self.pipeline(operand.value, dot, declare=False)
        elif operand.kind == "variable":
            value = self.variable(operand)
        else:
            value = dot
        for name in operand.chain:
            value = self.field(operand, value, name)
            if callable(value):
                value = self.call(operand, value, [])
        return value

    def variable(self, operand: Operand) -> Any:
        for name, value in reversed(self.vars):
            if name == operand.name:
                return value
        raise self.error(operand, f'undefined variable "{operand.name}"')

    def field(self, operand: Operand, receiver: Any, name: str) -> Any:
        if isinstance(receiver, Record):
            if name in receiver:
                return receiver[name]
            raise self.error(operand, f"can't evaluate field {name} in type {receiver.type_name}")
        if isinstance(receiver, Mapping):
            if name in receiver:
                return receiver[name]
            raise self.error(operand, f'map has no entry for key "{name}"')
        if receiver is None:
            raise self.error(operand, f"nil pointer evaluating interface {{}}.{name}")
        kind = go_type(receiver)
        raise self.error(operand, f"can't evaluate field {name} in type {kind}")

    def call(self, operand: Operand, function: Callable[..., Any], args: list[Any]) -> Any:
        try:
            return function(*args)
        except TemplateError as exc:
            raise self.error(operand, f"error calling {operand.name or 'method'}: {exc}") from None
        except TypeError:
            raise self.error(
                operand, f"wrong number of args for {operand.name or operand.text}"
            ) from None
