"""The structured service keys: deploy, ports and volumes, in their short and long forms.

Owns their canonical form: ports as ``{target, published, protocol, mode}`` (ranges
expanded, published 0 when none), volumes as ``{type, source, target, read_only, ...}``
(bind sources absolute), deploy with durations as canonical strings and sizes in bytes,
and the placement constraint syntax. Does not own defaults nor cross-key checks
(checks.py: a job with update_config, dnsrr with ingress ports).
"""

from __future__ import annotations

import re
from typing import Any

from swarmlite.api.autoscale import KEYS as AUTOSCALE_KEYS
from swarmlite.api.autoscale import PREFIX as AUTOSCALE_PREFIX
from swarmlite.api.autoscale import autoscale_spec
from swarmlite.compose.context import Context, dur, resolve_path
from swarmlite.compose.loader import Map, Mark, Node, Scalar
from swarmlite.compose.validate import (
    as_bool,
    as_bytes,
    as_float,
    as_int,
    as_key_values,
    as_map,
    as_scalar_text,
    as_seq,
    as_str,
    check_keys,
    fail,
    one_of,
)
from swarmlite.errors import InvalidArgument

MODES = ("replicated", "global", "replicated-job", "global-job")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
PROTOCOLS = ("tcp", "udp", "sctp")
PORT_MODES = ("ingress", "host")
PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
CONSTRAINT = re.compile(
    r"^\s*(node\.id|node\.hostname|node\.role|node\.platform\.os|node\.platform\.arch"
    r"|node\.labels\.[^\s=!]+|engine\.labels\.[^\s=!]+)\s*(==|!=)\s*(\S.*?)\s*$"
)
CONSTRAINT_HELP = (
    "node.id|node.hostname|node.role|node.platform.os|node.platform.arch|node.labels.<key>"
    "|engine.labels.<key>, then == or !=, then a value"
)

# --------------------------------------------------------------------------- ports


def read_ports(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for i, item in enumerate(as_seq(node, path).items):
        where = f"{path}[{i}]"
        if isinstance(item, Map):
            result.append(_long_port(item, where, ctx))
        else:
            result.extend(_short_port(item, where, ctx))
        marks.setdefault(f"ports.{len(result) - 1}", item.mark)
    return result


def _port_number(text: str, node: Node, path: str) -> int:
    if not re.fullmatch(r"\d+", text):
        raise fail(node, path, 'a port such as "80", "8080:80" or "8000-8001:80-81"')
    port = int(text)
    if not 1 <= port <= 65535:
        raise node.mark.error(f"{path}: port {port} is out of range (1-65535)")
    return port


def _port_range(text: str, node: Node, path: str) -> list[int]:
    first, sep, last = text.partition("-")
    start = _port_number(first.strip(), node, path)
    if not sep:
        return [start]
    end = _port_number(last.strip(), node, path)
    if end < start:
        raise node.mark.error(f"{path}: port range {text} ends before it starts")
    return list(range(start, end + 1))


def _short_port(node: Node, path: str, ctx: Context) -> list[dict[str, Any]]:
    if (
        isinstance(node, Scalar)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    ):
        text = str(node.value)
    else:
        text = as_str(node, path, allow_empty=False)
    body, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    if protocol not in PROTOCOLS:
        raise node.mark.error(f"{path}: protocol {protocol!r} must be one of tcp, udp, sctp")
    host_ip = ""
    if body.startswith("["):
        close = body.find("]")
        host_ip, body = body[1:close], body[close + 2 :]
        parts = body.split(":")
    else:
        parts = body.split(":")
        if len(parts) > 3:  # an unbracketed IPv6 host address
            host_ip, parts = ":".join(parts[:-2]), parts[-2:]
        elif len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
    targets = _port_range(parts[-1], node, path)
    published: list[int] = []
    if len(parts) == 2 and parts[0]:
        published = _port_range(parts[0], node, path)
    if published and len(published) != len(targets):
        raise node.mark.error(
            f"{path}: published range {parts[0]} and target range {parts[-1]} differ in size"
        )
    if host_ip:
        ctx.warn(
            node.mark,
            path,
            f"host IP {host_ip} ignored: ports are published on every address of the node",
        )
    return [
        {
            "target": target,
            "published": published[i] if published else 0,
            "protocol": protocol,
            "mode": "ingress",
        }
        for i, target in enumerate(targets)
    ]


def _long_port(node: Map, path: str, ctx: Context) -> dict[str, Any]:
    check_keys(
        node, path, ("target", "published", "protocol", "mode", "host_ip", "name", "app_protocol")
    )
    if "target" not in node.items:
        raise node.mark.error(f"{path}.target is required")
    target_node = node.items["target"]
    target = _port_number(str(as_int(target_node, f"{path}.target")), target_node, f"{path}.target")
    entry: dict[str, Any] = {"target": target, "published": 0, "protocol": "tcp", "mode": "ingress"}
    for key, value in node.items.items():
        where = f"{path}.{key}"
        if key == "published":
            # 0 is none (older `stack config` output wrote it): the cluster chooses one.
            zero = isinstance(value, Scalar) and type(value.value) is int and value.value == 0
            if zero or (isinstance(value, Scalar) and value.value in (None, "", "0")):
                continue
            is_int = isinstance(value, Scalar) and isinstance(value.value, int)
            text = str(as_int(value, where)) if is_int else as_str(value, where)
            ports = _port_range(text, value, where)
            if len(ports) != 1:
                raise value.mark.error(f"{where}: a range needs the short form")
            entry["published"] = ports[0]
        elif key == "protocol":
            entry["protocol"] = one_of(value, where, PROTOCOLS)
        elif key == "mode":
            entry["mode"] = one_of(value, where, PORT_MODES)
        elif key == "name":
            entry["name"] = as_str(value, where)
        elif key in ("host_ip", "app_protocol"):
            ctx.warn(
                node.key_marks[key],
                where,
                "ignored: ports are published on every address of the node"
                if key == "host_ip"
                else "ignored",
            )
    return entry


# --------------------------------------------------------------------------- volumes


def read_volumes(
    node: Node, path: str, ctx: Context, marks: dict[str, Mark]
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for i, item in enumerate(as_seq(node, path).items):
        where = f"{path}[{i}]"
        entry = (
            _long_volume(item, where, ctx)
            if isinstance(item, Map)
            else _short_volume(item, where, ctx)
        )
        if entry["type"] == "volume" and entry.get("source"):
            marks[f"volumes.{entry['source']}"] = item.mark
        marks[f"volumes[{entry['target']}]"] = item.mark  # entries merge by target
        result.append(entry)
    return result


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or source == "."


def _short_volume(node: Node, path: str, ctx: Context) -> dict[str, Any]:
    text = as_str(node, path, allow_empty=False)
    parts = text.split(":")
    if len(parts) > 3 or any(not p for p in parts):
        raise fail(node, path, 'a volume such as "data:/var/lib/x", "./dir:/x:ro" or "/x"')
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0], "read_only": False}
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    entry: dict[str, Any] = {
        "type": "volume",
        "source": source,
        "target": target,
        "read_only": False,
    }
    if _is_path(source):
        entry["type"] = "bind"
        entry["source"] = str(resolve_path(ctx.base_dir, source))
    for option in options:
        if option == "ro":
            entry["read_only"] = True
        elif option == "rw":
            entry["read_only"] = False
        elif option == "nocopy" and entry["type"] == "volume":
            entry["volume"] = {"nocopy": True}
        elif option in PROPAGATIONS and entry["type"] == "bind":
            entry["bind"] = {"propagation": option}
        elif option in ("z", "Z", "consistent", "cached", "delegated"):
            ctx.warn(node.mark, path, f"volume option {option!r} ignored")
        else:
            raise node.mark.error(
                f"{path}: unknown volume option {option!r} (ro, rw, nocopy, or a bind propagation)"
            )
    return entry


def _long_volume(node: Map, path: str, ctx: Context) -> dict[str, Any]:
    check_keys(
        node,
        path,
        (
            "type",
            "source",
            "target",
            "read_only",
            "bind",
            "volume",
            "tmpfs",
            "consistency",
            "image",
        ),
    )
    if "type" not in node.items:
        raise node.mark.error(f"{path}.type is required (volume, bind or tmpfs)")
    kind = one_of(node.items["type"], f"{path}.type", ("volume", "bind", "tmpfs"))
    if "target" not in node.items:
        raise node.mark.error(f"{path}.target is required")
    entry: dict[str, Any] = {
        "type": kind,
        "target": as_str(node.items["target"], f"{path}.target", allow_empty=False),
        "read_only": False,
    }
    for key, value in node.items.items():
        where = f"{path}.{key}"
        if key == "source":
            source = as_str(value, where)
            if source:
                entry["source"] = (
                    str(resolve_path(ctx.base_dir, source)) if kind == "bind" else source
                )
        elif key == "read_only":
            entry["read_only"] = as_bool(value, where)
        elif key == "bind":
            entry.update(_bind_options(as_map(value, where), where, ctx))
        elif key == "volume":
            options = as_map(value, where)
            check_keys(options, where, ("nocopy", "subpath", "labels"))
            if "nocopy" in options.items:
                entry["volume"] = {"nocopy": as_bool(options.items["nocopy"], f"{where}.nocopy")}
            for other in ("subpath", "labels"):
                if other in options.items:
                    ctx.warn(options.key_marks[other], f"{where}.{other}", "ignored")
        elif key == "tmpfs":
            options = as_map(value, where)
            check_keys(options, where, ("size", "mode"))
            tmpfs: dict[str, Any] = {}
            if "size" in options.items:
                tmpfs["size"] = as_bytes(options.items["size"], f"{where}.size")
            if "mode" in options.items:
                tmpfs["mode"] = as_int(options.items["mode"], f"{where}.mode", minimum=0)
            entry["tmpfs"] = tmpfs
        elif key in ("consistency", "image"):
            ctx.warn(node.key_marks[key], where, "ignored")
    if kind == "bind" and "source" not in entry:
        raise node.mark.error(f"{path}.source is required for a bind mount")
    return entry


def _bind_options(node: Map, path: str, ctx: Context) -> dict[str, Any]:
    check_keys(node, path, ("propagation", "create_host_path", "selinux", "recursive"))
    result: dict[str, Any] = {}
    for key, value in node.items.items():
        if key == "propagation":
            result["bind"] = {"propagation": one_of(value, f"{path}.propagation", PROPAGATIONS)}
        elif not key.startswith("x-"):
            ctx.warn(node.key_marks[key], f"{path}.{key}", "ignored")
    return result


# --------------------------------------------------------------------------- deploy

_DEPLOY_KEYS = (
    "mode",
    "replicas",
    "labels",
    "placement",
    "resources",
    "restart_policy",
    "update_config",
    "rollback_config",
    "endpoint_mode",
)


def read_deploy(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> dict[str, Any]:
    deploy = as_map(node, path)
    check_keys(deploy, path, _DEPLOY_KEYS)
    result: dict[str, Any] = {}
    for key, value in deploy.items.items():
        where = f"{path}.{key}"
        marks[f"deploy.{key}"] = value.mark
        if key == "mode":
            result[key] = one_of(value, where, MODES)
        elif key == "replicas":
            result[key] = as_int(value, where, minimum=0)
        elif key == "labels":
            result[key] = {k: v or "" for k, v in as_key_values(value, where).items()}
        elif key == "placement":
            result[key] = _placement(as_map(value, where), where, marks)
        elif key == "resources":
            result[key] = _resources(as_map(value, where), where, ctx)
        elif key == "restart_policy":
            result[key] = _restart_policy(as_map(value, where), where)
        elif key in ("update_config", "rollback_config"):
            result[key] = _update_config(as_map(value, where), where, key)
        elif key == "endpoint_mode":
            result[key] = one_of(value, where, ("vip", "dnsrr"))
        elif key == "x-autoscale":
            result[key] = _autoscale(as_map(value, where), where)
    return result


def _autoscale(node: Map, path: str) -> dict[str, str]:
    """swarmlite's ``deploy.x-autoscale``: its keys, as text, checked as the service labels
    they become (``autoscale_labels``) are checked."""
    check_keys(node, path, AUTOSCALE_KEYS)
    result = {
        key: as_scalar_text(value, f"{path}.{key}")
        for key, value in node.items.items()
        if key in AUTOSCALE_KEYS  # check_keys has told of any other
    }
    try:
        autoscale_spec(autoscale_labels(result))
    except InvalidArgument as exc:
        words = exc.message.replace(AUTOSCALE_PREFIX, f"{path}.")
        raise node.mark.error(words, hint=(exc.hint or "").replace(AUTOSCALE_PREFIX, "")) from None
    return result


def autoscale_labels(declared: dict[str, str]) -> dict[str, str]:
    """The service labels a ``deploy.x-autoscale`` mapping stands for."""
    return {AUTOSCALE_PREFIX + key: value for key, value in declared.items()}


def _placement(node: Map, path: str, marks: dict[str, Mark]) -> dict[str, Any]:
    check_keys(node, path, ("constraints", "preferences", "max_replicas_per_node"))
    result: dict[str, Any] = {}
    for key, value in node.items.items():
        where = f"{path}.{key}"
        if key == "constraints":
            constraints = []
            for i, item in enumerate(as_seq(value, where).items):
                text = as_str(item, f"{where}[{i}]")
                match = CONSTRAINT.match(text)
                if match is None:
                    raise item.mark.error(
                        f"{where}[{i}]: bad constraint {text!r}: it must be {CONSTRAINT_HELP}"
                    )
                constraints.append(f"{match.group(1)}{match.group(2)}{match.group(3)}")
            result[key] = constraints
        elif key == "preferences":
            preferences = []
            for i, item in enumerate(as_seq(value, where).items):
                pref = as_map(item, f"{where}[{i}]")
                check_keys(pref, f"{where}[{i}]", ("spread",))
                if "spread" not in pref.items:
                    raise pref.mark.error(f"{where}[{i}].spread is required")
                preferences.append(
                    as_str(pref.items["spread"], f"{where}[{i}].spread", allow_empty=False)
                )
            result[key] = [{"spread": p} for p in preferences]
        elif key == "max_replicas_per_node":
            result[key] = as_int(value, where, minimum=0)
    return result


def _resources(node: Map, path: str, ctx: Context) -> dict[str, Any]:
    check_keys(node, path, ("limits", "reservations"))
    result: dict[str, Any] = {}
    for key, value in node.items.items():
        where = f"{path}.{key}"
        spec = as_map(value, where)
        check_keys(spec, where, ("cpus", "memory", "pids", "devices", "generic_resources"))
        entry: dict[str, Any] = {}
        for name, item in spec.items.items():
            item_path = f"{where}.{name}"
            if name == "cpus":
                entry[name] = as_float(item, item_path, minimum=0)
            elif name == "memory":
                entry[name] = as_bytes(item, item_path)
            elif name == "pids":
                entry[name] = as_int(item, item_path, minimum=0)
            elif name == "devices":
                raise spec.key_marks[name].error(
                    f"{item_path}: swarm mode has no device reservations; swarmlite would "
                    "neither place the task by them nor give it the devices",
                    hint=DEVICES_HINT,
                )
            elif name == "generic_resources" and key == "reservations":
                entry[name] = _generic_resources(item, item_path)
            elif name == "generic_resources":
                raise spec.key_marks[name].error(
                    f"{item_path}: generic resources are reserved, not limited",
                    hint=f"move them to {path}.reservations.generic_resources",
                )
        if key in ("limits", "reservations"):
            result[key] = entry
    return result


DEVICES_HINT = (
    "advertise the devices on their nodes (`swarmlite join --node-generic-resource "
    "gpu=GPU-<uuid>`, one per device) and reserve them with generic_resources: "
    "[{discrete_resource_spec: {kind: gpu, value: 1}}]; each task finds the ids it was "
    "given in DOCKER_RESOURCE_GPU"
)


def _generic_resources(node: Node, path: str) -> list[dict[str, Any]]:
    """``[{discrete_resource_spec: {kind, value}}]``: a count of a kind, each kind once."""
    result: list[dict[str, Any]] = []
    kinds: set[str] = set()
    for i, item in enumerate(as_seq(node, path).items):
        where = f"{path}[{i}]"
        entry = as_map(item, where)
        check_keys(entry, where, ("discrete_resource_spec",))
        if "discrete_resource_spec" not in entry.items:
            raise entry.mark.error(
                f"{where}.discrete_resource_spec is required",
                hint="a service reserves a count of a kind: {kind: gpu, value: 1}",
            )
        where = f"{where}.discrete_resource_spec"
        spec = as_map(entry.items["discrete_resource_spec"], where)
        check_keys(spec, where, ("kind", "value"))
        for required in ("kind", "value"):
            if required not in spec.items:
                raise spec.mark.error(f"{where}.{required} is required")
        kind_node = spec.items["kind"]
        kind = as_str(kind_node, f"{where}.kind", allow_empty=False)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", kind):
            raise kind_node.mark.error(
                f"{where}.kind {kind!r} must be letters, digits, '_', '.' or '-'"
            )
        if kind in kinds:
            raise kind_node.mark.error(f"{where}.kind: {kind} is reserved twice")
        kinds.add(kind)
        value = as_int(spec.items["value"], f"{where}.value", minimum=1)
        result.append({"discrete_resource_spec": {"kind": kind, "value": value}})
    return result


def _restart_policy(node: Map, path: str) -> dict[str, Any]:
    check_keys(node, path, ("condition", "delay", "max_attempts", "window"))
    result: dict[str, Any] = {}
    for key, value in node.items.items():
        where = f"{path}.{key}"
        if key == "condition":
            result[key] = one_of(value, where, ("none", "on-failure", "any"))
        elif key == "max_attempts":
            result[key] = as_int(value, where, minimum=0)
        elif key in ("delay", "window"):
            result[key] = dur(value, where)
    return result


def _update_config(node: Map, path: str, which: str) -> dict[str, Any]:
    check_keys(
        node,
        path,
        ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"),
    )
    actions = (
        ("continue", "rollback", "pause") if which == "update_config" else ("continue", "pause")
    )
    result: dict[str, Any] = {}
    for key, value in node.items.items():
        where = f"{path}.{key}"
        if key == "parallelism":
            result[key] = as_int(value, where, minimum=0)
        elif key in ("delay", "monitor"):
            result[key] = dur(value, where)
        elif key == "failure_action":
            result[key] = one_of(value, where, actions)
        elif key == "max_failure_ratio":
            ratio = as_float(value, where, minimum=0)
            if ratio > 1:
                raise value.mark.error(f"{where} must be between 0 and 1, got {ratio:g}")
            result[key] = ratio
        elif key == "order":
            result[key] = one_of(value, where, ("stop-first", "start-first"))
    return result
