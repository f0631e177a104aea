"""Compose's merge rules, on canonical service configs (normalize.py's output).

Owns how a later file (or an extending service) changes an earlier one: mappings merge
key by key, ports merge by (published, target, protocol), volumes, secrets and configs by
target, environment, labels, sysctls, ulimits, networks and depends_on by key, every
other sequence (command, entrypoint, dns, ...) is replaced; ``!reset`` removes a value and
``!override`` replaces it whole. Invariant: inputs are never mutated.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from swarmlite.compose.context import RESET, Override

_BY_KEY = frozenset({"environment", "labels", "sysctls", "ulimits", "networks", "depends_on"})


def _port_key(port: dict[str, Any]) -> Hashable:
    return (port.get("published"), port.get("target"), port.get("protocol"))


def _target_key(entry: dict[str, Any]) -> Hashable:
    return entry.get("target")


_BY_ENTRY: dict[str, Callable[[dict[str, Any]], Hashable]] = {
    "ports": _port_key,
    "volumes": _target_key,
    "secrets": _target_key,
    "configs": _target_key,
}


def merge_entries(
    base: list[dict[str, Any]],
    over: list[dict[str, Any]],
    key: Callable[[dict[str, Any]], Hashable],
) -> list[dict[str, Any]]:
    """``base`` with each entry of ``over`` replacing the one with the same key, or added."""
    result = list(base)
    index = {key(entry): i for i, entry in enumerate(result)}
    for entry in over:
        k = key(entry)
        if k in index:
            result[index[k]] = entry
        else:
            index[k] = len(result)
            result.append(entry)
    return result


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in over.items():
        old = result.get(key)
        if value is RESET:
            result.pop(key, None)
        elif isinstance(value, Override):
            result[key] = value.value
        elif isinstance(old, dict) and isinstance(value, dict):
            result[key] = deep_merge(old, value)
        else:
            result[key] = value
    return result


def merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """The config of a service defined by ``base`` and then changed by ``over``."""
    result = dict(base)
    for key, value in over.items():
        old = result.get(key)
        if value is RESET:
            result.pop(key, None)
        elif isinstance(value, Override) or old is None or old is RESET:
            result[key] = value
        elif isinstance(old, Override):
            result[key] = merge_service({key: old.value}, {key: value})[key]
        elif key in _BY_ENTRY and isinstance(old, list) and isinstance(value, list):
            result[key] = merge_entries(old, value, _BY_ENTRY[key])
        elif key in _BY_KEY and isinstance(old, dict) and isinstance(value, dict):
            result[key] = {**old, **value}
        elif isinstance(old, dict) and isinstance(value, dict):
            result[key] = deep_merge(old, value)
        else:
            result[key] = value
    return result


def strip_markers(config: dict[str, Any]) -> dict[str, Any]:
    """The config with ``!reset`` values gone and ``!override`` values unwrapped."""
    result: dict[str, Any] = {}
    for key, value in config.items():
        if value is RESET:
            continue
        if isinstance(value, Override):
            value = value.value
        result[key] = strip_markers(value) if isinstance(value, dict) else value
    return result
