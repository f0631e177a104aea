"""Typed reading of compose values: the schema-like checks, with file:line:column messages.

Owns the accessors that turn a node into an int, a bool, a duration, a size, a list or a
mapping, and the wording of their errors (``services.web.deploy.replicas must be an integer,
got "three"``). Does not own which key has which type (normalize.py decides, key by key).
Invariant: every failure is a ComposeError at the offending value's position, naming its
key path and what is allowed. Numbers written as strings are accepted where compose accepts
them (they come from interpolation); nothing else is coerced.

Also owns collecting several errors at once: inside ``collecting()`` (load_stack opens one),
a ComposeError raised in a ``guard()`` block is recorded and the caller carries on with the
next key, and ``check_keys`` records every unknown key of a mapping (each with a "did you
mean" when a known key is close), so one run reports every problem of a file;
``raise_collected`` raises them together as ComposeErrors. Outside ``collecting()`` the
first error is raised as before.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from swarmlite.api.durations import parse_duration
from swarmlite.compose.loader import Map, Node, Scalar, Seq
from swarmlite.errors import ComposeError, ComposeErrors

_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_TRUE = {"true", "yes", "on", "y", "1"}
_FALSE = {"false", "no", "off", "n", "0"}


_PROBLEMS: ContextVar[list[ComposeError] | None] = ContextVar("compose_problems", default=None)


@contextmanager
def collecting() -> Iterator[list[ComposeError]]:
    """Collect the errors that ``guard()`` blocks raise inside this block (nested: the
    innermost collects)."""
    problems: list[ComposeError] = []
    token = _PROBLEMS.set(problems)
    try:
        yield problems
    finally:
        _PROBLEMS.reset(token)


@contextmanager
def guard() -> Iterator[None]:
    """Record a ComposeError raised in the block and carry on after it (only inside
    ``collecting()``; elsewhere the error goes through)."""
    try:
        yield
    except ComposeError as exc:
        problems = _PROBLEMS.get()
        if problems is None:
            raise
        for problem in exc.problems if isinstance(exc, ComposeErrors) else [exc]:
            if not any(_same(problem, seen) for seen in problems):
                problems.append(problem)


def report(error: ComposeError) -> None:
    """Record ``error`` inside ``collecting()`` and return; raise it elsewhere."""
    with guard():
        raise error


def _same(one: ComposeError, other: ComposeError) -> bool:
    return one.message == other.message and one.hint == other.hint


def raise_collected(problems: list[ComposeError]) -> None:
    """Raise what was collected: one error as itself, several together, in file order."""
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    files = list(dict.fromkeys(p.path for p in problems))
    ordered = sorted(problems, key=lambda p: (files.index(p.path), p.line or 0, p.column or 0))
    raise ComposeErrors(ordered)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``; did you mean "image"?`` when one of ``known`` is close to ``word``, else ""."""
    close = difflib.get_close_matches(word, [k for k in known if k != word], n=1, cutoff=0.7)
    return f"; did you mean {json.dumps(close[0])}?" if close else ""


def describe(node: Node) -> str:
    """A value as a message shows it: ``"three"``, ``3``, ``null``, ``a mapping``."""
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    assert isinstance(node, Scalar)
    if node.value is None:
        return "null"
    if isinstance(node.value, bool):
        return "true" if node.value else "false"
    if isinstance(node.value, str):
        return json.dumps(node.value, ensure_ascii=False)
    return str(node.value)


def fail(node: Node, path: str, expected: str, *, hint: str | None = None) -> ComposeError:
    return node.mark.error(f"{path} must be {expected}, got {describe(node)}", hint=hint)


def as_map(node: Node, path: str) -> Map:
    if not isinstance(node, Map):
        raise fail(node, path, "a mapping")
    return node


def as_seq(node: Node, path: str) -> Seq:
    if not isinstance(node, Seq):
        raise fail(node, path, "a list")
    return node


def check_keys(node: Map, path: str, allowed: Collection[str]) -> None:
    """Refuse keys outside ``allowed`` (``x-`` extension keys always pass); inside
    ``collecting()`` every one is recorded and the caller goes on (it ignores them)."""
    for key in node.items:
        if key not in allowed and not key.startswith("x-"):
            listed = ", ".join(sorted(allowed))
            report(
                node.key_marks[key].error(
                    f"{path}.{key} is not a known key (allowed here: {listed})"
                    + did_you_mean(key, allowed)
                )
            )


def as_str(node: Node, path: str, *, allow_empty: bool = True) -> str:
    if isinstance(node, Scalar) and isinstance(node.value, str):
        if not allow_empty and not node.value:
            raise fail(node, path, "a non-empty string")
        return node.value
    if isinstance(node, Scalar) and isinstance(node.value, int | float) and not _is_bool(node):
        return _number_text(node.value)
    raise fail(node, path, "a string")


def as_scalar_text(node: Node, path: str) -> str:
    """A string, number or boolean as text (environment values, labels, sysctls)."""
    if isinstance(node, Scalar) and node.value is not None:
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        if isinstance(node.value, int | float):
            return _number_text(node.value)
        return node.value
    raise fail(node, path, "a string, number or boolean")


def _is_bool(node: Scalar) -> bool:
    return isinstance(node.value, bool)


def _number_text(value: float) -> str:
    return str(value)


def as_int(node: Node, path: str, *, minimum: int | None = None) -> int:
    value: int | None = None
    if isinstance(node, Scalar) and not _is_bool(node):
        if isinstance(node.value, int):
            value = node.value
        elif isinstance(node.value, str) and re.fullmatch(r"[-+]?\d+", node.value.strip()):
            value = int(node.value)
    if value is None:
        raise fail(node, path, "an integer")
    if minimum is not None and value < minimum:
        raise node.mark.error(f"{path} must be at least {minimum}, got {value}")
    return value


def as_float(node: Node, path: str, *, minimum: float | None = None) -> float:
    value: float | None = None
    if isinstance(node, Scalar) and not _is_bool(node):
        if isinstance(node.value, int | float):
            value = float(node.value)
        elif isinstance(node.value, str):
            try:
                value = float(node.value)
            except ValueError:
                value = None
    if value is None or math.isnan(value):
        raise fail(node, path, "a number")
    if minimum is not None and value < minimum:
        raise node.mark.error(f"{path} must be at least {minimum:g}, got {value:g}")
    return value


def as_bool(node: Node, path: str) -> bool:
    if isinstance(node, Scalar):
        if isinstance(node.value, bool):
            return node.value
        if isinstance(node.value, str):
            word = node.value.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
    raise fail(node, path, "a boolean (true or false)")


def as_duration(node: Node, path: str) -> float:
    if isinstance(node, Scalar) and not _is_bool(node):
        if isinstance(node.value, int | float) and node.value >= 0:
            return float(node.value)
        if isinstance(node.value, str):
            seconds = parse_duration(node.value)
            if seconds is not None and seconds >= 0:
                return seconds
    raise fail(node, path, 'a duration such as "10s", "1m30s" or "500ms"')


def parse_bytes(text: str) -> int | None:
    match = _BYTES.match(text.strip())
    if match is None:
        return None
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])


def as_bytes(node: Node, path: str) -> int:
    if isinstance(node, Scalar) and not _is_bool(node):
        if isinstance(node.value, int) and node.value >= 0:
            return node.value
        if isinstance(node.value, str):
            size = parse_bytes(node.value)
            if size is not None:
                return size
    raise fail(node, path, 'a size such as "512M", "1g" or a number of bytes')


def as_str_list(node: Node, path: str) -> list[str]:
    seq = as_seq(node, path)
    return [as_str(item, f"{path}[{i}]") for i, item in enumerate(seq.items)]


def as_str_or_list(node: Node, path: str) -> str | list[str]:
    if isinstance(node, Seq):
        return as_str_list(node, path)
    if isinstance(node, Scalar) and isinstance(node.value, str | int | float):
        return as_str(node, path)
    raise fail(node, path, "a string or a list of strings")


def as_key_values(node: Node, path: str, *, allow_bare: bool = True) -> dict[str, str | None]:
    """A mapping, or a list of ``KEY=value`` (``KEY`` alone: None), as environment takes."""
    result: dict[str, str | None] = {}
    if isinstance(node, Map):
        for key, value in node.items.items():
            is_null = isinstance(value, Scalar) and value.value is None
            result[key] = None if is_null else as_scalar_text(value, f"{path}.{key}")
        return result
    if isinstance(node, Seq):
        for i, item in enumerate(node.items):
            text = as_str(item, f"{path}[{i}]")
            name, sep, rest = text.partition("=")
            if not name or (not sep and not allow_bare):
                raise fail(item, f"{path}[{i}]", 'of the form "KEY=value"')
            result[name] = rest if sep else None
        return result
    raise fail(node, path, 'a mapping or a list of "KEY=value" strings')


def one_of(node: Node, path: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    if isinstance(node, Scalar) and isinstance(node.value, str) and node.value in allowed:
        return node.value
    expected = "one of " + ", ".join(json.dumps(c) for c in allowed)
    written = node.value if isinstance(node, Scalar) and isinstance(node.value, str) else None
    suggestion = did_you_mean(written, allowed) if written is not None else ""
    raise node.mark.error(f"{path} must be {expected}, got {describe(node)}{suggestion}")
