"""`docker run --network <cluster network>` through the real application, against a fake
runtime on a unix socket and a fake node part (``StandaloneNetworks``): what the runtime is
asked to create, when the container is attached and detached, and what the client is told
when the network is not attachable or the attachment fails."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from swarmlite.api.control import NetworkAttachReply
from swarmlite.dockerapi import build_app
from swarmlite.dockerapi.containers import LABEL, set_standalone
from swarmlite.dockerapi.http import Control
from swarmlite.errors import FailedPrecondition, NetworkSetupFailure

FULL_ID = "f" * 64
TOOLS = NetworkAttachReply(network_id="n" * 25, name="tools", gateway="10.0.9.1")


@dataclass
class Runtime:
    """Records what reaches it; a created container is ``FULL_ID``, named /probe, on the
    network its create request labelled, running as pid 4242 once started."""

    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.serve)
        return app

    async def serve(self, request: web.Request) -> web.Response:
        body: Any = await request.json() if request.can_read_body else None
        path = request.path.removeprefix("/v1.41")
        self.calls.append((request.method, path, body))
        if path == "/version":
            return web.json_response({"ApiVersion": "1.41"})
        if path == "/containers/create":
            self.labels = dict(body.get("Labels") or {})
            return web.json_response({"Id": FULL_ID, "Warnings": []}, status=201)
        if path.endswith("/json"):
            state = {"Pid": 4242}
            config = {"Labels": self.labels}
            return web.json_response(
                {"Id": FULL_ID, "Name": "/probe", "State": state, "Config": config}
            )
        if path.endswith("/start") or request.method == "DELETE":
            return web.Response(status=204)
        return web.json_response({})

    def made(self) -> list[Any]:
        return [body for method, path, body in self.calls if path == "/containers/create"]


@dataclass
class Standalone:
    """The node's part: ``tools`` is attachable, ``plain`` is refused, anything else is not
    a cluster network."""

    fail: bool = False
    attached: list[tuple[str, str, str, int]] = field(default_factory=list)
    detached: list[str] = field(default_factory=list)

    async def check(self, network: str) -> NetworkAttachReply | None:
        if network == "plain":
            raise FailedPrecondition("network plain is not attachable: only services can use it")
        return TOOLS if network == "tools" else None

    async def attach(self, network: str, container_id: str, name: str, pid: int) -> str:
        if self.fail:
            raise NetworkSetupFailure("no veth today")
        self.attached.append((network, container_id, name, pid))
        return "10.0.9.3/24"

    async def detach(self, container_id: str) -> None:
        self.detached.append(container_id)


@dataclass
class Setup:
    client: TestClient[Any, Any]
    runtime: Runtime
    standalone: Standalone


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    with tempfile.TemporaryDirectory(prefix="swl") as tmp:
        socket = Path(tmp) / "runtime.sock"
        runtime = Runtime()
        runner = web.AppRunner(runtime.app())
        await runner.setup()
        await web.UnixSite(runner, str(socket)).start()
        app = build_app(Control(str(Path(tmp) / "none.sock")), docker_host=f"unix://{socket}")
        standalone = Standalone()
        set_standalone(app, standalone)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield Setup(client, runtime, standalone)
        finally:
            await client.close()
            await runner.cleanup()


def _run_body(network: str, **host: Any) -> dict[str, Any]:
    """What `docker run --network <network>` sends."""
    return {
        "Image": "busybox",
        "Labels": {"team": "ops"},
        "HostConfig": {"NetworkMode": network, **host},
        "NetworkingConfig": {"EndpointsConfig": {network: {}}},
    }


async def test_a_container_on_an_attachable_network_is_created_without_one(setup: Setup) -> None:
    answer = await setup.client.post("/v1.47/containers/create?name=probe", json=_run_body("tools"))
    assert answer.status == 201, await answer.text()
    [made] = setup.runtime.made()
    assert made["HostConfig"] == {"NetworkMode": "none", "Dns": ["10.0.9.1"]}
    assert made["Labels"] == {"team": "ops", LABEL: "tools"}
    assert "NetworkingConfig" not in made


async def test_the_clients_own_dns_server_is_kept(setup: Setup) -> None:
    body = _run_body("tools", Dns=["9.9.9.9"])
    answer = await setup.client.post("/containers/create", json=body)
    assert answer.status == 201
    assert setup.runtime.made()[0]["HostConfig"]["Dns"] == ["9.9.9.9"]


async def test_a_network_that_is_not_attachable_is_refused_before_the_runtime(
    setup: Setup,
) -> None:
    answer = await setup.client.post("/v1.47/containers/create", json=_run_body("plain"))
    assert answer.status == 403
    message = (await answer.json())["message"]
    assert message == (
        "cannot attach to network plain: network plain is not attachable: only services can use it"
    )
    assert setup.runtime.made() == []


async def test_the_runtimes_own_networks_pass_unchanged(setup: Setup) -> None:
    for network in ("bridge", "host", "mylocal"):
        body = _run_body(network)
        answer = await setup.client.post("/v1.47/containers/create", json=body)
        assert answer.status == 201
        assert setup.runtime.made()[-1] == body


async def test_start_attaches_and_remove_detaches(setup: Setup) -> None:
    await setup.client.post("/v1.47/containers/create", json=_run_body("tools"))
    answer = await setup.client.post("/v1.47/containers/probe/start")
    assert answer.status == 204
    assert setup.standalone.attached == [("tools", FULL_ID, "probe", 4242)]
    answer = await setup.client.delete("/v1.47/containers/probe?force=1")
    assert answer.status == 204
    assert setup.standalone.detached == [FULL_ID]
    assert ("DELETE", "/containers/probe", None) in setup.runtime.calls


async def test_a_container_that_cannot_join_is_killed_and_its_start_fails(setup: Setup) -> None:
    await setup.client.post("/v1.47/containers/create", json=_run_body("tools"))
    setup.standalone.fail = True
    answer = await setup.client.post("/v1.47/containers/probe/start")
    assert answer.status == 500
    assert (await answer.json())["message"] == (
        "container probe cannot join network tools: no veth today"
    )
    assert ("POST", f"/containers/{FULL_ID}/kill", None) in setup.runtime.calls


async def test_containers_without_a_cluster_network_are_left_alone(setup: Setup) -> None:
    await setup.client.post("/v1.47/containers/create", json=_run_body("bridge"))
    assert (await setup.client.post("/v1.47/containers/probe/start")).status == 204
    assert (await setup.client.delete("/v1.47/containers/probe")).status == 204
    assert setup.standalone.attached == [] and setup.standalone.detached == []
