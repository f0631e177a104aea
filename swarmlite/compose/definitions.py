"""The top-level networks, volumes, secrets and configs of one compose file, canonical.

Owns their keys (see keys.py for the table): ``external`` (also the legacy
``external: {name: x}``), ``name``, ``labels``, a network's overlay driver, subnet,
``internal`` and ``attachable``, a volume's driver, a secret's or config's source (``file:``
made absolute against the file's directory, ``environment:``, ``content:``). Does not read
secret files (convert.py does, at deploy) nor check references (checks.py).
"""

from __future__ import annotations

from typing import Any

from swarmlite.compose import keys
from swarmlite.compose.context import Context, resolve_path
from swarmlite.compose.loader import Map, Node, Scalar
from swarmlite.compose.validate import (
    as_bool,
    as_key_values,
    as_map,
    as_seq,
    as_str,
    check_keys,
    guard,
)

KINDS = ("networks", "volumes", "secrets", "configs")

_ALLOWED = {
    "networks": (
        "driver",
        "driver_opts",
        "attachable",
        "enable_ipv6",
        "enable_ipv4",
        "ipam",
        "internal",
        "labels",
        "external",
        "name",
    ),
    "volumes": ("driver", "driver_opts", "external", "labels", "name"),
    "secrets": (
        "file",
        "environment",
        "external",
        "labels",
        "name",
        "driver",
        "driver_opts",
        "template_driver",
    ),
    "configs": ("file", "environment", "content", "external", "labels", "name", "template_driver"),
}
_IGNORED = {
    "networks": {"driver_opts", "enable_ipv6", "enable_ipv4"},
    "volumes": {"driver_opts"},
    "secrets": {"driver", "driver_opts", "template_driver"},
    "configs": {"template_driver"},
}
SOURCES = ("file", "environment", "content")


def normalize_definitions(kind: str, node: Node, ctx: Context) -> dict[str, dict[str, Any]]:
    if isinstance(node, Scalar) and node.value is None:
        return {}
    defs = as_map(node, kind)
    result: dict[str, dict[str, Any]] = {}
    for name, value in defs.items.items():
        if name.startswith("x-"):
            continue
        with guard():  # one bad definition: the others are still read
            result[name] = _one(kind, name, value, ctx)
    return result


def _one(kind: str, name: str, node: Node, ctx: Context) -> dict[str, Any]:
    path = f"{kind}.{name}"
    if isinstance(node, Scalar) and node.value is None:
        return {}
    spec = as_map(node, path)
    check_keys(spec, path, _ALLOWED[kind])
    entry: dict[str, Any] = {}
    for key, value in spec.items.items():
        where = f"{path}.{key}"
        if key in _IGNORED[kind]:
            ctx.warn(spec.key_marks[key], where, "ignored: not supported by swarmlite")
        elif key == "external":
            if isinstance(value, Map):
                check_keys(value, where, ("name",))
                entry["external"] = True
                if "name" in value.items:
                    entry["name"] = as_str(value.items["name"], f"{where}.name", allow_empty=False)
            else:
                entry["external"] = as_bool(value, where)
        elif key == "name":
            entry["name"] = as_str(value, where, allow_empty=False)
        elif key in ("internal", "attachable"):  # networks only (_ALLOWED)
            entry[key] = as_bool(value, where)
        elif key == "labels":
            entry["labels"] = {k: v or "" for k, v in as_key_values(value, where).items()}
        elif key == "driver":
            driver = as_str(value, where, allow_empty=False)
            if kind == "networks" and driver == "bridge":
                ctx.warn(
                    value.mark,
                    where,
                    "bridge replaced by overlay: a stack's networks span the cluster",
                )
                continue
            if kind == "networks" and driver != "overlay":
                raise value.mark.error(
                    f"{where}: driver {driver!r} is {keys.NOT_IN_CLUSTER}; stack networks are "
                    "overlay networks (use `external: true` to attach to an existing one)"
                )
            entry["driver"] = driver
        elif key == "ipam":
            subnet = _subnet(as_map(value, where), where, ctx)
            if subnet:
                entry["ipam"] = {"config": [{"subnet": subnet}]}
        elif key == "file":
            file = resolve_path(ctx.base_dir, as_str(value, where, allow_empty=False))
            if not file.is_file():
                raise value.mark.error(f"{where}: {file} not found")
            entry["file"] = str(file)
        elif key in ("environment", "content"):
            entry[key] = as_str(value, where, allow_empty=key == "content")
            if key == "environment" and entry[key] not in ctx.env:
                raise value.mark.error(
                    f"{where}: variable {entry[key]} is not set",
                    hint=f"set {entry[key]} in the environment or in .env",
                )
    if entry.get("external"):
        made = {"file", "environment", "content", "driver", "ipam", "internal", "attachable"}
        extra = sorted(set(entry) & made)
        if extra:
            raise spec.mark.error(f"{path} is external: it cannot also set {', '.join(extra)}")
    elif (
        kind in ("secrets", "configs") and "name" in entry and not any(s in entry for s in SOURCES)
    ):
        # Only a name: the platform's existing secret (or config) of that name.
        ctx.warn(
            spec.mark,
            path,
            f"no file, environment or content: taken as the existing "
            f"{kind[:-1]} named {entry['name']!r} (external)",
        )
        entry["external"] = True
    elif kind in ("secrets", "configs"):
        sources = [s for s in SOURCES if s in entry]
        if len(sources) != 1:
            allowed = (
                "file, environment or content" if kind == "configs" else ("file or environment")
            )
            raise spec.mark.error(
                f"{path} needs exactly one of {allowed} (or external: true), "
                f"got {', '.join(sources) or 'none'}"
            )
    return entry


def _subnet(node: Map, path: str, ctx: Context) -> str:
    check_keys(node, path, ("driver", "config", "options"))
    subnet = ""
    for key, value in node.items.items():
        where = f"{path}.{key}"
        if key != "config":
            ctx.warn(node.key_marks[key], where, "ignored: the allocator manages addresses")
            continue
        for i, item in enumerate(as_seq(value, where).items):
            config = as_map(item, f"{where}[{i}]")
            check_keys(config, f"{where}[{i}]", ("subnet", "ip_range", "gateway", "aux_addresses"))
            for name, part in config.items.items():
                if name == "subnet" and i == 0:
                    subnet = as_str(part, f"{where}[{i}].subnet", allow_empty=False)
                else:
                    ctx.warn(
                        config.key_marks[name],
                        f"{where}[{i}].{name}",
                        "ignored: one subnet per network, addresses from the allocator",
                    )
    return subnet
