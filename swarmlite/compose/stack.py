"""Compose files to one LoadedStack: include, extends, several files merged, profiles.

Owns the order of loading: each file is read (loader.py), interpolated (interpolate.py)
from ``env`` over the ``.env`` beside the first file, and normalised key by key
(normalize.py, definitions.py); ``include:`` brings in other files (paths relative to the
including file), ``extends:`` builds a service on another (same file or ``file:``), the
``-c`` files merge in order (merge.py), profiles pick the active services, and checks.py
checks the result. Relative paths of ``-c`` files resolve against the project directory
(the first file's directory unless given); those of included and extended files against
their own directory. Does not own turning the stack into ServiceSpecs (convert.py).
Invariant: ``load_stack`` either returns a stack that deploys or raises ComposeError with
file:line:column; what it ignores is in ``warnings``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlite.compose import keys
from swarmlite.compose.context import Context
from swarmlite.compose.definitions import KINDS, normalize_definitions
from swarmlite.compose.interpolate import interpolate_tree, parse_dotenv
from swarmlite.compose.loader import Map, Mark, Node, Scalar, Seq, load_file, parse, to_plain
from swarmlite.compose.merge import merge_service, strip_markers
from swarmlite.compose.model import ComposeWarning, LoadedStack, ServiceDef
from swarmlite.compose.normalize import normalize_service
from swarmlite.compose.validate import (
    as_map,
    as_str,
    check_keys,
    collecting,
    did_you_mean,
    guard,
    raise_collected,
    report,
)
from swarmlite.errors import ComposeError

log = logging.getLogger(__name__)

_TOP_KEYS = ("version", "name", "services", "include", *KINDS)


def load_stack(
    files: Sequence[Path],
    *,
    env: Mapping[str, str] | None = None,
    profiles: Sequence[str] = (),
    project_dir: Path | None = None,
    stdin: str | None = None,
) -> LoadedStack:
    """Load, merge and check compose ``files`` (in order) into one stack. A file named
    ``-`` is ``stdin``'s text (`stack deploy -c -`), its directory the current one."""
    if not files:
        raise ComposeError("no compose file given", path="-")
    first = Path(files[0])
    project = (project_dir or first.resolve().parent).resolve()
    variables = _environment(project, env)
    builder = _Builder(variables, stdin)
    part = _Part()
    # Every problem of every file is told at once: first those of single keys and values,
    # then (only when there are none, as they would follow from them) those across the stack.
    with collecting() as problems:
        for file in files:
            with guard():
                part.merge_over(builder.part(Path(file), project))
        raise_collected(problems)
        stack = builder.finish(part, profiles)
        raise_collected(problems)
    return stack


def _environment(project: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    base = dict(os.environ if env is None else env)
    dotenv = project / ".env"
    if not dotenv.is_file():
        return base
    merged = {k: v for k, v in parse_dotenv(dotenv, base).items() if v is not None}
    merged.update(base)
    return merged


@dataclass
class _Part:
    """What one file (with its includes) defines."""

    services: dict[str, ServiceDef] = field(default_factory=dict)
    defs: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    def_marks: dict[str, Mark] = field(default_factory=dict)
    def_data: dict[str, bytes] = field(default_factory=dict)  # environment: sources, read
    extensions: dict[str, Any] = field(default_factory=dict)

    def merge_over(self, other: _Part) -> None:
        """Apply a later ``-c`` file: same-named things merge."""
        for name, service in other.services.items():
            mine = self.services.get(name)
            if mine is None:
                self.services[name] = service
            else:
                config = merge_service(mine.config, service.config)
                marks = {**mine.marks, **service.marks}
                self.services[name] = ServiceDef(name, config, mark=service.mark, marks=marks)
        for kind in KINDS:
            for name, spec in other.defs[kind].items():
                self.defs[kind][name] = {**self.defs[kind].get(name, {}), **spec}
        self.def_marks.update(other.def_marks)
        self.def_data.update(other.def_data)
        self.extensions.update(other.extensions)

    def add_included(self, other: _Part, mark: Mark) -> None:
        """Add an included file's definitions: a name defined twice is an error."""
        for name, service in other.services.items():
            if name in self.services:
                raise mark.error(f"service {name!r} is defined both here and in an included file")
            self.services[name] = service
        for kind in KINDS:
            for name, spec in other.defs[kind].items():
                if name in self.defs[kind] and self.defs[kind][name] != spec:
                    raise mark.error(
                        f"{kind}.{name} is defined differently here and in an included file"
                    )
                self.defs[kind][name] = spec
        for key, value in other.def_marks.items():
            self.def_marks.setdefault(key, value)
        for key, data in other.def_data.items():
            self.def_data.setdefault(key, data)
        for key, value in other.extensions.items():
            self.extensions.setdefault(key, value)


@dataclass
class _File:
    root: Map
    ctx: Context


STDIN = "-"  # the name of a compose file read from standard input


class _Builder:
    def __init__(self, env: dict[str, str], stdin: str | None = None) -> None:
        self.env = env
        self._stdin = stdin
        self.warnings: list[ComposeWarning] = []
        self._files: dict[tuple[Path, Path, frozenset[tuple[str, str]]], _File] = {}
        self._including: list[Path] = []

    def warn(self, mark: Mark, key: str, message: str) -> None:
        warning = ComposeWarning(mark.path, mark.line, mark.column, key, message)
        if warning not in self.warnings:
            self.warnings.append(warning)
            log.debug("compose warning %s", warning)

    def _interp_warn(self, mark: Mark, message: str) -> None:
        self.warn(mark, "", message)

    def file(self, path: Path, base_dir: Path, env: Mapping[str, str]) -> _File:
        key = (path.resolve(), base_dir, frozenset(env.items()))
        cached = self._files.get(key)
        if cached is not None:
            return cached
        if str(path) == STDIN:
            if self._stdin is None:
                raise ComposeError("no compose file was given on standard input", path=STDIN)
            root = parse(self._stdin, STDIN)
        else:
            root = load_file(path)
        # Every unset required variable of the file at once; its keys are read only after.
        with collecting() as unset:
            interpolate_tree(root, env, self._interp_warn)
        raise_collected(unset)
        loaded = _File(root, Context(base_dir, env, self.warn))
        self._files[key] = loaded
        return loaded

    def part(self, path: Path, base_dir: Path, env: Mapping[str, str] | None = None) -> _Part:
        resolved = path.resolve()
        if resolved in self._including:
            raise ComposeError(f"include cycle through {path}", path=str(path))
        self._including.append(resolved)
        try:
            return self._part(path, base_dir, self.env if env is None else env)
        finally:
            self._including.pop()

    def _part(self, path: Path, base_dir: Path, env: Mapping[str, str]) -> _Part:
        file = self.file(path, base_dir, env)
        root = file.root
        part = _Part()
        for key, value in root.items.items():
            mark = root.key_marks[key]
            if key.startswith("x-"):
                part.extensions[key] = to_plain(value)
            elif key == "version":
                self.warn(mark, key, "ignored: the version key is obsolete")
            elif key == "name":
                self.warn(mark, key, "ignored: the stack name is given on the command line")
            elif key not in _TOP_KEYS:
                listed = ", ".join(_TOP_KEYS)
                report(
                    mark.error(
                        f"{key} is not a known top-level key (allowed: {listed}, x-*)"
                        + did_you_mean(key, _TOP_KEYS)
                    )
                )
        if "include" in root.items:
            with guard():
                self._includes(root.items["include"], path, part, env)
        for kind in KINDS:
            if kind in root.items:
                try:
                    defs = normalize_definitions(kind, root.items[kind], file.ctx)
                except ComposeError as exc:
                    report(exc)  # and the next kind
                    continue
                for name in defs:
                    node = root.items[kind]
                    assert isinstance(node, Map)
                    part.def_marks[f"{kind}.{name}"] = node.key_marks[name]
                    if name in part.defs[kind] and part.defs[kind][name] != defs[name]:
                        raise node.key_marks[name].error(
                            f"{kind}.{name} is defined differently here and in an included file"
                        )
                part.defs[kind].update(defs)
                for name, spec in defs.items():
                    if "environment" in spec:
                        part.def_data[f"{kind}.{name}"] = env[spec["environment"]].encode()
        services = root.items.get("services")
        if services is not None and not (isinstance(services, Scalar) and services.value is None):
            for name in as_map(services, "services").items:
                try:
                    service = self.service(path, base_dir, env, name, ())
                except ComposeError as exc:
                    report(exc)  # and the next service
                    continue
                if name in part.services:
                    raise (
                        as_map(services, "services")
                        .key_marks[name]
                        .error(f"service {name!r} is defined both here and in an included file")
                    )
                part.services[name] = service
        return part

    def _includes(self, node: Node, path: Path, part: _Part, env: Mapping[str, str]) -> None:
        entries = node.items if isinstance(node, Seq) else [node]
        for i, entry in enumerate(entries):
            where = f"include[{i}]"
            base = path.resolve().parent
            paths: list[tuple[str, Node]] = []
            project: Path | None = None
            sub_env = env
            if isinstance(entry, Map):
                check_keys(entry, where, ("path", "project_directory", "env_file"))
                target = entry.get("path")
                if target is None:
                    raise entry.mark.error(f"{where}.path is required")
                items = target.items if isinstance(target, Seq) else [target]
                paths = [(as_str(p, f"{where}.path", allow_empty=False), p) for p in items]
                if "project_directory" in entry.items:
                    project = base / as_str(
                        entry.items["project_directory"], f"{where}.project_directory"
                    )
                if "env_file" in entry.items:
                    sub_env = self._include_env(
                        entry.items["env_file"], f"{where}.env_file", base, env
                    )
            else:
                paths = [(as_str(entry, where, allow_empty=False), entry)]
            for text, text_node in paths:
                included = (base / text).resolve()
                if not included.is_file():
                    raise text_node.mark.error(f"{where}: included file {included} not found")
                sub = self.part(included, (project or included.parent).resolve(), sub_env)
                part.add_included(sub, text_node.mark)

    def _include_env(
        self, node: Node, where: str, base: Path, env: Mapping[str, str]
    ) -> dict[str, str]:
        """Variables for an included file: its env_file values, under the outer ones."""
        items = node.items if isinstance(node, Seq) else [node]
        values: dict[str, str] = {}
        for i, item in enumerate(items):
            text = as_str(item, f"{where}[{i}]", allow_empty=False)
            file = (base / text).resolve()
            if not file.is_file():
                raise item.mark.error(f"{where}: env file {file} not found")
            for key, value in parse_dotenv(file, env).items():
                if value is not None:
                    values[key] = value
        return {**values, **env}

    def service(
        self,
        path: Path,
        base_dir: Path,
        env: Mapping[str, str],
        name: str,
        chain: tuple[tuple[Path, str], ...],
    ) -> ServiceDef:
        file = self.file(path, base_dir, env)
        services = as_map(file.root.items["services"], "services")
        if name not in services.items:
            raise ComposeError(f"service {name!r} not found", path=str(path))
        node = services.items[name]
        link = (path.resolve(), name)
        if link in chain:
            raise node.mark.error(f"services.{name}.extends forms a cycle")
        config, marks = normalize_service(name, node, file.ctx)
        extends = node.get("extends") if isinstance(node, Map) else None
        if extends is None:
            return ServiceDef(name, config, mark=node.mark, marks=marks)
        where = f"services.{name}.extends"
        base_path, base_name = path, ""
        if isinstance(extends, Map):
            check_keys(extends, where, ("service", "file"))
            if "service" not in extends.items:
                raise extends.mark.error(f"{where}.service is required")
            base_name = as_str(extends.items["service"], f"{where}.service", allow_empty=False)
            if "file" in extends.items:
                text = as_str(extends.items["file"], f"{where}.file", allow_empty=False)
                base_path = (path.resolve().parent / text).resolve()
                if not base_path.is_file():
                    raise extends.items["file"].mark.error(f"{where}.file: {base_path} not found")
        else:
            base_name = as_str(extends, where, allow_empty=False)
        base_file_dir = base_dir if base_path == path else base_path.parent
        base_services = self.file(base_path, base_file_dir, env).root.items.get("services")
        if not isinstance(base_services, Map) or base_name not in base_services.items:
            raise extends.mark.error(f"{where}: service {base_name!r} not found in {base_path}")
        base = self.service(base_path, base_file_dir, env, base_name, (*chain, link))
        merged = merge_service(base.config, config)
        return ServiceDef(name, merged, mark=node.mark, marks={**base.marks, **marks})

    def finish(self, part: _Part, profiles: Sequence[str]) -> LoadedStack:
        from swarmlite.compose.checks import check_stack  # checks imports model only

        enabled = set(profiles)
        services: dict[str, ServiceDef] = {}
        inactive: dict[str, list[str]] = {}
        for name, service in part.services.items():
            config = strip_markers(service.config)
            wanted = config.pop("profiles", [])
            if wanted and "*" not in enabled and not enabled & set(wanted):
                inactive[name] = wanted
                continue
            if "build" in config:
                if "image" not in config:
                    mark = service.marks.get("build", service.mark or Mark("-", 0, 0))
                    report(
                        mark.error(
                            f"services.{name}: {keys.BUILD_NEEDS_IMAGE}",
                            hint="build and push it, then name it in image:",
                        )
                    )
                    continue
                build_mark = service.marks.get("build", service.mark or Mark("-", 0, 0))
                self.warn(
                    build_mark,
                    f"services.{name}.build",
                    "ignored: the image named by image: is deployed",
                )
                config.pop("build")
            services[name] = ServiceDef(name, config, mark=service.mark, marks=service.marks)
        defs = {kind: dict(sorted(part.defs[kind].items())) for kind in KINDS}
        stack = LoadedStack(
            services=dict(sorted(services.items())),
            networks=defs["networks"],
            volumes=defs["volumes"],
            secrets=defs["secrets"],
            configs=defs["configs"],
            extensions=dict(sorted(part.extensions.items())),
            warnings=self.warnings,
            env=self.env,
            def_marks=part.def_marks,
            def_data=part.def_data,
        )
        check_stack(stack, inactive, self.warn)
        return stack
