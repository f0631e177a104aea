"""Variable interpolation in compose values, and the dotenv format of `.env` and `env_file:`.

Owns ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}``, ``$$`` (a literal ``$``) and nested
values inside the braces, as the compose specification describes them. Does not own where
the variables come from (stack.py builds the mapping). Invariant: values are interpolated,
keys never; an unset required variable is a ComposeError at the value's file:line naming
the variable; an unset variable without a default becomes "" with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from swarmlite.compose.loader import Map, Mark, Node, Scalar, Seq, resolve_plain
from swarmlite.compose.validate import guard
from swarmlite.errors import ComposeError

Warn = Callable[[Mark, str], None]

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


def interpolate(text: str, env: Mapping[str, str], mark: Mark, warn: Warn | None = None) -> str:
    """``text`` with every variable replaced; ``$$`` becomes ``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            dollar = text.find("$", i)
            end = len(text) if dollar < 0 else dollar
            out.append(text[i:end])
            i = end
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2, mark)
            out.append(_braced(text[i + 2 : end], env, mark, warn))
            i = end + 1
        else:
            match = _NAME.match(text, i + 1)
            if match is None:  # a lone "$": kept as written
                out.append("$")
                i += 1
                continue
            out.append(_lookup(match.group(), env, mark, warn))
            i = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int, mark: Mark) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise mark.error(f"invalid interpolation format in {text!r}: a `${{` is never closed")


def _braced(body: str, env: Mapping[str, str], mark: Mark, warn: Warn | None) -> str:
    match = _NAME.match(body)
    if match is None:
        raise mark.error(f"invalid interpolation format: ${{{body}}} does not name a variable")
    name, rest = match.group(), body[match.end() :]
    if not rest:
        return _lookup(name, env, mark, warn)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise mark.error(
            f"invalid interpolation format: ${{{body}}} (compose knows :- - :? ? :+ +)"
        )
    arg = rest[len(operator) :]
    value = env.get(name)
    unset = value is None
    empty = unset or value == ""
    missing = empty if operator.startswith(":") else unset
    if operator.endswith("-"):
        return interpolate(arg, env, mark, warn) if missing else (value or "")
    if operator.endswith("+"):
        return "" if missing else interpolate(arg, env, mark, warn)
    if missing:  # ? and :?
        message = interpolate(arg, env, mark, warn) or "is required"
        what = "unset" if unset else "empty"
        raise mark.error(f"required variable {name} is {what}: {message}")
    return value or ""


def _lookup(name: str, env: Mapping[str, str], mark: Mark, warn: Warn | None) -> str:
    value = env.get(name)
    if value is None:
        if warn is not None:
            warn(mark, f"variable {name} is not set; an empty string is used")
        return ""
    return value


def interpolate_tree(node: Node, env: Mapping[str, str], warn: Warn | None = None) -> None:
    """Interpolate every string value under ``node``, in place."""
    if isinstance(node, Scalar):
        if isinstance(node.value, str) and "$" in node.value:
            with guard():  # inside collecting(): every unset required variable is told
                text = interpolate(node.value, env, node.mark, warn)
                node.value = text if node.quoted else resolve_plain(text)
    elif isinstance(node, Seq):
        for item in node.items:
            interpolate_tree(item, env, warn)
    elif isinstance(node, Map):
        for value in node.items.values():
            interpolate_tree(value, env, warn)


def parse_dotenv(
    path: Path, env: Mapping[str, str], *, shown: str | None = None
) -> dict[str, str | None]:
    """Read a dotenv file (``KEY=value``, ``export KEY=value``, quotes, ``#`` comments).

    Double-quoted and unquoted values are interpolated from ``env`` and the lines above;
    single-quoted ones are literal. A bare ``KEY`` line yields None (take it from the
    environment, as compose does).
    """
    name = shown if shown is not None else str(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ComposeError("env file not found", path=name) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(f"cannot read the env file: {exc}", path=name) from exc
    result: dict[str, str | None] = {}
    scope: dict[str, str] = dict(env)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        mark = Mark(name, number, 1)
        key, sep, value = line.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key) and not re.fullmatch(r"[^\s=]+", key):
            raise mark.error(f"invalid line in env file: {raw!r}")
        if not sep:
            result[key] = None
            continue
        text = _dotenv_value(value.strip(), scope, mark)
        result[key] = text
        scope[key] = text
    return result


def _dotenv_value(value: str, scope: Mapping[str, str], mark: Mark) -> str:
    if value[:1] == "'":
        end = value.find("'", 1)
        if end < 0:
            raise mark.error("unterminated single quote in env file")
        return value[1:end]
    if value[:1] == '"':
        out: list[str] = []
        i = 1
        escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}
        while i < len(value) and value[i] != '"':
            if value[i] == "\\" and i + 1 < len(value):
                out.append(escapes.get(value[i + 1], "\\" + value[i + 1]))
                i += 2
                continue
            out.append(value[i])
            i += 1
        if i >= len(value):
            raise mark.error("unterminated double quote in env file")
        return interpolate("".join(out), scope, mark)
    comment = re.search(r"\s#", value)
    if comment is not None:
        value = value[: comment.start()].rstrip()
    return interpolate(value, scope, mark)
