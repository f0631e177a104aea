"""YAML text to a tree of nodes that remember where they were written (file:line:column).

Owns the YAML reading of compose files: anchors and aliases, merge keys (``<<``), the
compose-spec tags ``!reset`` and ``!override``, and the scalar types of YAML 1.2's core
schema (as compose itself reads YAML: ``80:80`` is a string, ``yes`` is a string), and the
limits that keep a file from knocking the reader over: its size, its nesting depth and the
values its aliases expand to (an alias bomb is refused as soon as it passes the budget,
before it costs memory). Nodes are built from PyYAML's event stream (libyaml's parser when
present) with an explicit stack. Does not own interpolation, merging or meaning.
Invariant: every node carries the ``Mark`` of the text it came from; a duplicate key, an
unknown tag, unreadable YAML or a passed limit is a ComposeError at its position. PyYAML's
errors are translated here, and only here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from swarmlite.errors import ComposeError

Plain = str | int | float | bool | None

# Limits that keep a hostile or broken file from exhausting memory, time or Python's stack.
# 10 MiB: real compose files are a few KiB, the largest in the corpus tens of KiB; it stays
# under the control API's 16 MiB message limit, so a file that loads can also be deployed.
MAX_FILE_BYTES = 10 * 1024 * 1024
# 200 levels: the deepest compose key path is about 10 (x- extensions may go further);
# the later passes (interpolation, normalising, PyYAML's emitter for `stack config`)
# recurse a few frames per level and must stay well inside Python's 1000 frames.
MAX_DEPTH = 200
# 100,000 values made by aliases: the same order as go-yaml's (compose-go's) alias budget,
# at a few hundred bytes a value tens of MB at worst; real files add a few hundred.
MAX_ALIAS_NODES = 100_000
# 1,000,000 values in all (text and aliases): what 10 MiB of short list items would make.
MAX_NODES = 1_000_000

# libyaml's parser when PyYAML was built with it (fast on large scalars), else PyYAML's
# pure one; both give the same events with the same positions.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_QUOTED = ("'", '"', "|", ">")
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
# The first characters of every null, boolean and number the patterns above match.
_NOT_TEXT_START = frozenset("0123456789+-.~nNtTfF")


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
    if text and text[0] not in _NOT_TEXT_START:  # most values: no pattern can match
        return text
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
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # never more than the limit into memory
    except FileNotFoundError as exc:
        raise ComposeError("file not found", path=name) from exc
    except OSError as exc:
        raise ComposeError(f"cannot read the file: {exc}", path=name) from exc
    _check_size(len(data), name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ComposeError(f"cannot read the file: {exc}", path=name) from exc
    return parse(text, name)


def _check_size(size: int, path: str) -> None:
    if size > MAX_FILE_BYTES:
        raise ComposeError(
            f"the file is larger than {MAX_FILE_BYTES >> 20} MiB, the most a compose file may be",
            path=path,
            hint="keep large data in files that secrets: and configs: name with file:",
        )


def parse(text: str, path: str, *, loader: Any = None) -> Map:
    """Parse compose YAML text named ``path`` (for messages). ``loader`` is a PyYAML loader
    class; libyaml's (``yaml.CSafeLoader``) when PyYAML was built with it, else the pure one."""
    if len(text) > MAX_FILE_BYTES // 4:  # cheap first: a character is at most 4 bytes
        _check_size(len(text.encode("utf-8", "surrogatepass")), path)
    builder = _Builder(path)
    try:
        document = builder.run(yaml.parse(text, Loader=loader or SAFE_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context or exc}"
        if mark is None:
            raise ComposeError(message, path=path) from exc
        raise ComposeError(message, path=path, line=mark.line + 1, column=mark.column + 1) from exc
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        # libyaml counts the position in UTF-8 bytes, the pure reader in characters.
        before = text.encode("utf-8", "surrogatepass")[: exc.position].decode("utf-8", "replace")
        if (loader or SAFE_LOADER) is yaml.SafeLoader:
            before = text[: exc.position]
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        message = f"invalid YAML: {exc.reason} (character #x{exc.character:04x})"
        raise ComposeError(message, path=path, line=line, column=column) from exc
    except yaml.YAMLError as exc:
        raise ComposeError(f"invalid YAML: {exc}", path=path) from exc
    if document is None:
        raise ComposeError(
            "empty compose file: the top level must be a mapping with `services:`", path=path
        )
    if not isinstance(document, Map):
        raise document.mark.error("the top level of a compose file must be a mapping")
    return document


class _Open:
    """A sequence or mapping whose end event has not come yet."""

    __slots__ = ("anchor", "height", "key", "key_mark", "merge", "merges", "node", "size")

    def __init__(self, node: Seq | Map, anchor: str | None) -> None:
        self.node = node
        self.anchor = anchor
        self.key: str | None = None  # a mapping's key whose value comes next
        self.key_mark: Mark | None = None
        self.merge = False  # that key is `<<`
        self.merges: list[Map] = []
        self.size = 1  # nodes in this subtree, once aliases are expanded
        self.height = 1  # levels of nesting in this subtree


class _Builder:
    """Nodes from PyYAML's events, with an explicit stack (no recursion, so no depth makes
    Python's stack overflow); counts nodes and nesting as aliases are expanded."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stack: list[_Open] = []
        # anchor -> (node, nodes in it, its height, its text when it is a scalar)
        self._anchors: dict[str, tuple[Node, int, int, str | None]] = {}
        self._open_anchors: dict[str, int] = {}
        self._nodes = 0
        self._alias_nodes = 0
        self._root: Node | None = None

    def _mark(self, event: Any) -> Mark:
        start = event.start_mark
        return Mark(self._path, int(start.line) + 1, int(start.column) + 1)

    def run(self, events: Iterable[Any]) -> Node | None:
        documents = 0
        for event in events:
            if isinstance(event, yaml.ScalarEvent):
                self._scalar(event)
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                self._start(event)
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                self._end()
            elif isinstance(event, yaml.AliasEvent):
                self._alias(event)
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self._mark(event).error(
                        "a compose file holds one YAML document; this is a second one (---)"
                    )
        return self._root

    def _count(self, nodes: int, mark: Mark) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise mark.error(
                f"the file holds more than {MAX_NODES:,} values, the most a compose file may"
            )

    def _custom(self, tag: str | None, mark: Mark) -> str | None:
        if tag and tag.startswith("!"):
            if tag not in _CUSTOM_TAGS:
                raise mark.error(f"unknown YAML tag {tag} (compose knows !reset and !override)")
            return _CUSTOM_TAGS[tag]
        return None

    def _scalar(self, event: Any) -> None:
        mark = self._mark(event)
        self._count(1, mark)
        custom = self._custom(event.tag, mark)
        text = str(event.value)
        node: Scalar
        if custom is not None or event.style in _QUOTED or event.tag == _STR_TAG:
            node = Scalar(mark, text if (custom is None or text) else None, quoted=True, tag=custom)
        else:
            node = Scalar(mark, resolve_plain(text), tag=custom)
        merge = event.tag == _MERGE_TAG or (event.tag is None and not event.style and text == "<<")
        if event.anchor is not None:
            self._anchors[event.anchor] = (node, 1, 0, text)
        self._add(node, 1, 0, text, merge)

    def _start(self, event: Any) -> None:
        mark = self._mark(event)
        if len(self._stack) >= MAX_DEPTH:
            raise mark.error(
                f"values nested more than {MAX_DEPTH} levels deep (a compose file needs about 10)"
            )
        self._count(1, mark)
        custom = self._custom(event.tag, mark)
        node: Seq | Map
        if isinstance(event, yaml.SequenceStartEvent):
            node = Seq(mark, [], tag=custom)
        else:
            node = Map(mark, {}, tag=custom)
        if event.anchor is not None:
            self._open_anchors[event.anchor] = self._open_anchors.get(event.anchor, 0) + 1
        self._stack.append(_Open(node, event.anchor))

    def _end(self) -> None:
        done = self._stack.pop()
        node = done.node
        if isinstance(node, Map):
            # Explicit keys win over merged ones; among merged maps the first one wins.
            for source in done.merges:
                for key, value in source.items.items():
                    if key not in node.items:
                        node.items[key] = value
                        node.key_marks[key] = source.key_marks[key]
        if done.anchor is not None:
            self._open_anchors[done.anchor] -= 1
            self._anchors[done.anchor] = (node, done.size, done.height, None)
        self._add(node, done.size, done.height, None, False)

    def _alias(self, event: Any) -> None:
        mark = self._mark(event)
        name = str(event.anchor)
        if self._open_anchors.get(name):
            raise mark.error(
                f"the alias *{name} refers to a node that contains it (a recursive structure)"
            )
        if name not in self._anchors:
            raise mark.error(f"the alias *{name} names no anchor &{name} defined before it")
        target, size, height, text = self._anchors[name]
        if len(self._stack) + height > MAX_DEPTH:
            raise mark.error(
                f"the alias *{name} nests values more than {MAX_DEPTH} levels deep (a compose "
                "file needs about 10)"
            )
        self._alias_nodes += size
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise mark.error(
                f"the aliases of this file expand to more than {MAX_ALIAS_NODES:,} values "
                f"(at *{name}): refused as a YAML alias bomb",
                hint="write the repeated values out, or use fewer levels of aliases",
            )
        self._count(size, mark)
        self._add(_copy(target), size, height, text, False)

    def _add(self, node: Node, size: int, height: int, text: str | None, merge: bool) -> None:
        """Put a finished node where it belongs: the root, a list item, a key or a value."""
        if not self._stack:
            self._root = node
            return
        parent = self._stack[-1]
        parent.size += size
        parent.height = max(parent.height, height + 1)
        into = parent.node
        if isinstance(into, Seq):
            into.items.append(node)
            return
        if parent.key_mark is None:  # this node is a key
            if text is None:
                raise node.mark.error("a mapping key must be a scalar")
            parent.key, parent.key_mark, parent.merge = text, node.mark, merge
            return
        key, key_mark = parent.key, parent.key_mark
        parent.key, parent.key_mark = None, None
        assert key is not None
        if parent.merge:
            sources = node.items if isinstance(node, Seq) else [node]
            for source in sources:
                if not isinstance(source, Map):
                    raise source.mark.error("a merge key (<<) takes a mapping or a list")
                parent.merges.append(source)
            return
        if key in into.items:
            first = into.key_marks[key]
            raise key_mark.error(f"duplicate key {key!r} (first at line {first.line})")
        into.items[key] = node
        into.key_marks[key] = key_mark


def _copy(node: Node) -> Node:
    """A fresh copy of an anchored node, for one of its aliases (later passes change nodes
    in place: each alias must have its own). Recursion is bounded by MAX_DEPTH."""
    if isinstance(node, Scalar):
        return Scalar(node.mark, node.value, quoted=node.quoted, tag=node.tag)
    if isinstance(node, Seq):
        return Seq(node.mark, [_copy(item) for item in node.items], tag=node.tag)
    assert isinstance(node, Map)
    items = {key: _copy(value) for key, value in node.items.items()}
    return Map(node.mark, items, dict(node.key_marks), tag=node.tag)


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


# A subclass made at run time keeps PyYAML's global SafeDumper untouched. libyaml's emitter
# when present: PyYAML's pure one takes seconds over a value of a few MB.
SAFE_DUMPER: Any = getattr(yaml, "CSafeDumper", None) or yaml.SafeDumper
_Dumper: Any = type("_Dumper", (SAFE_DUMPER,), {})
_Dumper.add_representer(str, _represent_str)


def dump(data: Any) -> str:
    """YAML text that ``parse`` reads back as ``data`` (mapping keys sorted)."""
    text: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )
    return text
