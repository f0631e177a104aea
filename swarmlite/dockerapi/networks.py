"""``/networks``: the cluster's overlay networks through the Docker Engine API.

Owns the reading of Docker's network create request into swarmlite's ``NetworkSpec``, and
which of its fields swarmlite honours. Every swarmlite network is a swarm-scoped overlay
network, so ``GET /networks`` lists only those (there are no local ``bridge``/``host``
networks). Create accepts ``Name``, ``Driver`` (``overlay``; an empty driver means overlay
here, since there is nothing else to make), ``Scope`` (empty or ``swarm``), ``Labels``, one
``IPAM.Config`` entry with ``Subnet``/``Gateway``, and ``CheckDuplicate`` (names are always
unique), ``Internal`` (its tasks reach nothing outside it) and ``Attachable`` (standalone
containers may join it: containers.py). A field swarmlite cannot
honour is refused with 400 naming it, never dropped: ``EnableIPv6``, ``EnableIPv4: false``,
``Ingress`` (the cluster makes its own), ``ConfigOnly``/``ConfigFrom``, driver
``Options``, IPAM options, ``IPRange`` and ``AuxiliaryAddresses``.
``GET /networks/{id}?scope=local`` finds nothing, as in dockerd for a swarm network.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from swarmlite.api import NetworkSpec, dockerjson
from swarmlite.api.control import ListRequest, NameRef, NetworkCreate
from swarmlite.api.routes import NETWORK_CREATE, NETWORK_INSPECT, NETWORK_LS, NETWORK_RM
from swarmlite.dockerapi.http import (
    Body,
    add_route,
    control,
    empty_response,
    json_response,
    not_found_as,
    path_ref,
    query_filters,
    read_object,
)
from swarmlite.errors import InvalidArgument, NotFound

CREATE_FIELDS = (
    "Name",
    "CheckDuplicate",
    "Driver",
    "Scope",
    "EnableIPv4",
    "EnableIPv6",
    "IPAM",
    "Internal",
    "Attachable",
    "Ingress",
    "ConfigOnly",
    "ConfigFrom",
    "Options",
    "Labels",
)
IPAM_FIELDS = ("Driver", "Config", "Options")
IPAM_CONFIG_FIELDS = ("Subnet", "IPRange", "Gateway", "AuxiliaryAddresses")


def add_routes(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/networks", ls)
    add_route(router, "GET", "/networks/{id}", inspect)
    add_route(router, "POST", "/networks/create", create)
    add_route(router, "DELETE", "/networks/{id}", remove)


async def ls(request: web.Request) -> web.Response:
    listed = await control(request).call(NETWORK_LS, ListRequest(filters=query_filters(request)))
    return json_response([dockerjson.network_json(v.network) for v in listed.networks])


async def inspect(request: web.Request) -> web.Response:
    ref = path_ref(request)
    scope = request.query.get("scope", "")
    if scope not in ("", "swarm"):
        raise NotFound(f"network {ref} not found")
    with not_found_as("network", ref):
        view = await control(request).call(NETWORK_INSPECT, NameRef(ref=ref))
    return json_response(dockerjson.network_json(view.network))


def _unsupported(field: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"{field} is not supported by swarmlite: {why}")


def _ipam(body: Body) -> tuple[str, str]:
    """The subnet and gateway of the request's IPAM section ("" where not given)."""
    ipam = body.get_obj("IPAM", "network.IPAM")
    if ipam is None:
        return "", ""
    ipam.refuse_unknown(IPAM_FIELDS)
    if ipam.get_str("Driver") not in ("", "default"):
        raise _unsupported("IPAM.Driver", "only the default address allocator exists")
    if ipam.get_map("Options"):
        raise _unsupported("IPAM.Options", "the address allocator takes no options")
    configs = ipam.get_list("Config")
    if len(configs) > 1:
        raise _unsupported("IPAM.Config", "a network has one subnet")
    if not configs:
        return "", ""
    config = configs[0]
    if not isinstance(config, dict):
        raise InvalidArgument("invalid JSON: IPAM.Config must be a list of objects")
    entry = Body(config, "network.IPAMConfig")
    entry.refuse_unknown(IPAM_CONFIG_FIELDS)
    if entry.get_str("IPRange"):
        raise _unsupported("IPAM.Config.IPRange", "tasks get addresses from the whole subnet")
    if entry.get_map("AuxiliaryAddresses"):
        raise _unsupported("IPAM.Config.AuxiliaryAddresses", "no addresses can be reserved")
    return entry.get_str("Subnet"), entry.get_str("Gateway")


def network_spec(body: Body) -> NetworkSpec:
    """Docker's network create request as a swarmlite NetworkSpec; 400 for any field
    swarmlite cannot honour."""
    body.refuse_unknown(CREATE_FIELDS)
    name = body.get_str("Name")
    if not name:
        raise InvalidArgument("network name must not be empty")
    driver = body.get_str("Driver") or "overlay"
    if driver != "overlay":
        raise _unsupported(
            f"Driver {driver!r}", "networks span the cluster: create it with -d overlay"
        )
    if body.get_str("Scope") not in ("", "swarm"):
        raise _unsupported(f"Scope {body.get_str('Scope')!r}", "every network is swarm-scoped")
    refusals = {
        "EnableIPv6": "overlay networks are IPv4 only",
        "Ingress": "the cluster makes its ingress network itself",
        "ConfigOnly": "configuration-only networks do not exist",
    }
    for field, why in refusals.items():
        if body.get_bool(field):
            raise _unsupported(field, why)
    if not body.get_bool("EnableIPv4", True):
        raise _unsupported("EnableIPv4: false", "overlay networks are IPv4 networks")
    config_from = body.get_obj("ConfigFrom", "network.ConfigReference")
    if config_from is not None and config_from.get_str("Network"):
        raise _unsupported("ConfigFrom", "configuration-only networks do not exist")
    if body.get_map("Options"):
        raise _unsupported("Options", "the overlay driver takes no options")
    subnet, gateway = _ipam(body)
    return NetworkSpec(
        name=name,
        driver=driver,
        subnet=subnet,
        gateway=gateway,
        labels=body.get_map("Labels"),
        internal=body.get_bool("Internal"),
        attachable=body.get_bool("Attachable"),
    )


async def create(request: web.Request) -> web.Response:
    spec = network_spec(await read_object(request, "network.CreateRequest"))
    view = await control(request).call(NETWORK_CREATE, NetworkCreate(spec=spec))
    reply: dict[str, Any] = {"Id": view.network.id, "Warning": ""}
    return json_response(reply, status=201)


async def remove(request: web.Request) -> web.Response:
    ref = path_ref(request)
    with not_found_as("network", ref):
        await control(request).call(NETWORK_RM, NameRef(ref=ref))
    return empty_response(204)
