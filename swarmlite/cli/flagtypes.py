"""Docker's flag value syntaxes as click types: what ``docker service create`` accepts after
``--publish``, ``--mount``, ``--secret``, ``--limit-memory`` and the like, parsed into the
api's structs.

Owns each syntax and Docker's words for a bad value (from docker/cli's ``opts`` package,
28.2.2): a bad value is a usage error naming the flag. Checks nothing the server checks
against the cluster (names, ports in use, mount sources); a syntax that swarmlite cannot
honour (``--mount volume-opt=...``, ``--network ip=...``) is refused, never dropped.
Durations are seconds, sizes bytes, CPUs nano-CPUs, as in ``api.service``.
"""

from __future__ import annotations

import csv
import datetime
import ipaddress
import os
import re
import shlex
import time
from fractions import Fraction
from typing import Any

import click

from swarmlite.api import FileRef, Mount, NetworkAttachment, PortConfig, Ulimit
from swarmlite.api.resources import DiscreteResource, parse_reservation
from swarmlite.cli.commands import parse_duration
from swarmlite.errors import InvalidArgument

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def go_bool(text: str) -> bool | None:
    """True or False as Go's strconv.ParseBool reads ``text``; None if it is no boolean."""
    return True if text in _TRUE else False if text in _FALSE else None


def _fields(value: str) -> list[str]:
    """One CSV record, as Docker's ``--mount``/``--secret``/``--publish`` read theirs."""
    return next(csv.reader([value]), [])


def _octal(text: str) -> int:
    """Go's ``ParseUint(text, 0, 32)``: ``0444`` and ``0o444`` octal, ``0x124`` hex, ``292``."""
    if len(text) > 1 and text[0] == "0" and text.isdigit():
        return int(text, 8)
    return int(text, 0)


# --------------------------------------------------------------------------- scalars


class GoDuration(click.ParamType[float]):
    """A Go duration (``90s``, ``1m30s``, ``500ms``, ``0``) in seconds; never negative."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        if text in ("0", "+0"):
            return 0.0
        if text.startswith("-"):
            self.fail("duration cannot be negative", param, ctx)
        try:
            return parse_duration(text.removeprefix("+"))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_FRACTION = re.compile(r"(\.\d{6})\d+")  # Python reads microseconds; Docker nanoseconds


def parse_since(text: str, now: float) -> float:
    """``--since``: a Go duration before ``now`` (``10m``), an RFC 3339 time or date
    (``2013-01-02T13:23:37Z``; without a zone, local time) or epoch seconds, as
    ``docker logs --since`` reads it. Epoch seconds; 0 for ``0`` (from the start)."""
    text = text.strip()
    if text != "0":
        try:
            return now - parse_duration(text)
        except ValueError:
            pass
    try:
        moment = datetime.datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("z", "Z")))
        return moment.timestamp()  # naive: local time, as docker reads it
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"failed to parse value as time or duration: {text!r}") from None


class Since(click.ParamType[float]):
    name = "timestamp"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return parse_since(str(value), time.time())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_SIZE = re.compile(r"(\d+(?:\.\d+)*) ?([kmgtp])?i?b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str) -> int:
    """Docker's memory sizes (``RAMInBytes``): ``512M``, ``1g``, ``1.5GiB``, ``1024`` bytes;
    every unit is a power of 1024."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid size: '{text}'")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[(unit or "").lower()])


class Bytes(click.ParamType[int]):
    name = "bytes"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        try:
            return parse_bytes(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class NanoCpus(click.ParamType[int]):
    """CPUs as a decimal (``0.5``, ``2``) -> nano-CPUs, refusing more than nine decimals."""

    name = "decimal"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        try:
            nanos = Fraction(str(value).strip()) * 1_000_000_000
        except (ValueError, ZeroDivisionError):
            self.fail(f"failed to parse {value} as a rational number", param, ctx)
        if nanos.denominator != 1:
            self.fail("value is too precise", param, ctx)
        return int(nanos)


class Shlex(click.ParamType[list[str]]):
    """A command line split as a shell would (``--entrypoint "sh -c"``, ``--args``)."""

    name = "command"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        try:
            return shlex.split(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


# --------------------------------------------------------------------------- key=value lists


class KeyValue(click.ParamType[tuple[str, str]]):
    """``key=value`` (``key`` alone: an empty value), for labels and sysctls."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        key, _, text = str(value).partition("=")
        if not key.strip():
            self.fail(f"invalid label '{value}': empty name", param, ctx)
        if any(blank in key.lstrip() for blank in " \t"):
            self.fail(f"label '{key}' contains whitespaces", param, ctx)
        return key.lstrip(), text


class LogOpt(click.ParamType[tuple[str, str]]):
    """``--log-opt key=value``: a log driver option; ``key`` alone is refused (docker would
    keep it as an empty value that no driver accepts)."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"invalid log option '{value}': expected key=value", param, ctx)
        return key.strip(), text


def env_entry(text: str) -> str:
    """``KEY=value``; a bare ``KEY`` takes its value from this shell if it has one, as
    docker's ``-e KEY`` does."""
    key, sep, _ = text.partition("=")
    if not key:
        raise ValueError(f"invalid environment variable: {text}")
    if not sep and key in os.environ:
        return f"{key}={os.environ[key]}"
    return text


class EnvVar(click.ParamType[str]):
    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return env_entry(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def read_env_file(path: str) -> list[str]:
    """Docker's ``--env-file``: one ``KEY=value`` a line, ``#`` comments and blank lines
    skipped, a bare ``KEY`` taken from this shell (or dropped if the shell has none)."""
    entries: list[str] = []
    with open(path, encoding="utf-8-sig") as lines:
        for raw in lines:
            line = raw.rstrip("\r\n").lstrip()
            if not line or line.startswith("#"):
                continue
            key, sep, _ = line.partition("=")
            if not key:
                raise ValueError(f"invalid env file ({path}): no variable name on line '{line}'")
            if any(blank in key for blank in " \t"):
                raise ValueError(
                    f"invalid env file ({path}): variable '{key}' contains whitespaces"
                )
            if sep:
                entries.append(line)
            elif key in os.environ:
                entries.append(f"{key}={os.environ[key]}")
    return entries


class IPAddress(click.ParamType[str]):
    name = "ip"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return str(ipaddress.ip_address(str(value).strip()))
        except ValueError:
            self.fail(f"IP address is not correctly formatted: {value}", param, ctx)


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")


class DnsSearch(click.ParamType[str]):
    name = "domain"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip(" ")
        if text != "." and (not _DOMAIN.fullmatch(text) or len(text) >= 255):
            self.fail(f"{text} is not a valid domain", param, ctx)
        return text


class HostMapping(click.ParamType[str]):
    """``host:ip`` (or ``host=ip``), kept as ``host:ip``; ``host-gateway`` is an ip too."""

    name = "host:ip"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        host, sep, addr = text.partition("=")
        if not sep:
            host, sep, addr = text.partition(":")
        if not sep or not host:
            self.fail(f"bad format for add-host: {text!r}", param, ctx)
        bare = addr[1:-1] if len(addr) > 2 and addr[0] == "[" and addr[-1] == "]" else addr
        if bare != "host-gateway":
            try:
                ipaddress.ip_address(bare)
            except ValueError:
                self.fail(f"invalid IP address in add-host: {addr!r}", param, ctx)
        return f"{host}:{addr}"


def capability(name: str) -> str:
    """``net_admin`` -> ``CAP_NET_ADMIN``; ``ALL`` and ``RESET`` stay as they are."""
    name = name.strip().upper()
    return name if name in ("ALL", "RESET") or name.startswith("CAP_") else f"CAP_{name}"


_ULIMITS = frozenset(
    [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ]
)


class UlimitType(click.ParamType[Ulimit]):
    """``nofile=1024:2048`` (soft:hard) or ``nofile=1024`` (both)."""

    name = "ulimit"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Ulimit):
            return value
        name, sep, limits = str(value).partition("=")
        if not sep:
            self.fail(f"invalid ulimit argument: {value}", param, ctx)
        if name not in _ULIMITS:
            self.fail(f"invalid ulimit type: {name}", param, ctx)
        numbers = limits.split(":")
        if len(numbers) > 2:
            self.fail(
                f"too many limit value arguments - {limits}, can only have up to two, "
                "`soft[:hard]`",
                param,
                ctx,
            )
        try:
            soft, hard = int(numbers[0]), int(numbers[-1])
        except ValueError:
            self.fail(f"invalid ulimit value: {limits}", param, ctx)
        if hard != -1 and soft > hard:
            self.fail(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}",
                param,
                ctx,
            )
        return Ulimit(name=name, soft=soft, hard=hard)


class PlacementPref(click.ParamType[str]):
    """``spread=node.labels.zone`` -> ``node.labels.zone`` (spread is the only strategy)."""

    name = "pref"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        strategy, sep, descriptor = str(value).partition("=")
        if not sep or not strategy:
            self.fail('placement preference must be of the format "<strategy>=<arg>"', param, ctx)
        if strategy != "spread":
            self.fail(
                f"unsupported placement preference {strategy} (only spread is supported)",
                param,
                ctx,
            )
        return descriptor


# --------------------------------------------------------------------------- ports

_LONG_SYNTAX = re.compile(r"\w+=\w+(,\w+=\w+)*")  # searched, not matched whole: Docker's test
_PROTOCOLS = ("tcp", "udp", "sctp")
_PUBLISH_MODES = ("ingress", "host")


def _port_number(text: str, what: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"invalid {what} port ({text}): value must be an integer")
    return int(text)


def _port_range(text: str, what: str) -> range:
    first, dash, last = text.partition("-")
    if not text or (dash and not last):
        raise ValueError(f"invalid {what}Port: {text}")
    start = _port_number(first, what)
    end = _port_number(last, what) if dash else start
    if end < start:
        raise ValueError(f"invalid range specified for {what}Port: {text}")
    return range(start, end + 1)


def parse_ports(value: str) -> list[PortConfig]:
    """``--publish``: ``published=8080,target=80[,protocol=udp][,mode=host]``, or the short
    ``[8080:]80[/udp]`` with equal port ranges (``8080-8081:80-81``)."""
    if _LONG_SYNTAX.search(value):
        return [_long_port(value)]
    spec, _, protocol = value.partition("/")
    protocol = protocol.lower() or "tcp"
    if protocol not in _PROTOCOLS:
        raise ValueError(f"invalid proto: {protocol}")
    parts = spec.split(":")
    if len(parts) == 3:
        if parts[0]:
            raise ValueError("hostip is not supported")
        parts = parts[1:]
    if len(parts) > 2:
        raise ValueError(f"invalid port format: {value}")
    targets = _port_range(parts[-1], "container")
    if len(parts) == 1 or not parts[0]:
        return [PortConfig(target=target, protocol=protocol) for target in targets]
    published = _port_range(parts[0], "host")
    if len(targets) == 1:  # a range of published ports for one target port, as docker allows
        pairs = [(port, targets[0]) for port in published]
    elif len(targets) == len(published):
        pairs = list(zip(published, targets, strict=True))
    else:
        raise ValueError(f"invalid ranges specified for container and host Ports: {value}")
    return [PortConfig(target=t, published=p, protocol=protocol) for p, t in pairs]


def _long_port(value: str) -> PortConfig:
    fields: dict[str, Any] = {}
    for field in _fields(value):
        key, sep, text = field.lower().partition("=")
        if not sep or not key:
            raise ValueError(f"invalid field: {field}")
        if key == "protocol":
            if text not in _PROTOCOLS:
                raise ValueError(f"invalid protocol value '{text}'")
            fields["protocol"] = text
        elif key == "mode":
            if text not in _PUBLISH_MODES:
                raise ValueError(
                    f"invalid publish mode value ({text}): must be either 'ingress' or 'host'"
                )
            fields["mode"] = text
        elif key in ("target", "published"):
            fields[key] = _port_number(text, key)
        else:
            raise ValueError(f"invalid field key: {key}")
    if not fields.get("target"):
        raise ValueError("missing mandatory field 'target'")
    return PortConfig(**fields)


class Ports(click.ParamType[list[PortConfig]]):
    name = "port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        try:
            return parse_ports(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


# --------------------------------------------------------------------------- mounts

# Keys of Docker's --mount that swarmlite has no field for yet: refused, never dropped.
_UNSUPPORTED_MOUNT_KEYS = frozenset(
    {"volume-opt", "volume-subpath", "image-subpath", "bind-nonrecursive", "bind-recursive"}
)


def _bool_field(key: str, text: str) -> bool:
    found = go_bool(text)
    if found is None:
        raise ValueError(f"invalid value for {key}: {text}")
    return found


def parse_mount(value: str) -> Mount:
    """``--mount type=bind,source=/x,target=/y,readonly`` (Docker's keys; type defaults to
    volume; a relative source ``./x`` is made absolute here, as docker does)."""
    fields: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for field in _fields(value):
        key, sep, text = field.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                fields["read_only"] = True
            elif key == "volume-nocopy":
                fields["volume_nocopy"] = True
            elif key in _UNSUPPORTED_MOUNT_KEYS:
                raise ValueError(f"mount option {key} is not supported by swarmlite")
            else:
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
        elif key == "type":
            fields["type"] = text.lower()
        elif key in ("source", "src"):
            relative = text.startswith(".") and not os.path.isabs(text)
            fields["source"] = os.path.abspath(text) if relative else text
        elif key in ("target", "dst", "destination"):
            fields["target"] = text
        elif key in ("readonly", "ro"):
            fields["read_only"] = _bool_field(key, text)
        elif key == "volume-nocopy":
            fields["volume_nocopy"] = _bool_field(key, text)
        elif key == "volume-label":
            name, _, label = text.partition("=")
            if name:
                labels[name] = label
        elif key == "volume-driver":
            fields["volume_driver"] = text
        elif key == "bind-propagation":
            fields["bind_propagation"] = text.lower()
        elif key == "tmpfs-size":
            fields["tmpfs_size"] = parse_bytes(text)
        elif key == "tmpfs-mode":
            try:
                fields["tmpfs_mode"] = int(text, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {text}") from None
        elif key == "consistency":
            pass  # macOS file sharing only: Docker on Linux ignores it too
        elif key in _UNSUPPORTED_MOUNT_KEYS:
            raise ValueError(f"mount option {key} is not supported by swarmlite")
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if labels:
        fields["volume_labels"] = labels
    mount = Mount(**fields)
    if not mount.target:
        raise ValueError("target is required")
    _check_mount_options(mount, fields)
    return mount


def _check_mount_options(mount: Mount, fields: dict[str, Any]) -> None:
    for prefix, kind in (("volume_", "volume"), ("bind_", "bind"), ("tmpfs_", "tmpfs")):
        if mount.type != kind and any(key.startswith(prefix) for key in fields):
            option = prefix.replace("_", "-")
            raise ValueError(f"cannot mix '{option}*' options with mount type '{mount.type}'")


class MountType(click.ParamType[Mount]):
    name = "mount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Mount):
            return value
        try:
            return parse_mount(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


# --------------------------------------------------------------------------- secrets, configs


def parse_file_ref(value: str, kind: str) -> FileRef:
    """``--secret name`` or ``--secret source=name,target=path,uid=0,gid=0,mode=0400``
    (likewise ``--config``); the target defaults to the name."""
    fields = _fields(value)
    if len(fields) == 1 and "=" not in fields[0]:
        return FileRef(name=fields[0], target=fields[0])
    found: dict[str, Any] = {}
    for field in fields:
        key, sep, text = field.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        key = key.lower()
        if key in ("source", "src"):
            found["name"] = text
        elif key in ("target", "uid", "gid"):
            found[key] = text
        elif key == "mode":
            try:
                found["mode"] = _octal(text)
            except ValueError:
                raise ValueError(f"invalid mode specified: {text}") from None
        else:
            raise ValueError(f"invalid field in {kind} request: {key}")
    if not found.get("name"):
        raise ValueError("source is required")
    found["target"] = found.get("target") or found["name"]
    return FileRef(**found)


class FileRefType(click.ParamType[FileRef]):
    """A secret (``kind="secret"``) or config reference."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, FileRef):
            return value
        try:
            return parse_file_ref(str(value), self.kind)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


# --------------------------------------------------------------------------- networks

# Docker accepts these for containers; a service's attachment has no place for them.
_CONTAINER_ONLY_NETWORK_KEYS = frozenset(
    {"driver-opt", "ip", "ip6", "mac-address", "link-local-ip", "gw-priority"}
)


def parse_network(value: str) -> NetworkAttachment:
    """``--network name`` or ``--network name=shop,alias=db,alias=pg``."""
    if not _LONG_SYNTAX.search(value):
        return NetworkAttachment(target=value)
    target = ""
    aliases: list[str] = []
    for field in _fields(value):
        key, sep, text = field.partition("=")
        key, text = key.strip().lower(), text.strip()
        if not sep or not key:
            raise ValueError(f"invalid field {field}")
        if key == "name":
            target = text
        elif key == "alias":
            aliases.append(text)
        elif key in _CONTAINER_ONLY_NETWORK_KEYS:
            raise ValueError(f"network option {key} is not supported by swarmlite services")
        else:
            raise ValueError(f"invalid field key {key}")
    if not target:
        raise ValueError("network name/id is not specified")
    return NetworkAttachment(target=target, aliases=aliases)


class NetworkType(click.ParamType[NetworkAttachment]):
    name = "network"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, NetworkAttachment):
            return value
        try:
            return parse_network(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class GenericResourceType(click.ParamType[DiscreteResource]):
    """``--generic-resource KIND=COUNT``: a count of a kind the service's tasks reserve."""

    name = "kind=count"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, DiscreteResource):
            return value
        try:
            return parse_reservation(str(value), flag="--generic-resource")
        except InvalidArgument as exc:
            self.fail(exc.message, param, ctx)
