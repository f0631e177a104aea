"""The functions and the value printing of Go templates, as Go and docker's CLI have them.

Owns what each template function does, in docker's words (``json``, ``join``, ``split``,
``title``, ``lower``, ``upper``, ``pad``, ``truncate``: docker's ``templates`` package) and
Go's (``index``, ``len``, ``printf``, ``print``, ``println``, ``eq``, ``ne``, ``lt``,
``le``, ``gt``, ``ge``, ``and``, ``or``, ``not``), how a value prints (Go's ``%v``: nil is
``<no value>`` at the top and ``<nil>`` inside, lists ``[a b]``, maps ``map[k:v]`` with
sorted keys), Go's truth, and TemplateError. A function refuses what Go would with
TemplateError; the template adds where. Pure.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any


class TemplateError(ValueError):
    """A template that cannot be parsed (``syntax``) or executed; the message is Go's."""

    def __init__(self, message: str, *, syntax: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.syntax = syntax


# --------------------------------------------------------------------------- values


def go_type(value: Any) -> str:
    """The Go type a JSON value would have, for error messages."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return str(getattr(value, "type_name", "map[string]interface {}"))
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


def _float(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _inner(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, bytes):
        return "[" + " ".join(str(byte) for byte in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_inner(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_inner(item) for item in value) + "]"
    return str(value)


def show(value: Any) -> str:
    """``{{.X}}``'s output: Go's ``%v``, and ``<no value>`` for nil."""
    return "<no value>" if value is None else _inner(value)


def truth(value: Any) -> bool:
    """Go's truth in ``if``: false, 0, nil and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | bytes | list | tuple | Mapping):
        return bool(value)
    return True


def plain(value: Any) -> Any:
    """``value`` as JSON holds it: a Record sorted by key and without its methods."""
    if isinstance(value, Mapping):
        keys = sorted(value) if hasattr(value, "type_name") else list(value)
        return {k: plain(value[k]) for k in keys if not callable(value[k])}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def to_json(value: Any, *, indent: int | None = None) -> str:
    """Go's ``json.Marshal``, HTML left unescaped as docker's ``json`` function does."""
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(plain(value), ensure_ascii=False, separators=separators, indent=indent)


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)")


def unquote(text: str) -> str:
    """A Go double-quoted string literal's value."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "xuU":
            return chr(int(code[1:], 16))
        if code[0].isdigit():
            return chr(int(code, 8))
        return _ESCAPES.get(code, code)

    return _ESCAPE.sub(one, text[1:-1])


# --------------------------------------------------------------------------- docker's functions


def _split(text: str, sep: str) -> list[str]:
    return list(text) if sep == "" else text.split(sep)


def _join(items: Any, sep: str) -> str:
    if items is None:
        return ""
    if isinstance(items, Mapping):
        return sep.join(sorted(_inner(item) for item in items.values()))
    if isinstance(items, list | tuple):
        return sep.join(_inner(item) for item in items)
    raise TemplateError(f"expected slice, got {go_type(items)}")


def _title(text: str) -> str:
    out, previous = [], " "
    for char in str(text):
        boundary = not (previous.isalnum() or previous == "_")
        out.append(char.upper() if boundary else char)
        previous = char
    return "".join(out)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(f"wrong type for value; expected int; got {go_type(value)}")
    return value


def _pad(text: str, prefix: Any, suffix: Any) -> str:
    text = _inner(text)
    return " " * _int(prefix) + text + " " * _int(suffix) if text else text


def _truncate(text: str, length: Any) -> str:
    return _inner(text)[: _int(length)]


# --------------------------------------------------------------------------- Go's built-ins


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is None:
            raise TemplateError("index of untyped nil")
        if isinstance(item, Mapping):
            if key in item:
                item = item[key]
            else:  # Go gives the map's zero value: "" in a map of strings (labels)
                item = "" if all(isinstance(v, str) for v in item.values()) else None
        elif isinstance(item, list | tuple | str):
            position = _int(key)
            if not 0 <= position < len(item):
                raise TemplateError(f"index out of range: {position}")
            item = ord(item[position]) if isinstance(item, str) else item[position]
        else:
            raise TemplateError(f"can't index item of type {go_type(item)}")
    return item


def _len(item: Any) -> int:
    if isinstance(item, str | list | tuple | Mapping):
        return len(item)
    raise TemplateError(f"len of type {go_type(item)}")


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _printf(pattern: str, *args: Any) -> str:
    values = list(args)

    def one(match: re.Match[str]) -> str:
        flags, width, precision, verb = match.groups()
        if verb == "%":
            return "%"
        if not values:
            return f"%!{verb}(MISSING)"
        value = values.pop(0)
        spec = "%" + flags + (width or "") + (f".{precision}" if precision else "")
        if verb in "dxXo" and isinstance(value, int) and not isinstance(value, bool):
            return (spec + verb) % value
        if verb in "feEgG" and isinstance(value, int | float) and not isinstance(value, bool):
            return (spec + verb) % value
        if verb in "xX" and isinstance(value, str):
            return (spec + "s") % value.encode().hex()
        if verb == "q" and isinstance(value, str):
            return (spec + "s") % quote(value)
        if verb in "vst":
            return (spec + "s") % _inner(value)
        return f"%!{verb}({go_type(value)}={_inner(value)})"

    text = _VERB.sub(one, str(pattern))
    if values:
        text += "%!(EXTRA " + ", ".join(f"{go_type(v)}={_inner(v)}" for v in values) + ")"
    return text


def _print(*args: Any) -> str:
    out = ""
    for index, arg in enumerate(args):
        if index and not isinstance(arg, str) and not isinstance(args[index - 1], str):
            out += " "
        out += _inner(arg)
    return out


def _println(*args: Any) -> str:
    return " ".join(_inner(arg) for arg in args) + "\n"


def _comparable(a: Any, b: Any) -> bool:
    def kind(value: Any) -> str:
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int | float):
            return "number"
        return type(value).__name__

    if a is None or b is None or kind(a) == kind(b):
        return True
    raise TemplateError("incompatible types for comparison")


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    return any(_comparable(a, b) and a == b for b in others)


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        raise TemplateError("invalid type for comparison")
    _comparable(a, b)
    return a, b


def _and(first: Any, *rest: Any) -> Any:
    for value in (first, *rest):
        if not truth(value):
            return value
    return rest[-1] if rest else first


def _or(first: Any, *rest: Any) -> Any:
    for value in (first, *rest):
        if truth(value):
            return value
    return rest[-1] if rest else first


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": lambda value: to_json(value),
    "split": _split,
    "join": _join,
    "title": _title,
    "lower": lambda text: _inner(text).lower(),
    "upper": lambda text: _inner(text).upper(),
    "pad": _pad,
    "truncate": _truncate,
    "index": _index,
    "len": _len,
    "printf": _printf,
    "print": _print,
    "println": _println,
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": lambda a, b: (lambda x, y: x < y)(*_ordered(a, b)),
    "le": lambda a, b: (lambda x, y: x <= y)(*_ordered(a, b)),
    "gt": lambda a, b: (lambda x, y: x > y)(*_ordered(a, b)),
    "ge": lambda a, b: (lambda x, y: x >= y)(*_ordered(a, b)),
    "and": _and,
    "or": _or,
    "not": lambda value: not truth(value),
}
"""Every function a template may call."""

_PASS_THROUGH = ("json", "split", "join", "title", "lower", "upper", "truncate", "index", "len")
HEADER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **FUNCTIONS,
    **{name: (lambda value, *rest: value) for name in _PASS_THROUGH},
}
"""For a table's header row: as docker's, the functions that would change a column's
name leave it as it is (``{{.Name | upper}}`` is headed NAME); ``pad`` still pads."""
