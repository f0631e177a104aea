"""Standalone containers on the cluster's attachable overlays: `docker run --network <net>`
against this node's Docker API, as on a swarm node.

Owns three container calls before they pass to the runtime (``passthrough``), and only
when they concern a cluster network:

- ``POST /containers/create`` whose ``HostConfig.NetworkMode`` names a cluster network:
  refused (403, with the reason) unless it is attachable; otherwise created with
  ``NetworkMode: none`` (swarmlite wires the container itself), the network's gateway as
  its DNS server (this node's DNS answers there) unless the client chose one, and the
  label ``LABEL`` naming the network. A mode the cluster does not know (``bridge``,
  ``host``, a network of the runtime's own) passes unchanged.
- ``POST /containers/{id}/start``: once the runtime started a container with ``LABEL``, it
  is put on its network (an address from the cluster's allocator, a veth into its
  namespace); if that fails the container is killed and the start fails (500) with the
  reason.
  Starting it again after a stop gives it the same address.
- ``DELETE /containers/{id}``: once the runtime removed it, its attachment goes and its
  address is free. As in swarm, a container that only stopped keeps its address.

The node's part (asking a manager, wiring the namespace) is ``StandaloneNetworks``'s, a
Protocol the agent implements and ``daemon.py`` plugs in with ``set_standalone``; until
then (and on a node without it) the three calls pass unchanged and a cluster network is
refused by the runtime as unknown. Does not see ``docker run --rm`` removals (the runtime
removes those itself): their addresses stay taken until the node leaves.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Protocol

import aiohttp
import msgspec
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from swarmlite.api.control import NetworkAttachReply
from swarmlite.dockerapi import passthrough
from swarmlite.dockerapi.hijack import drop_hop_by_hop
from swarmlite.dockerapi.http import VERSIONED, DockerError
from swarmlite.errors import FailedPrecondition, SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

LABEL = "com.swarmlite.network"  # on a standalone container: the cluster network it joins
# Modes that are the runtime's own, never a cluster network's name.
_RUNTIME_MODES = ("", "default", "bridge", "host", "none")


class StandaloneNetworks(Protocol):
    async def check(self, network: str) -> NetworkAttachReply | None:
        """The cluster network if a container may join it; None if the cluster has no such
        network; a refusal (not attachable) raises."""
        ...

    async def attach(self, network: str, container_id: str, name: str, pid: int) -> str:
        """Put the running container on the network; its address."""
        ...

    async def detach(self, container_id: str) -> None:
        """The container is gone: free its attachments."""
        ...


class Slot:
    """Where ``daemon.py`` plugs the node's part in once the node runs."""

    standalone: StandaloneNetworks | None = None


SLOT_KEY = web.AppKey("swarmlite.dockerapi.standalone", Slot)


def set_standalone(app: web.Application, standalone: StandaloneNetworks | None) -> None:
    app[SLOT_KEY].standalone = standalone


def add_routes(router: web.UrlDispatcher) -> None:
    for prefix in ("", VERSIONED):
        router.add_post(prefix + "/containers/create", create)
        router.add_post(prefix + "/containers/{id}/start", start)
        router.add_delete(prefix + "/containers/{id}", delete)


def _parts(request: web.Request) -> tuple[passthrough.Runtime, StandaloneNetworks | None]:
    runtime = request.app.get(passthrough.RUNTIME_KEY)
    if runtime is None:
        raise DockerError(501, passthrough.NO_RUNTIME_MESSAGE)
    slot = request.app.get(SLOT_KEY)
    return runtime, slot.standalone if slot is not None else None


async def create(request: web.Request) -> web.StreamResponse:
    runtime, standalone = _parts(request)
    target = await passthrough.upstream_target(request, runtime)
    raw = await request.read()
    if standalone is None or not raw:
        return await passthrough.relay(request, runtime, target, raw if raw else None)
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return await passthrough.relay(request, runtime, target, raw)  # the runtime says why
    host = body.get("HostConfig") if isinstance(body, dict) else None
    mode = host.get("NetworkMode") if isinstance(host, dict) else None
    if not isinstance(mode, str) or mode in _RUNTIME_MODES or mode.startswith("container:"):
        return await passthrough.relay(request, runtime, target, raw)
    assert isinstance(body, dict) and isinstance(host, dict)
    try:
        network = await standalone.check(mode)
    except FailedPrecondition as exc:
        raise DockerError(403, f"cannot attach to network {mode}: {exc.message}") from exc
    if network is None:
        return await passthrough.relay(request, runtime, target, raw)
    host["NetworkMode"] = "none"
    if not host.get("Dns") and network.gateway:
        host["Dns"] = [network.gateway.split("/")[0]]
    body.pop("NetworkingConfig", None)  # its endpoint would name the network to the runtime
    labels = body.get("Labels")
    body["Labels"] = {**(labels if isinstance(labels, dict) else {}), LABEL: network.name}
    return await passthrough.relay(request, runtime, target, msgspec.json.encode(body))


class _Inspected(msgspec.Struct):
    class _State(msgspec.Struct):
        Pid: int = 0

    class _Config(msgspec.Struct):
        Labels: dict[str, str] | None = None

    Id: str
    Name: str = ""
    State: _State = msgspec.field(default_factory=_State)
    Config: _Config = msgspec.field(default_factory=_Config)

    @property
    def network(self) -> str:
        return (self.Config.Labels or {}).get(LABEL, "")


async def _inspect(runtime: passthrough.Runtime, ref: str) -> _Inspected | None:
    """The container as the runtime knows it; None when it has none by that name or id."""
    try:
        async with runtime.session().get(f"http://docker/containers/{ref}/json") as answer:
            if answer.status != 200:
                return None
            return msgspec.json.decode(await answer.read(), type=_Inspected)
    except (aiohttp.ClientError, OSError) as exc:
        raise runtime.unreachable(exc) from exc
    except msgspec.DecodeError:
        return None


class _Ours(NamedTuple):
    """A container on a cluster network, and the runtime's answer to the call about it."""

    runtime: passthrough.Runtime
    standalone: StandaloneNetworks
    container: _Inspected
    status: int
    headers: CIMultiDict[str]
    body: bytes


async def _on_network(request: web.Request) -> _Ours | web.StreamResponse:
    """The runtime's answer to a start or remove of a container on a cluster network, with
    what the caller needs next; for any other container, the call passed through."""
    runtime, standalone = _parts(request)
    container = None
    if standalone is not None:
        container = await _inspect(runtime, request.match_info["id"])
    if standalone is None or container is None or not container.network:
        return await passthrough.forward(request)
    target = await passthrough.upstream_target(request, runtime)
    status, headers, body = await _exchange(request, runtime, target)
    return _Ours(runtime, standalone, container, status, headers, body)


async def start(request: web.Request) -> web.StreamResponse:
    ours = await _on_network(request)
    if not isinstance(ours, _Ours):
        return ours
    runtime, standalone, container, status, headers, body = ours
    if status == 204:  # 304: it was running, so attached, already
        started = await _inspect(runtime, container.Id)
        pid = started.State.Pid if started is not None else 0
        name = container.Name.lstrip("/")
        try:
            if not pid:
                raise FailedPrecondition("it is not running any more")
            address = await standalone.attach(container.network, container.Id, name, pid)
        except SwarmliteError as exc:
            log.warning(
                "container not attached; stopping it %s",
                kv(container=container.Id[:12], network=container.network, error=exc.message),
            )
            await _kill(runtime, container.Id)
            raise DockerError(
                500, f"container {name} cannot join network {container.network}: {exc.message}"
            ) from exc
        log.info(
            "standalone container on network %s",
            kv(container=container.Id[:12], network=container.network, address=address),
        )
    return web.Response(status=status, body=body or None, headers=headers)


async def _exchange(
    request: web.Request, runtime: passthrough.Runtime, target: str
) -> tuple[int, CIMultiDict[str], bytes]:
    """The request to the runtime and its whole answer (for short answers only)."""
    raw = await request.read()
    headers = drop_hop_by_hop(request.headers.items())
    for name in ("Host", "Content-Length", "Transfer-Encoding", "Expect"):
        headers.popall(name, None)
    try:
        async with runtime.session().request(
            request.method,
            URL("http://docker" + target, encoded=True),
            headers=headers,
            data=raw or None,
        ) as answer:
            body = await answer.read()
            kept = drop_hop_by_hop(answer.headers.items())
            kept.popall("Content-Length", None)
            kept.popall("Content-Encoding", None)
            return answer.status, kept, body
    except (aiohttp.ClientError, OSError) as exc:
        raise runtime.unreachable(exc) from exc


async def _kill(runtime: passthrough.Runtime, container_id: str) -> None:
    try:
        async with runtime.session().post(f"http://docker/containers/{container_id}/kill"):
            pass
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("cannot kill container %s", kv(container=container_id[:12], error=str(exc)))


async def delete(request: web.Request) -> web.StreamResponse:
    ours = await _on_network(request)
    if not isinstance(ours, _Ours):
        return ours
    _, standalone, container, status, headers, body = ours
    if status < 300:  # gone: its address is free before the client hears so
        try:
            await standalone.detach(container.Id)
        except SwarmliteError as exc:  # removed all the same; the address stays taken
            log.warning(
                "removed container's attachment not freed %s",
                kv(container=container.Id[:12], network=container.network, error=exc.message),
            )
        else:
            log.info(
                "standalone container left network %s",
                kv(container=container.Id[:12], network=container.network),
            )
    return web.Response(status=status, body=body or None, headers=headers)
