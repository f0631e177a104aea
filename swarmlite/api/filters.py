"""Docker's list filters (``-f key=value``), once, for every listing of every front end.

Owns the filter keys each kind accepts, how each key matches, Docker's error words for a
bad key or value, and the selection itself. It never reads the store: callers pass the
objects (and, for tasks, the services and nodes that names resolve against). Pure.

Semantics are Docker's (moby ``daemon/cluster/filters.go``, ``daemon/network/filter.go``,
swarmkit ``manager/controlapi``): different keys are ANDed, the values of one key ORed,
except ``label``, whose values must all hold. ``id`` and ``name`` match by prefix (a node's
name is its hostname, a task's is ``<service>.<slot|node id>.<task id>``); a network's
``name`` and ``id`` match exactly or as a regular expression found anywhere in them;
``label`` is ``key`` (present) or ``key=value``. A task's ``service`` and ``node`` are first
resolved to one id each (full id, then name, then unique id prefix), as dockerd does, so an
unknown one is an error rather than an empty list. Items keep their order.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from swarmlite.api.control import BlobView, NetworkView, NodeView, ServiceView
from swarmlite.api.network import Network
from swarmlite.api.node import Node
from swarmlite.api.secret import Config, Secret
from swarmlite.api.service import Service
from swarmlite.api.states import NodeRole, TaskState
from swarmlite.api.task import Task
from swarmlite.errors import InvalidArgument, NotFound

Filters = dict[str, list[str]]  # key -> values, as Docker's API carries them
Field = str | bool | Mapping[str, str]  # what one key of a filter looks at in one item

T = TypeVar("T")
NodeT = TypeVar("NodeT", Node, NodeView)
ServiceT = TypeVar("ServiceT", Service, ServiceView)
NetworkT = TypeVar("NetworkT", Network, NetworkView)
BlobT = TypeVar("BlobT", Secret, Config, BlobView)

# Docker's task states, all accepted by `desired-state` (swarmlite never uses some of them).
_TASK_STATES = frozenset(s.value for s in TaskState) | {"allocated", "ready", "remove"}
# Network names dockerd reserves for its own networks (`type=builtin`).
_BUILTIN_NETWORKS = frozenset({"bridge", "host", "none", "default"})
_RUNTIME = "container"  # the only kind of task swarmlite runs


def parse_filters(args: Iterable[str]) -> Filters:
    """``["label=a=b", "name=web"]`` (the CLI's ``-f`` values) -> ``{"label": ["a=b"], ...}``.

    As docker's CLI does: keys are trimmed and lower-cased, values trimmed, an empty
    argument is ignored and a repeated value counted once.
    """
    filters: Filters = {}
    for arg in args:
        if not arg:
            continue
        key, sep, value = arg.partition("=")
        if not sep:
            raise InvalidArgument("bad format of filter (expected name=value)", hint=f"got {arg!r}")
        values = filters.setdefault(key.strip().lower(), [])
        if value.strip() not in values:
            values.append(value.strip())
    return filters


def filters_from_json(text: str | bytes) -> Filters:
    """The Engine API's ``filters`` query parameter, in either of its forms:
    ``{"label": {"a=b": true}}`` (docker's CLI) or ``{"label": ["a=b"]}`` (docker-py,
    Portainer). Empty text is no filter."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument("invalid filter", hint=f"filters is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid filter", hint="filters must be a JSON object")
    filters: Filters = {}
    for key, values in raw.items():
        if isinstance(values, dict):
            items = list(values)
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            items = values
        else:
            raise InvalidArgument(
                "invalid filter",
                hint=f'filter {key!r} must map values to true or list them: {{"{key}": ["v"]}}',
            )
        filters[key] = list(dict.fromkeys(items))
    return filters


# --------------------------------------------------------------------------- matching


class Match(enum.Enum):
    """How the values of one key are compared with the item's field."""

    EXACT = "exact"  # a value equals the field
    PREFIX = "prefix"  # a value starts the field
    PATTERN = "pattern"  # a value equals the field, or is a regex found in it (networks)
    LABELS = "labels"  # every `k` / `k=v` holds; `k=` means present, as swarmkit has it
    KV_LIST = "kv-list"  # every `k` / `k=v` holds; `k=` means empty (moby's MatchKVList)
    FLAG = "flag"  # one value, true|1 or false|0, compared with a boolean field
    PRESENT = "present"  # any value: the field must be true (`_up-to-date`)


@dataclass(frozen=True, slots=True)
class Key:
    """One filter key: how it matches and which values Docker accepts for it."""

    match: Match
    choices: frozenset[str] = frozenset()  # empty: any value
    invalid: str = "invalid filter '{key}={value}'"  # Docker's words for a value not in choices
    fold_case: bool = False  # values compared lower-cased (Docker upper-cases enum names)
    skip_empty: bool = False  # an empty value is dropped, not refused (role, desired-state...)

    def check(self, key: str, values: Sequence[str]) -> None:
        """InvalidArgument, in Docker's words, for a value Docker refuses for ``key``."""
        if self.match is Match.FLAG:
            if len(values) > 1:
                raise InvalidArgument(f'got more than one value for filter key "{key}"')
            if values and values[0] not in ("0", "1", "false", "true"):
                raise InvalidArgument(
                    f"invalid value for filter '{key}', must be "
                    '"true" (or "1"), or "false" (or "0")'
                )
        if not self.choices:
            return
        for value in self.wanted(values):
            if value not in self.choices:
                raise InvalidArgument(
                    self.invalid.format(key=key, value=value),
                    hint=f"{key} is one of: {', '.join(sorted(self.choices))}",
                )

    def wanted(self, values: Sequence[str]) -> list[str]:
        """The values that take part in matching."""
        folded = [v.lower() for v in values] if self.fold_case else list(values)
        return [v for v in folded if v] if self.skip_empty else folded

    def matches(self, values: Sequence[str], seen: Field) -> bool:
        """Whether the item, whose field for this key is ``seen``, passes ``values``."""
        if self.match is Match.LABELS:
            assert isinstance(seen, Mapping)
            return _labels_hold(seen, values)
        if self.match is Match.KV_LIST:
            assert isinstance(seen, Mapping)
            return _kv_list_holds(seen, values)
        if self.match is Match.FLAG or self.match is Match.PRESENT:
            assert isinstance(seen, bool)
            return seen is (self.match is Match.PRESENT or values[0] in ("1", "true"))
        assert isinstance(seen, str)
        if self.match is Match.PREFIX:
            return any(seen.startswith(v) for v in values)
        if self.match is Match.PATTERN:
            return any(v == seen or _search(v, seen) for v in values)
        return seen in values


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False  # as Docker does: a value that is not a regex only matches exactly


def _labels_hold(labels: Mapping[str, str], values: Sequence[str]) -> bool:
    # swarmkit: the values become a map (a later `k=...` replaces an earlier one), and an
    # empty value asks only that the label be there.
    wanted = dict(value.partition("=")[::2] for value in values)
    return all(k in labels and (not v or labels[k] == v) for k, v in wanted.items())


def _kv_list_holds(labels: Mapping[str, str], values: Sequence[str]) -> bool:
    # moby's MatchKVList (networks): every value holds on its own; `k=` asks for an empty one.
    for value in values:
        key, sep, want = value.partition("=")
        if key not in labels or (sep and labels[key] != want):
            return False
    return True


@dataclass(frozen=True, slots=True)
class FilterSet:
    """The filter keys of one kind of object (``NODE``, ``SERVICE``...)."""

    kind: str
    keys: Mapping[str, Key]

    def check(self, filters: Filters) -> None:
        """InvalidArgument, in Docker's words, for an unknown key or a refused value."""
        for key, values in filters.items():
            rule = self.keys.get(key)
            if rule is None:
                raise InvalidArgument(
                    f"invalid filter '{key}'",
                    hint=f"{self.kind} filters: {', '.join(sorted(self.keys))}",
                )
            rule.check(key, values)

    def select(
        self, filters: Filters, items: Iterable[T], fields: Callable[[T], Mapping[str, Field]]
    ) -> list[T]:
        """The items that every filter key matches, in order. ``fields(item)`` gives, for
        each key of this set, what that key looks at in the item."""
        self.check(filters)
        active: list[tuple[str, Key, list[str]]] = []
        for key, values in filters.items():
            rule = self.keys[key]
            wanted = rule.wanted(values)
            if wanted:
                active.append((key, rule, wanted))
        if not active:
            return list(items)
        selected = []
        for item in items:
            item_fields = fields(item)
            if all(rule.matches(wanted, item_fields[key]) for key, rule, wanted in active):
                selected.append(item)
        return selected


# --------------------------------------------------------------------------- the kinds

_ID = Key(Match.PREFIX)
_NAME = Key(Match.PREFIX)
_LABEL = Key(Match.LABELS)
_RUNTIME_KEY = Key(Match.EXACT)

NODE = FilterSet(
    "node",
    {
        "id": _ID,
        "name": _NAME,
        "label": _LABEL,  # engine labels, which swarmlite nodes do not have
        "node.label": _LABEL,
        "role": Key(
            Match.EXACT,
            frozenset(r.value for r in NodeRole),
            "Invalid role filter: '{value}'",
            fold_case=True,
            skip_empty=True,
        ),
        "membership": Key(
            Match.EXACT,
            frozenset({"accepted", "pending"}),
            "Invalid membership filter: '{value}'",
            fold_case=True,
            skip_empty=True,
        ),
    },
)

SERVICE = FilterSet(
    "service",
    {"id": _ID, "name": _NAME, "label": _LABEL, "mode": Key(Match.EXACT), "runtime": _RUNTIME_KEY},
)

TASK = FilterSet(
    "task",
    {
        "id": _ID,
        "name": _NAME,
        "label": _LABEL,  # the service's labels
        "service": Key(Match.EXACT),  # after resolution to an id
        "node": Key(Match.EXACT),  # likewise
        "desired-state": Key(
            Match.EXACT,
            _TASK_STATES,
            "Invalid desired-state filter: '{value}'",
            fold_case=True,
            skip_empty=True,
        ),
        "_up-to-date": Key(Match.PRESENT),  # Docker's progress bars: made from the current spec
        "runtime": _RUNTIME_KEY,
    },
)

NETWORK = FilterSet(
    "network",
    {
        "driver": Key(Match.EXACT),
        "id": Key(Match.PATTERN),
        "name": Key(Match.PATTERN),
        "label": Key(Match.KV_LIST),
        "scope": Key(Match.EXACT),
        "type": Key(
            Match.EXACT, frozenset({"builtin", "custom"}), "invalid filter: 'type'='{value}'"
        ),
        "dangling": Key(Match.FLAG),
    },
)

SECRET = FilterSet("secret", {"id": _ID, "name": _NAME, "names": Key(Match.EXACT), "label": _LABEL})
CONFIG = FilterSet("config", {"id": _ID, "name": _NAME, "label": _LABEL})


def match_nodes(filters: Filters, nodes: Iterable[NodeT]) -> list[NodeT]:
    """The nodes (or node views) that ``filters`` select, in order."""

    def fields(item: Node | NodeView) -> Mapping[str, Field]:
        node = item.node if isinstance(item, NodeView) else item
        return {
            "id": node.id,
            "name": node.status.hostname,
            "label": {},
            "node.label": node.spec.labels,
            "role": node.spec.role.value,
            "membership": "accepted",  # a node is in the store once it joined with a token
        }

    return NODE.select(filters, nodes, fields)


def match_services(filters: Filters, services: Iterable[ServiceT]) -> list[ServiceT]:
    """The services (or service views) that ``filters`` select, in order."""

    def fields(item: Service | ServiceView) -> Mapping[str, Field]:
        service = item.service if isinstance(item, ServiceView) else item
        return {
            "id": service.id,
            "name": service.spec.name,
            "label": service.spec.labels,
            "mode": service.spec.mode.value,  # Docker's words: replicated, global-job...
            "runtime": _RUNTIME,
        }

    return SERVICE.select(filters, services, fields)


def match_tasks(
    filters: Filters,
    tasks: Iterable[Task],
    *,
    services: Sequence[Service] = (),
    nodes: Sequence[Node] = (),
) -> list[Task]:
    """The tasks that ``filters`` select, in order. ``services`` and ``nodes`` are those of
    the cluster: the ``service`` and ``node`` values resolve against them (NotFound for
    one that names none); ``label`` reads the service labels the task was made with (its
    service's when it has none), ``_up-to-date`` the task's service."""
    TASK.check(filters)
    resolved = dict(filters)
    if "service" in filters:
        resolved["service"] = [
            _resolve(ref, services, "service", lambda s: s.spec.name) for ref in filters["service"]
        ]
    if "node" in filters:
        resolved["node"] = [
            _resolve(ref, nodes, "node", lambda n: n.status.hostname) for ref in filters["node"]
        ]
    by_id = {service.id: service for service in services}

    def fields(task: Task) -> Mapping[str, Field]:
        service = by_id.get(task.service_id)
        return {
            "id": task.id,
            "name": f"{task.name}.{task.id}",
            # the labels the task was made with (as swarm keeps them on each task), so the
            # tasks of a service just removed are still found while they stop
            "label": task.service_labels or (service.spec.labels if service is not None else {}),
            "service": task.service_id,
            "node": task.node_id,
            "desired-state": task.desired_state.value,
            "_up-to-date": service is not None and task.spec_version == service.spec_version,
            "runtime": _RUNTIME,
        }

    return TASK.select(resolved, tasks, fields)


def match_networks(
    filters: Filters, networks: Iterable[NetworkT], *, services: Sequence[Service] = ()
) -> list[NetworkT]:
    """The networks (or network views) that ``filters`` select, in order. For ``dangling``
    a view says who uses it; a bare network is in use when one of ``services`` is attached
    to it (by name or id)."""
    attached = {a.target for s in services for a in s.spec.task.networks}

    def fields(item: Network | NetworkView) -> Mapping[str, Field]:
        if isinstance(item, NetworkView):
            network, in_use = item.network, bool(item.services)
        else:
            network = item
            in_use = network.id in attached or network.spec.name in attached
        builtin = network.spec.name in _BUILTIN_NETWORKS
        return {
            "driver": network.spec.driver,
            "id": network.id,
            "name": network.spec.name,
            "label": network.spec.labels,
            "scope": "swarm",
            "type": "builtin" if builtin else "custom",
            "dangling": not builtin and not in_use,
        }

    return NETWORK.select(filters, networks, fields)


def match_secrets(filters: Filters, secrets: Iterable[BlobT]) -> list[BlobT]:
    """The secrets (or their views) that ``filters`` select, in order."""
    return SECRET.select(filters, secrets, _blob_fields)


def match_configs(filters: Filters, configs: Iterable[BlobT]) -> list[BlobT]:
    """The configs (or their views) that ``filters`` select, in order."""
    return CONFIG.select(filters, configs, _blob_fields)


def _blob_fields(item: Secret | Config | BlobView) -> Mapping[str, Field]:
    blob = item.object if isinstance(item, BlobView) else item
    return {
        "id": blob.id,
        "name": blob.spec.name,
        "names": blob.spec.name,
        "label": blob.spec.labels,
    }


_Named = TypeVar("_Named", Service, Node)


def _resolve(ref: str, items: Sequence[_Named], what: str, name: Callable[[_Named], str]) -> str:
    """The id of the one item ``ref`` names: its full id, else its name, else a unique id
    prefix (dockerd's getService/getNode)."""
    for item in items:
        if item.id == ref:
            return item.id
    found = [item for item in items if name(item) == ref] or [
        item for item in items if item.id.startswith(ref)
    ]
    if not found:
        raise NotFound(f"{what} {ref} not found")
    if len(found) > 1:
        raise InvalidArgument(f"{what} {ref} is ambiguous ({len(found)} matches found)")
    return found[0].id


# --------------------------------------------------------------------------- events

EVENT_TYPES = frozenset(
    {
        "builder",
        "config",
        "container",
        "daemon",
        "image",
        "network",
        "node",
        "plugin",
        "secret",
        "service",
        "volume",
        "task",  # swarmlite's own: a task's life on the cluster
    }
)
_NAMED = ("config", "container", "daemon", "image", "network", "node", "plugin", "secret")
_NAMED_EVENT_KEYS = (*_NAMED, "service", "volume")

EVENT = FilterSet(
    "event",
    {
        **{key: Key(Match.PREFIX) for key in _NAMED_EVENT_KEYS},
        "event": Key(Match.EXACT),
        "type": Key(Match.EXACT, EVENT_TYPES, "invalid filter 'type={value}'"),
        "scope": Key(Match.EXACT, frozenset({"local", "swarm"}), "invalid filter 'scope={value}'"),
        "label": Key(Match.KV_LIST),
    },
)


def match_event(
    filters: Filters,
    *,
    type: str,
    action: str,
    id: str,
    attributes: Mapping[str, str],
    scope: str = "swarm",
) -> bool:
    """Whether one event passes ``filters`` (checked beforehand with ``EVENT.check``).

    As dockerd has it: ``type``, ``event`` (the action) and ``scope`` compare exactly;
    ``label`` holds on the attributes; every name key (``service``, ``node``...) matches
    the event's id or ``name`` by prefix, so it keeps only events of objects of that name.
    A task's event also answers ``service`` and ``node`` with its own service and node.
    """
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = type in values
        elif key == "event":
            ok = action in values
        elif key == "scope":
            ok = scope in values
        elif key == "label":
            ok = _kv_list_holds(attributes, values)
        else:
            seen = [id, attributes.get("name", "")]
            if type == "task" and key in ("service", "node"):
                seen += [attributes.get(key, ""), attributes.get(f"{key}.id", "")]
            ok = any(s and s.startswith(v) for s in seen for v in values)
        if not ok:
            return False
    return True
