"""YAML text to a tree of nodes that remember where they were written (file:line:column).

Owns the YAML reading of compose files: anchors and aliases, merge keys (``<<``), the
compose-spec tags ``!reset`` and ``!override``, and the scalar types of YAML 1.2's core
schema (as compose itself reads YAML: ``80:80`` is a string, ``yes`` is a string). Does not
own interpolation, merging or meaning. Invariant: every node carries the ``Mark`` of the
text it came from; a duplicate key, an unknown tag or unreadable YAML is a ComposeError at
its position. PyYAML's errors are translated here, and only here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from swarmlite.errors import ComposeError

Plain = str | int | float | bool | None

_MERGE_TAG = "tag:yaml.org,2002:merge"
_CUSTOM_TAGS = {"!reset": "reset", "!override": "override"}
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
# A leading zero means octal (file modes such as 0440), as compose's YAML reader takes it.
_LEADING_ZERO_OCT = re.compile(r"^0[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")


@dataclass(frozen=True)
class Mark:
    path: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def error(self, message: str, *, hint: str | None = None) -> ComposeError:
        return ComposeError(message, path=self.path, line=self.line, column=self.column, hint=hint)


@dataclass(eq=False)
class Node:
    mark: Mark
    tag: str | None = field(default=None, kw_only=True)  # "reset" | "override" | None


@dataclass(eq=False)
class Scalar(Node):
    value: Plain
    quoted: bool = False  # written quoted (or as a block): always a string


@dataclass(eq=False)
class Seq(Node):
    items: list[Node]


@dataclass(eq=False)
class Map(Node):
    items: dict[str, Node]
    key_marks: dict[str, Mark] = field(default_factory=dict)

    def get(self, key: str) -> Node | None:
        return self.items.get(key)


def resolve_plain(text: str) -> Plain:
    """The value of an unquoted scalar under YAML 1.2's core schema."""
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _LEADING_ZERO_OCT.match(text):
        return int(text, 8)
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


def load_file(path: Path, *, shown: str | None = None) -> Map:
    """Read one compose file; its top level must be a mapping."""
    name = shown if shown is not None else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ComposeError("file not found", path=name) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(f"cannot read the file: {exc}", path=name) from exc
    return parse(text, name)


def parse(text: str, path: str) -> Map:
    """Parse compose YAML text named ``path`` (for messages)."""
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context or exc}"
        if mark is None:
            raise ComposeError(message, path=path) from exc
        raise ComposeError(message, path=path, line=mark.line + 1, column=mark.column + 1) from exc
    except yaml.YAMLError as exc:
        raise ComposeError(f"invalid YAML: {exc}", path=path) from exc
    if document is None:
        raise ComposeError(
            "empty compose file: the top level must be a mapping with `services:`", path=path
        )
    node = _Builder(path).build(document)
    if not isinstance(node, Map):
        raise node.mark.error("the top level of a compose file must be a mapping")
    return node


class _Builder:
    def __init__(self, path: str) -> None:
        self._path = path
        self._active: set[int] = set()

    def _mark(self, node: Any) -> Mark:
        start = node.start_mark
        return Mark(self._path, int(start.line) + 1, int(start.column) + 1)

    def build(self, node: Any) -> Node:
        mark = self._mark(node)
        tag = str(node.tag or "")
        custom: str | None = None
        if tag.startswith("!") and not tag.startswith("!!"):
            if tag not in _CUSTOM_TAGS:
                raise mark.error(f"unknown YAML tag {tag} (compose knows !reset and !override)")
            custom = _CUSTOM_TAGS[tag]
        if id(node) in self._active:
            raise mark.error("an alias refers to a node that contains it (a recursive structure)")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.ScalarNode):
                text = str(node.value)
                if custom is not None or node.style in ("'", '"', "|", ">"):
                    value: Plain = text if (custom is None or text) else None
                    return Scalar(mark, value, quoted=True, tag=custom)
                return Scalar(mark, resolve_plain(text), tag=custom)
            if isinstance(node, yaml.SequenceNode):
                return Seq(mark, [self.build(item) for item in node.value], tag=custom)
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, mark, custom)
        finally:
            self._active.discard(id(node))
        raise mark.error("unexpected YAML node")  # pragma: no cover - PyYAML has only three

    def _mapping(self, node: Any, mark: Mark, custom: str | None) -> Map:
        result = Map(mark, {}, tag=custom)
        merged: list[Any] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self._mark(source).error("a merge key (<<) takes a mapping or a list")
                    merged.append(source)
                continue
            key_mark = self._mark(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                raise key_mark.error("a mapping key must be a scalar")
            key = str(key_node.value)
            if key in result.items:
                first = result.key_marks[key]
                raise key_mark.error(f"duplicate key {key!r} (first at line {first.line})")
            result.items[key] = self.build(value_node)
            result.key_marks[key] = key_mark
        # Explicit keys win over merged ones; among merged maps the first one wins.
        for source in merged:
            built = self.build(source)
            assert isinstance(built, Map)
            for key, value in built.items.items():
                if key not in result.items:
                    result.items[key] = value
                    result.key_marks[key] = built.key_marks[key]
        return result


def to_plain(node: Node) -> Any:
    """The node's value as plain Python data (marks dropped)."""
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Seq):
        return [to_plain(item) for item in node.items]
    if isinstance(node, Map):
        return {key: to_plain(value) for key, value in node.items.items()}
    raise TypeError(node)  # pragma: no cover


def _represent_str(dumper: Any, value: str) -> Any:
    # Quote every string this module would read back as something else ("0o17", "1e3").
    style = None
    if not isinstance(resolve_plain(value), str):
        style = '"'
    elif "\n" in value:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


# A subclass made at run time keeps PyYAML's global SafeDumper untouched.
_Dumper: Any = type("_Dumper", (yaml.SafeDumper,), {})
_Dumper.add_representer(str, _represent_str)


def dump(data: Any) -> str:
    """YAML text that ``parse`` reads back as ``data`` (mapping keys sorted)."""
    text: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )
    return text
