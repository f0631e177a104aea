"""``/nodes``: list, inspect, update and remove the cluster's nodes, as dockerd serves them.

Owns the translation of Docker's ``NodeSpec`` (the whole spec, as ``docker node update``
sends back what it read) into swarmlite's NODE_UPDATE (a role, an availability, labels to
add and remove), and dockerd's version check: ``?version=N`` must be the node's current
version, else the update is refused ``update out of sequence`` (500, as dockerd answers
swarmkit's plain error). The check reads, then writes: an update landing between the two
is not seen (the control API's node update takes no version). Swarmlite nodes have no
``Spec.Name``; a non-empty one is refused (400) rather than dropped.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from swarmlite.api import NodeAvailability, NodeRole, dockerjson
from swarmlite.api.control import ListRequest, NodeRef, NodeRemove, NodeUpdate
from swarmlite.api.routes import NODE_INSPECT, NODE_LS, NODE_RM, NODE_UPDATE
from swarmlite.dockerapi.http import (
    Body,
    add_route,
    control,
    empty_response,
    json_response,
    not_found_as,
    path_ref,
    query_bool,
    query_filters,
    query_version,
    read_object,
)
from swarmlite.errors import Conflict, InvalidArgument

NODE_SPEC_FIELDS = ("Name", "Labels", "Role", "Availability")

E = TypeVar("E", NodeRole, NodeAvailability)


def add_routes(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/nodes", ls)
    add_route(router, "GET", "/nodes/{id}", inspect)
    add_route(router, "POST", "/nodes/{id}/update", update)
    add_route(router, "DELETE", "/nodes/{id}", remove)


async def ls(request: web.Request) -> web.Response:
    listed = await control(request).call(NODE_LS, ListRequest(filters=query_filters(request)))
    return json_response([dockerjson.node_json(v.node, v.manager) for v in listed.nodes])


async def inspect(request: web.Request) -> web.Response:
    ref = path_ref(request)
    with not_found_as("node", ref):
        view = await control(request).call(NODE_INSPECT, NodeRef(ref=ref))
    return json_response(dockerjson.node_json(view.node, view.manager))


def _enum_value(body: Body, name: str, kind: type[E]) -> E | None:
    raw = body.get_str(name)
    if not raw:
        return None
    try:
        return kind(raw.lower())
    except ValueError:
        raise InvalidArgument(f"invalid {name}: {raw!r}") from None


async def update(request: web.Request) -> web.Response:
    ref = path_ref(request)
    version = query_version(request, "node")
    body = await read_object(request, "swarm.NodeSpec")
    body.refuse_unknown(NODE_SPEC_FIELDS)
    if body.get_str("Name"):
        raise InvalidArgument(
            "Name: swarmlite nodes have no name of their own (they are named by hostname)"
        )
    labels = body.get_map("Labels")
    role = _enum_value(body, "Role", NodeRole)
    availability = _enum_value(body, "Availability", NodeAvailability)
    api = control(request)
    with not_found_as("node", ref):
        current = (await api.call(NODE_INSPECT, NodeRef(ref=ref))).node
    if version != current.version:
        raise Conflict("update out of sequence")
    old = current.spec.labels
    await api.call(
        NODE_UPDATE,
        NodeUpdate(
            ref=current.id,
            role=role if role is not current.spec.role else None,
            availability=availability if availability is not current.spec.availability else None,
            label_add={k: v for k, v in labels.items() if old.get(k) != v},
            label_rm=[k for k in old if k not in labels],
        ),
    )
    return empty_response()


async def remove(request: web.Request) -> web.Response:
    ref = path_ref(request)
    with not_found_as("node", ref):
        await control(request).call(
            NODE_RM, NodeRemove(ref=ref, force=query_bool(request, "force"))
        )
    return empty_response()
