"""One compose service, as written in one file, to its canonical form (plain data).

Owns the reading of every service key of keys.py: short and long forms become one form
(ports and volumes long form, secrets with their target, durations as canonical strings
such as "1m30s", sizes in bytes, environment with env_file folded in), relative paths
become absolute (against the file's directory), ignored keys become warnings and refused
keys errors. Does not own defaults (a missing key stays missing, so that merging files
works) nor cross-service checks (checks.py). Invariant: the output holds only str, int,
float, bool, None, list and dict (plus the RESET/Override merge markers), and normalising
the YAML rendering of an output gives back the same output.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from swarmlite.compose import keys
from swarmlite.compose.context import RESET, Context, Override, dur, resolve_path
from swarmlite.compose.deploy_keys import CONDITIONS, read_deploy, read_ports, read_volumes
from swarmlite.compose.interpolate import parse_dotenv
from swarmlite.compose.loader import Map, Mark, Node, Scalar, Seq, to_plain
from swarmlite.compose.logging_keys import read_logging
from swarmlite.compose.validate import (
    as_bool,
    as_int,
    as_key_values,
    as_map,
    as_scalar_text,
    as_seq,
    as_str,
    as_str_list,
    as_str_or_list,
    check_keys,
    did_you_mean,
    fail,
    guard,
    one_of,
)

_SERVICE_KEYS = (
    keys.SUPPORTED_SERVICE_KEYS | set(keys.IGNORED_SERVICE_KEYS) | set(keys.REFUSED_SERVICE_KEYS)
)


def _tagged(node: Node, value: Any) -> Any:
    if node.tag == "reset":
        return RESET
    if node.tag == "override":
        return Override(value)
    return value


def normalize_service(
    name: str, node: Node, ctx: Context
) -> tuple[dict[str, Any], dict[str, Mark]]:
    """The canonical config of one service and the marks of the values checks refer to."""
    path = f"services.{name}"
    if isinstance(node, Scalar) and node.value is None:
        node = Map(node.mark, {})
    service = as_map(node, path)
    config: dict[str, Any] = {}
    marks: dict[str, Mark] = {"": service.mark}
    env_files: dict[str, str | None] = {}
    for key, value in service.items.items():
        where = f"{path}.{key}"
        key_mark = service.key_marks[key]
        marks.setdefault(key, value.mark)
        if value.tag == "reset":
            config[key] = RESET
            continue
        if key.startswith("x-"):
            config[key] = to_plain(value)
        elif key in keys.REFUSED_SERVICE_KEYS:
            with guard():
                _refuse(key, value, key_mark, where, ctx)
        elif key in keys.IGNORED_SERVICE_KEYS:
            ctx.warn(key_mark, where, f"ignored: {keys.IGNORED_SERVICE_KEYS[key]}")
        elif key == "extends":
            continue  # resolved by the stack loader
        elif key == "env_file":
            with guard():
                env_files = _env_files(value, where, ctx)
        elif key not in keys.SUPPORTED_SERVICE_KEYS:
            with guard():
                raise key_mark.error(
                    f"{where} is not a known service key" + did_you_mean(key, _SERVICE_KEYS)
                )
        else:
            with guard():  # one bad key: the others are still read (and their errors told)
                config[key] = _tagged(value, _READERS[key](value, where, ctx, marks))
    if env_files:
        environment = config.get("environment")
        merged = {k: v for k, v in env_files.items() if v is not None}
        if isinstance(environment, dict):
            merged.update(environment)
        if environment is not RESET and not isinstance(environment, Override):
            config["environment"] = merged
    return config, marks


def _refuse(key: str, value: Node, key_mark: Mark, where: str, ctx: Context) -> None:
    empty = isinstance(value, Scalar) and value.value in (None, False, "")
    empty = empty or (isinstance(value, Seq | Map) and not value.items)
    if empty and key not in keys.ALWAYS_REFUSED:
        ctx.warn(key_mark, where, "ignored: it is empty or false")
        return
    raise key_mark.error(f"{where} is {keys.NOT_IN_CLUSTER}: {keys.REFUSED_SERVICE_KEYS[key]}")


def _env_files(node: Node, path: str, ctx: Context) -> dict[str, str | None]:
    entries = node.items if isinstance(node, Seq) else [node]
    result: dict[str, str | None] = {}
    for i, entry in enumerate(entries):
        where = f"{path}[{i}]" if isinstance(node, Seq) else path
        required = True
        if isinstance(entry, Map):
            check_keys(entry, where, ("path", "required", "format"))
            path_node = entry.get("path")
            if path_node is None:
                raise entry.mark.error(f"{where}.path is required")
            file_text = as_str(path_node, f"{where}.path", allow_empty=False)
            if entry.get("required") is not None:
                required = as_bool(entry.items["required"], f"{where}.required")
        else:
            file_text = as_str(entry, where, allow_empty=False)
        file = resolve_path(ctx.base_dir, file_text)
        if not file.is_file():
            if required:
                raise entry.mark.error(f"{where}: env file {file} not found")
            ctx.warn(entry.mark, where, f"optional env file {file} not found; skipped")
            continue
        for key, value in parse_dotenv(file, ctx.env).items():
            result[key] = value if value is not None else ctx.env.get(key)
    return result


# --------------------------------------------------------------------------- simple keys

Reader = Callable[[Node, str, Context, dict[str, Mark]], Any]


def _string(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> str:
    return as_str(node, path)


def _image(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> str:
    return as_str(node, path, allow_empty=False)


def _boolean(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> bool:
    return as_bool(node, path)


def _duration(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> str:
    return dur(node, path)


def _str_list(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> list[str]:
    value = as_str_or_list(node, path)
    return [value] if isinstance(value, str) else value


def _command(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> list[str] | None:
    if isinstance(node, Scalar) and node.value is None:
        return None
    if isinstance(node, Seq):
        return as_str_list(node, path)
    text = as_str(node, path)
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise node.mark.error(f"{path} cannot be split into words: {exc}") from exc


def _environment(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in as_key_values(node, path).items():
        if value is None:
            value = ctx.env.get(key)  # `KEY` alone: from the environment, if set there
        if value is not None:
            result[key] = value
    return result


def _labels(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> dict[str, str]:
    return {k: v or "" for k, v in as_key_values(node, path).items()}


def _ulimits(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in as_map(node, path).items.items():
        where = f"{path}.{name}"
        if isinstance(value, Map):
            check_keys(value, where, ("soft", "hard"))
            if "soft" not in value.items or "hard" not in value.items:
                raise value.mark.error(f"{where} needs both soft and hard")
            soft = as_int(value.items["soft"], f"{where}.soft")
            hard = as_int(value.items["hard"], f"{where}.hard")
            result[name] = {"soft": soft, "hard": hard}
        else:
            limit = as_int(value, where)
            result[name] = {"soft": limit, "hard": limit}
    return result


def _extra_hosts(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> list[str]:
    if isinstance(node, Map):
        return [f"{host}:{as_scalar_text(ip, f'{path}.{host}')}" for host, ip in node.items.items()]
    result = []
    for i, entry in enumerate(as_seq(node, path).items):
        text = as_str(entry, f"{path}[{i}]")
        host, sep, ip = text.partition("=") if "=" in text else text.partition(":")
        if not sep or not host or not ip:
            raise fail(entry, f"{path}[{i}]", 'of the form "host:ip"')
        result.append(f"{host}:{ip}")
    return result


def _group_add(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> list[str]:
    return [as_scalar_text(item, f"{path}[{i}]") for i, item in enumerate(as_seq(node, path).items)]


def _scale(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> int:
    return as_int(node, path, minimum=0)


def _build(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> Any:
    return to_plain(node)


def _healthcheck(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> dict[str, Any]:
    check = as_map(node, path)
    allowed = (
        "test",
        "interval",
        "timeout",
        "retries",
        "start_period",
        "start_interval",
        "disable",
    )
    check_keys(check, path, allowed)
    result: dict[str, Any] = {}
    for key, value in check.items.items():
        where = f"{path}.{key}"
        if key == "test":
            if isinstance(value, Scalar) and isinstance(value.value, str):
                result["test"] = ["CMD-SHELL", value.value]
            else:
                test = as_str_list(value, where)
                if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
                    raise fail(
                        value,
                        where,
                        'a string or a list starting with "CMD", "CMD-SHELL" or "NONE"',
                    )
                result["test"] = test
        elif key == "retries":
            result[key] = as_int(value, where, minimum=0)
        elif key == "disable":
            result[key] = as_bool(value, where)
        elif key in ("interval", "timeout", "start_period", "start_interval"):
            result[key] = dur(value, where)
    return result


def _depends_on(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if isinstance(node, Seq):
        for i, item in enumerate(node.items):
            name = as_str(item, f"{path}[{i}]", allow_empty=False)
            result[name] = {"condition": "service_started", "required": True}
            marks[f"depends_on.{name}"] = item.mark
        return result
    for name, value in as_map(node, path).items.items():
        where = f"{path}.{name}"
        marks[f"depends_on.{name}"] = as_map(node, path).key_marks[name]
        entry = {"condition": "service_started", "required": True}
        if not (isinstance(value, Scalar) and value.value is None):
            spec = as_map(value, where)
            check_keys(spec, where, ("condition", "required", "restart"))
            if "condition" in spec.items:
                entry["condition"] = one_of(
                    spec.items["condition"], f"{where}.condition", CONDITIONS
                )
            if "required" in spec.items:
                entry["required"] = as_bool(spec.items["required"], f"{where}.required")
            if "restart" in spec.items:
                ctx.warn(
                    spec.key_marks["restart"],
                    f"{where}.restart",
                    "ignored: tasks are not restarted with their dependencies",
                )
        result[name] = entry
    return result


def _networks(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if isinstance(node, Seq):
        for i, item in enumerate(node.items):
            name = as_str(item, f"{path}[{i}]", allow_empty=False)
            result[name] = {}
            marks[f"networks.{name}"] = item.mark
        return result
    networks = as_map(node, path)
    for name, value in networks.items.items():
        where = f"{path}.{name}"
        marks[f"networks.{name}"] = networks.key_marks[name]
        entry: dict[str, Any] = {}
        if not (isinstance(value, Scalar) and value.value is None):
            spec = as_map(value, where)
            check_keys(spec, where, {"aliases", *keys.NETWORK_ATTACHMENT_IGNORED})
            for key in spec.items:
                if key in keys.NETWORK_ATTACHMENT_IGNORED:
                    ctx.warn(
                        spec.key_marks[key],
                        f"{where}.{key}",
                        "ignored: the allocator assigns task addresses",
                    )
            if "aliases" in spec.items:
                entry["aliases"] = as_str_list(spec.items["aliases"], f"{where}.aliases")
        result[name] = entry
    return result


def _file_refs(kind: str) -> Reader:
    def read(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> list[Any]:
        result = []
        for i, item in enumerate(as_seq(node, path).items):
            where = f"{path}[{i}]"
            entry: dict[str, Any] = {}
            if isinstance(item, Map):
                check_keys(item, where, ("source", "target", "uid", "gid", "mode"))
                if "source" not in item.items:
                    raise item.mark.error(f"{where}.source is required")
                for key, value in item.items.items():
                    if key == "mode":
                        entry[key] = _mode(value, f"{where}.mode")
                    elif key in ("source", "target", "uid", "gid"):
                        entry[key] = as_str(value, f"{where}.{key}", allow_empty=False)
            else:
                entry["source"] = as_str(item, where, allow_empty=False)
            if "target" not in entry:
                source = entry["source"]
                entry["target"] = source if kind == "secrets" else f"/{source}"
            marks[f"{kind}.{entry['source']}"] = item.mark
            result.append(entry)
        return result

    return read


def _mode(node: Node, path: str) -> int:
    if isinstance(node, Scalar) and isinstance(node.value, str):
        try:
            return int(node.value, 8)
        except ValueError:
            pass
    return as_int(node, path, minimum=0)


def _tmpfs(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> list[str]:
    return _str_list(node, path, ctx, marks)


_READERS: dict[str, Reader] = {
    "image": _image,
    "build": _build,
    "command": _command,
    "entrypoint": _command,
    "environment": _environment,
    "labels": _labels,
    "working_dir": _string,
    "user": _string,
    "hostname": _string,
    "stop_signal": _string,
    "stop_grace_period": _duration,
    "init": _boolean,
    "read_only": _boolean,
    "tty": _boolean,
    "stdin_open": _boolean,
    "tmpfs": _tmpfs,
    "ulimits": _ulimits,
    "cap_add": _str_list,
    "cap_drop": _str_list,
    "sysctls": _labels,
    "extra_hosts": _extra_hosts,
    "dns": _str_list,
    "group_add": _group_add,
    "healthcheck": _healthcheck,
    "ports": read_ports,
    "volumes": read_volumes,
    "secrets": _file_refs("secrets"),
    "configs": _file_refs("configs"),
    "networks": _networks,
    "depends_on": _depends_on,
    "deploy": read_deploy,
    "profiles": _str_list,
    "scale": _scale,
    "logging": read_logging,
}
