"""Docker's list contexts: the fields of each row of `node ls`, `network ls`, `secret ls`,
`config ls` and `stack ls`, their default tables and headers, and the pretty templates of
`secret inspect` and `config inspect`.

Owns each row's field names and values as docker's CLI makes them (cli/command/*/formatter.go
in docker/cli 28), so that ``--format '{{.Hostname}}'`` and ``--format json`` read as they
do with docker: state words capitalized (``Ready``), ages in docker's words (``About a
minute ago``), network ids cut to 12 characters unless ``--no-trunc``, every listing in
docker's natural order. Rows are plain mappings; ``cli.format`` prints them. Does not own
the rows of services and tasks (``render.service_fields``, ``render.service_task_fields``)
nor any call to the daemon.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from swarmlite.api.control import BlobView, ManagerStatus, NetworkView, NodeView, StackInfo
from swarmlite.api.dockerjson import rfc3339
from swarmlite.cli.render import human_duration, short_id

Row = dict[str, Any]


# --------------------------------------------------------------------------- shared words


def natural(text: str) -> list[Any]:
    """Sort key of docker's natural order: ``web.2`` before ``web.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def pretty(word: str) -> str:
    """Docker's PrettyPrint: ``running`` -> ``Running`` (the rest lower-cased)."""
    return word[:1].upper() + word[1:].lower()


def go_time(epoch_seconds: float) -> str:
    """Go's ``time.Time.String()`` in UTC: ``2023-11-14 22:13:20.5 +0000 UTC``."""
    micros = round(epoch_seconds * 1_000_000)
    whole, micro = divmod(micros, 1_000_000)
    moment = datetime.datetime.fromtimestamp(whole, datetime.UTC)
    fraction = f".{micro:06d}".rstrip("0").rstrip(".")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + fraction + " +0000 UTC"


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(sorted(f"{key}={value}" for key, value in labels.items()))


def _label(labels: Mapping[str, str]) -> Callable[[str], str]:
    return lambda name: labels.get(name, "")


# --------------------------------------------------------------------------- nodes

NODE_TABLE = (
    "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t"
    "{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}"
)
NODE_HEADERS = {"Self": "", "TLSStatus": "TLS STATUS"}


def _manager_status(manager: ManagerStatus | None) -> str:
    if manager is None:
        return ""
    return "Leader" if manager.leader else pretty(manager.reachability)


def sort_nodes(views: Iterable[NodeView]) -> list[NodeView]:
    return sorted(views, key=lambda v: (natural(v.node.status.hostname), v.node.id))


def node_rows(views: Iterable[NodeView]) -> list[Row]:
    """`node ls`: by hostname, as docker sorts them."""
    return [
        {
            "ID": view.node.id,
            "Self": view.self,
            "Hostname": view.node.status.hostname,
            "Status": pretty(view.node.status.state.value),
            "Availability": pretty(view.node.spec.availability.value),
            "ManagerStatus": _manager_status(view.manager),
            "EngineVersion": view.node.status.version,
            # Every node's certificate chains to the cluster's one root (there is no CA
            # rotation yet, which is when docker shows "Needs Rotation").
            "TLSStatus": "Ready",
            "LastHeartbeat": rfc3339(view.last_heartbeat) if view.last_heartbeat else "",
        }
        for view in sort_nodes(views)
    ]


# --------------------------------------------------------------------------- networks

NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {"ID": "NETWORK ID", "IPv4": "IPV4", "IPv6": "IPV6"}


def network_rows(views: Iterable[NetworkView], *, trunc: bool = True) -> list[Row]:
    """`network ls`: docker's fields, and the ``Subnet`` the cluster gave each network."""
    rows: list[Row] = []
    for view in sorted(views, key=lambda v: (natural(v.network.spec.name), v.network.id)):
        network, spec = view.network, view.network.spec
        rows.append(
            {
                "ID": short_id(network.id, no_trunc=not trunc),
                "Name": spec.name,
                "Driver": spec.driver,
                "Scope": "swarm",
                "IPv4": "true",
                "IPv6": "false",
                "Internal": "true" if spec.internal else "false",
                "Labels": _labels(spec.labels),
                "Label": _label(spec.labels),
                "CreatedAt": go_time(network.created_at),
                "Subnet": network.status.subnet or spec.subnet,
            }
        )
    return rows


# --------------------------------------------------------------------------- secrets, configs

SECRET_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}"
CONFIG_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}"
BLOB_HEADERS = {"CreatedAt": "CREATED", "UpdatedAt": "UPDATED"}


def blob_rows(views: Iterable[BlobView], *, now: float, secret: bool) -> list[Row]:
    """`secret ls`, `config ls`: whole ids, by name, ages in docker's words."""
    rows: list[Row] = []
    for view in sorted(views, key=lambda v: (natural(v.object.spec.name), v.object.id)):
        obj = view.object
        row: Row = {"ID": obj.id, "Name": obj.spec.name}
        if secret:
            row["Driver"] = ""
        row |= {
            "CreatedAt": human_duration(now - obj.created_at) + " ago",
            "UpdatedAt": human_duration(now - (obj.updated_at or obj.created_at)) + " ago",
            "Labels": _labels(obj.spec.labels),
            "Label": _label(obj.spec.labels),
        }
        rows.append(row)
    return rows


SECRET_PRETTY = """ID:              {{.ID}}
Name:              {{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Driver:            {{.Driver}}
Created at:        {{.CreatedAt}}
Updated at:        {{.UpdatedAt}}"""
CONFIG_PRETTY = """ID:\t\t\t{{.ID}}
Name:\t\t\t{{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Created at:            \t{{.CreatedAt}}
Updated at:            \t{{.UpdatedAt}}
Data:
{{.Data}}"""
"""`secret inspect --pretty` and `config inspect --pretty`: docker's own templates."""


def blob_pretty_fields(view: BlobView) -> Row:
    obj = view.object
    stamp = go_time(obj.created_at)
    updated = go_time(obj.updated_at or obj.created_at)
    fields: Row = {
        "ID": obj.id,
        "Name": obj.spec.name,
        "Labels": dict(obj.spec.labels),
        "Driver": "",
        # docker's PrettyPrint of a time lower-cases all but its first letter: "+0000 utc"
        "CreatedAt": pretty(stamp),
        "UpdatedAt": pretty(updated),
        "Data": obj.spec.data.decode(errors="replace") if obj.spec.data else "",
    }
    return fields


# --------------------------------------------------------------------------- stacks

STACK_TABLE = "table {{.Name}}\t{{.Services}}"


def stack_rows(stacks: Iterable[StackInfo]) -> list[Row]:
    ordered = sorted(stacks, key=lambda s: natural(s.name))
    return [{"Name": info.name, "Services": str(info.services)} for info in ordered]
