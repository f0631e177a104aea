"""The Docker API's services, tasks, logs and distribution handlers, through the aiohttp
application with a fake control API (no daemon, no socket: aiohttp's test server), and
their pure parts (ServiceStatus arithmetic, log frames)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from swarmlite.api import Network, NetworkSpec, Service, ServiceMode, Task, TaskState
from swarmlite.api.control import (
    BlobList,
    Empty,
    LogLine,
    LogsRequest,
    NameRef,
    NetworkList,
    NetworkView,
    ServiceList,
    ServiceView,
    StackDeployReply,
    TaskList,
)
from swarmlite.api.filters import match_services, match_tasks
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.api.routes import (
    CONFIG_LS,
    NETWORK_LS,
    SECRET_LS,
    SERVICE_CREATE,
    SERVICE_INSPECT,
    SERVICE_LOGS,
    SERVICE_LS,
    SERVICE_RM,
    SERVICE_ROLLBACK,
    SERVICE_UPDATE,
    STACK_DEPLOY,
    TASK_LS,
    Rep,
    Req,
    Route,
)
from swarmlite.dockerapi import build_app, server, services
from swarmlite.dockerapi.http import Control
from swarmlite.dockerapi.logs import LogOptions, details_prefix, frame, render
from swarmlite.dockerapi.services import service_status
from swarmlite.errors import Conflict, NotFound, Unavailable
from swarmlite.testing.factories import make_service, make_task

NET_ID = "n" * 25

# --------------------------------------------------------------------------- ServiceStatus


def test_service_status_of_a_replicated_service_counts_running_tasks() -> None:
    web = make_service(replicas=3)
    tasks = [
        make_task(web, slot=1, state=TaskState.RUNNING),
        make_task(web, slot=2, state=TaskState.RUNNING, desired=TaskState.SHUTDOWN),
        make_task(web, slot=3, state=TaskState.PENDING),
        make_task(make_service("other"), state=TaskState.RUNNING),
    ]
    assert service_status(web, tasks) == (2, 3, 0)  # swarmkit counts running, whatever desired


def test_service_status_of_a_global_service_counts_what_should_run() -> None:
    agent = make_service(mode=ServiceMode.GLOBAL)
    tasks = [
        make_task(agent, node_id="a", state=TaskState.RUNNING),
        make_task(agent, node_id="b", state=TaskState.PREPARING),
        make_task(agent, node_id="c", state=TaskState.SHUTDOWN, desired=TaskState.SHUTDOWN),
    ]
    assert service_status(agent, tasks) == (1, 2, 0)


def test_service_status_of_jobs_counts_the_current_iteration() -> None:
    job = msgspec.structs.replace(
        make_service(mode=ServiceMode.REPLICATED_JOB, max_concurrent=2, total_completions=5),
        job_iteration=2,
    )
    old = msgspec.structs.replace(make_task(job, state=TaskState.COMPLETE), job_iteration=1)
    tasks = [
        old,
        make_task(job, state=TaskState.COMPLETE, desired=TaskState.COMPLETE),
        make_task(job, state=TaskState.RUNNING, desired=TaskState.COMPLETE),
    ]
    assert service_status(job, tasks) == (1, 2, 1)
    global_job = make_service(mode=ServiceMode.GLOBAL_JOB)
    tasks = [
        make_task(global_job, node_id="a", state=TaskState.COMPLETE, desired=TaskState.COMPLETE),
        make_task(global_job, node_id="b", state=TaskState.RUNNING, desired=TaskState.COMPLETE),
    ]
    assert service_status(global_job, tasks) == (1, 1, 1)


# --------------------------------------------------------------------------- log frames


LINE = LogLine(
    task_id="t" * 25,
    task_name="web.1",
    node_id="n" * 25,
    stream="stdout",
    timestamp=1796593111.737897,
    line="hello 1",
)


def _options(**changes: Any) -> LogOptions:
    base = {
        "stdout": True,
        "stderr": True,
        "follow": False,
        "tail": -1,
        "since": 0.0,
        "timestamps": False,
        "details": False,
    }
    return LogOptions(**(base | changes))


def test_frame_is_stdcopy() -> None:
    assert frame(2, b"abc\n") == b"\x02\x00\x00\x00\x00\x00\x00\x04abc\n"


def test_a_line_with_details_and_time_as_dockerd_writes_it() -> None:
    assert render(LINE, "s" * 25, _options()) == b"hello 1\n"
    details = details_prefix(LINE, "s" * 25)
    assert details == (
        f"com.docker.swarm.node.id={'n' * 25},com.docker.swarm.service.id={'s' * 25},"
        f"com.docker.swarm.task.id={'t' * 25}"
    )
    shown = render(LINE, "s" * 25, _options(details=True, timestamps=True))
    assert shown == f"2026-12-06T21:38:31.737897000Z {details} hello 1\n".encode()


# --------------------------------------------------------------------------- the fake


class FakeControl(Control):
    """The control API's service and task calls over a dict of services and a task list,
    with the real filter functions; records every call."""

    def __init__(self) -> None:
        super().__init__("/nonexistent/swarmlite.sock")
        self.services: dict[str, Service] = {}
        self.tasks: list[Task] = []
        self.networks = [Network(id=NET_ID, spec=NetworkSpec(name="front"))]
        self.lines: list[LogLine | Exception] = []
        self.follow_forever = False  # after the lines, wait as a follow with nothing new
        self.closed = asyncio.Event()  # the log stream was closed
        self.calls: list[tuple[str, Any]] = []

    def add(self, service: Service) -> Service:
        self.services[service.id] = msgspec.structs.replace(service, version=10)
        return self.services[service.id]

    def find(self, ref: str) -> Service:
        for service in self.services.values():
            if ref in (service.id, service.spec.name):
                return service
        raise NotFound(f'service "{ref}" not found', hint="a hint for swarmlite's CLI")

    def view(self, service: Service) -> ServiceView:
        return ServiceView(service=service, running=0, desired=0)

    async def call(self, route: Route[Req, Rep], request: Req) -> Rep:
        self.calls.append((route.path, request))
        return self._answer(route, request)  # type: ignore[no-any-return]

    def _answer(self, route: Route[Any, Any], request: Any) -> Any:
        if route is SERVICE_LS:
            found = match_services(request.filters, list(self.services.values()))
            return ServiceList(services=[self.view(s) for s in found])
        if route is SERVICE_INSPECT:
            return self.view(self.find(request.ref))
        if route is SERVICE_CREATE:
            return self.view(self.add(Service(id="c" * 25, spec=request.spec)))
        if route is STACK_DEPLOY:
            assert [s.stack for s in request.services] == [request.name]
            self.add(Service(id="k" * 25, spec=request.services[0]))
            return StackDeployReply(created=[request.services[0].name])
        if route is SERVICE_UPDATE:
            current = self.find(request.ref)
            if request.version != current.version:
                raise Conflict("stale")
            return self.view(self.add(msgspec.structs.replace(current, spec=request.spec)))
        if route is SERVICE_ROLLBACK:
            return self.view(self.find(request.ref))
        if route is SERVICE_RM:
            del self.services[self.find(request.ref).id]
            return Empty()
        if route is TASK_LS:
            found = match_tasks(request.filters, self.tasks, services=list(self.services.values()))
            return TaskList(tasks=found)
        if route is NETWORK_LS:
            return NetworkList(networks=[NetworkView(network=n) for n in self.networks])
        if route in (SECRET_LS, CONFIG_LS):
            return BlobList(items=[])
        raise AssertionError(f"unexpected call {route}")

    async def _lines(self) -> AsyncIterator[LogLine]:
        try:
            for line in self.lines:
                if isinstance(line, Exception):
                    raise line
                yield line
            if self.follow_forever:
                await asyncio.Event().wait()
        finally:
            self.closed.set()

    def items(self, route: Route[Req, Rep], request: Req) -> AsyncIterator[Rep]:
        assert route is SERVICE_LOGS
        assert isinstance(request, LogsRequest)
        self.calls.append((route.path, request))
        return self._lines()  # type: ignore[return-value]

    def paths(self) -> list[str]:
        return [path.rpartition("/control/v1")[2] for path, _ in self.calls]


@pytest.fixture
async def fake() -> FakeControl:
    return FakeControl()


@pytest.fixture
async def client(fake: FakeControl) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(fake, version="9.9")
    if services not in server.ROUTE_MODULES:  # until server.py names the module
        services.add_routes(app.router)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _json(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"] == "application/json"
    return json.loads(await response.read())


async def _error(response: Any, status: int) -> str:
    message: str = (await _json(response, status))["message"]
    return message


SPEC = {
    "Name": "web",
    "TaskTemplate": {
        "ContainerSpec": {"Image": "nginx:1.27", "Init": False, "DNSConfig": {}},
        "Networks": [{"Target": NET_ID}],
    },
    "Mode": {"Replicated": {"Replicas": 2}},
}


# --------------------------------------------------------------------------- services


async def test_create_answers_201_with_the_id(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    answer = await _json(await client.post("/v1.47/services/create", json=SPEC), 201)
    assert answer == {"ID": "c" * 25, "Warnings": None}
    created = fake.services["c" * 25].spec
    assert created.replicas == 2 and created.task.networks[0].target == "front"


async def test_a_stack_s_service_is_created_as_a_stack_of_one(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    spec = {**SPEC, "Name": "app_web", "Labels": {"com.docker.stack.namespace": "app"}}
    answer = await _json(await client.post("/v1.47/services/create", json=spec), 201)
    assert answer == {"ID": "k" * 25, "Warnings": None}
    assert "/stack/deploy" in fake.paths() and "/service/create" not in fake.paths()
    message = await _error(await client.post("/v1.47/services/create", json=spec), 409)
    assert message == "service app_web already exists"


async def test_create_refuses_what_swarmlite_cannot_honour(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["TaskTemplate"]["PluginSpec"] = {"Name": "p"}
    message = await _error(await client.post("/v1.47/services/create", json=spec), 400)
    assert message == "TaskTemplate.PluginSpec is not supported by swarmlite"
    assert "/service/create" not in fake.paths()


def _header(body: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


async def test_registry_credentials_reach_the_control_api_as_dockerd_takes_them(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    """X-Registry-Auth (what `docker service create|update --with-registry-auth` and
    `docker stack deploy --with-registry-auth` send) goes with the create, the stack deploy
    of a stack's service, and the update; its JSON keys in any case, `auth` as user:pass."""
    login = RegistryAuth(server="reg.example:5000", username="ci", password="s3cret")
    headers = {
        "X-Registry-Auth": _header(
            {"username": "ci", "password": "s3cret", "serveraddress": "reg.example:5000"}
        )
    }
    await _json(await client.post("/v1.47/services/create", json=SPEC, headers=headers), 201)
    stack = {**SPEC, "Name": "app_web", "Labels": {"com.docker.stack.namespace": "app"}}
    basic = base64.b64encode(b"ci:s3cret").decode()
    legacy = {"X-Registry-Auth": _header({"Auth": basic, "ServerAddress": "reg.example:5000"})}
    await _json(await client.post("/v1.47/services/create", json=stack, headers=legacy), 201)
    token = {"X-Registry-Auth": _header({"IdentityToken": "tok"})}
    await _json(
        await client.post(
            "/v1.47/services/" + "c" * 25 + "/update?version=10", json=SPEC, headers=token
        )
    )
    sent = {path.rpartition("/control/v1")[2]: request for path, request in fake.calls}
    assert sent["/service/create"].registry_auth == login
    assert sent["/stack/deploy"].registry_auth == {"app_web": login}
    assert sent["/service/update"].registry_auth == RegistryAuth(identity_token="tok")


@pytest.mark.parametrize("auth", ["", "e30=", _header({"serveraddress": "docker.io"})])
async def test_an_empty_registry_auth_sets_nothing(
    client: TestClient[Any, Any], fake: FakeControl, auth: str
) -> None:
    """{} is what --with-registry-auth sends without a login (and Portainer always)."""
    await _json(
        await client.post("/v1.47/services/create", json=SPEC, headers={"X-Registry-Auth": auth}),
        201,
    )
    (request,) = [r for path, r in fake.calls if path.endswith("/service/create")]
    assert request.registry_auth is None


@pytest.mark.parametrize(
    "auth",
    ["!!!", _header({"auth": "bm90IGJhc2U2NA"}), "WyJzM2NyZXQiXQ"],  # ["s3cret"]
)
async def test_a_malformed_registry_auth_is_refused_without_echoing_it(
    client: TestClient[Any, Any], fake: FakeControl, auth: str
) -> None:
    response = await client.post(
        "/v1.47/services/create", json=SPEC, headers={"X-Registry-Auth": auth}
    )
    message = await _error(response, 400)
    assert "X-Registry-Auth" in message
    assert auth not in message and "s3cret" not in message
    assert "/service/create" not in fake.paths()


async def test_ls_with_status_and_filters(client: TestClient[Any, Any], fake: FakeControl) -> None:
    web = fake.add(make_service("web", replicas=2, labels={"tier": "front"}))
    fake.add(make_service("db", replicas=0))
    fake.tasks = [make_task(web, slot=1, state=TaskState.RUNNING)]
    listed = await _json(await client.get("/v1.47/services?status=true"))
    status = {s["Spec"]["Name"]: s["ServiceStatus"] for s in listed}
    assert status == {
        "db": {"RunningTasks": 0, "DesiredTasks": 0, "CompletedTasks": 0},
        "web": {"RunningTasks": 1, "DesiredTasks": 2, "CompletedTasks": 0},
    }
    plain = await _json(await client.get("/v1.47/services"))
    assert all("ServiceStatus" not in s for s in plain)
    assert all(s["Spec"]["Mode"]["Replicated"]["Replicas"] is not None for s in plain)
    for filters in ('{"label":{"tier=front":true}}', '{"label":["tier=front"]}'):
        listed = await _json(await client.get("/v1.47/services", params={"filters": filters}))
        assert [s["Spec"]["Name"] for s in listed] == ["web"]
    message = await _error(
        await client.get("/v1.47/services", params={"filters": '{"colour":["red"]}'}), 400
    )
    assert message == "invalid filter 'colour'"


async def test_inspect_with_and_without_defaults(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    web = fake.add(make_service("web"))
    plain = await _json(await client.get(f"/v1.41/services/{web.id}?insertDefaults=false"))
    assert "UpdateConfig" not in plain["Spec"]
    full = await _json(await client.get("/v1.41/services/web?insertDefaults=True"))
    assert full["Spec"]["UpdateConfig"]["Monitor"] == 5_000_000_000
    assert full["Version"] == {"Index": 10}
    message = await _error(await client.get("/v1.47/services/nope"), 404)
    assert message == "service nope not found"


async def test_update_checks_the_version(client: TestClient[Any, Any], fake: FakeControl) -> None:
    web = fake.add(make_service("web"))
    url = f"/v1.47/services/{web.id}/update"
    assert await _json(await client.post(f"{url}?version=10", json=SPEC)) == {"Warnings": None}
    assert fake.services[web.id].spec.replicas == 2
    fake.add(fake.services[web.id])  # version 10 again
    message = await _error(await client.post(f"{url}?version=9", json=SPEC), 500)
    assert message.startswith("update out of sequence")
    message = await _error(await client.post(f"{url}?version=x", json=SPEC), 400)
    assert message.startswith("invalid service version 'x'")


async def test_rollback_previous_uses_the_previous_spec_not_the_body(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    web = fake.add(make_service("web"))
    url = f"/v1.47/services/{web.id}/update?version=10&rollback=previous"
    await _json(await client.post(url, json=SPEC))
    assert fake.paths()[-1] == "/service/rollback"
    assert fake.calls[-1][1] == NameRef(ref=web.id)
    assert not any(path == "/service/update" for path in fake.paths())


async def test_remove(client: TestClient[Any, Any], fake: FakeControl) -> None:
    fake.add(make_service("web"))
    response = await client.delete("/v1.47/services/web")
    assert response.status == 200 and await response.read() == b""
    assert await _error(await client.delete("/v1.47/services/web"), 404) == (
        "service web not found"
    )


# --------------------------------------------------------------------------- tasks


async def test_tasks_filters_and_lookup(client: TestClient[Any, Any], fake: FakeControl) -> None:
    web = fake.add(make_service("web", replicas=2))
    db = fake.add(make_service("db"))
    one = make_task(web, id="a1" + "x" * 23, slot=1, state=TaskState.RUNNING)
    two = make_task(web, id="a2" + "x" * 23, slot=2)
    fake.tasks = [one, two, make_task(db, id="b1" + "x" * 23)]
    filters = json.dumps({"service": {"web": True}, "_up-to-date": {"true": True}})
    listed = await _json(await client.get("/v1.47/tasks", params={"filters": filters}))
    assert sorted(t["ID"] for t in listed) == [one.id, two.id]
    assert {t["Spec"]["ContainerSpec"]["Image"] for t in listed} == {"nginx:1"}
    legacy = await _json(await client.get("/tasks", params={"filters": '{"service":["db"]}'}))
    assert [t["ServiceID"] for t in legacy] == [db.id]
    assert (await _json(await client.get(f"/v1.47/tasks/{one.id}")))["Slot"] == 1
    assert (await _json(await client.get("/v1.47/tasks/a2")))["ID"] == two.id  # id prefix
    assert (await _json(await client.get(f"/v1.47/tasks/web.1.{one.id}")))["ID"] == one.id
    assert "ambiguous" in await _error(await client.get("/v1.47/tasks/a"), 400)
    assert await _error(await client.get("/v1.47/tasks/zz"), 404) == "task zz not found"


async def test_a_job_s_tasks_show_their_iteration(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    job = fake.add(make_service("once", mode=ServiceMode.REPLICATED_JOB))
    fake.tasks = [make_task(job, desired=TaskState.COMPLETE)]
    listed = await _json(await client.get("/v1.47/tasks"))
    assert listed[0]["JobIteration"] == {}  # present: the progress bars of jobs need it
    service = await _json(await client.get("/v1.47/services/once"))
    assert service["JobStatus"] == {"JobIteration": {}}


# --------------------------------------------------------------------------- logs


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    found = []
    while data:
        stream, size = struct.unpack(">BxxxL", data[:8])
        found.append((stream, data[8 : 8 + size]))
        data = data[8 + size :]
    return found


async def test_service_logs_are_one_frame_per_line_with_details(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    web = fake.add(make_service("web"))
    err = msgspec.structs.replace(LINE, stream="stderr", line="oops")
    fake.lines = [LINE, err]
    response = await client.get(
        "/v1.47/services/web/logs?details=1&stderr=1&stdout=1&tail=all&since=0"
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    prefix = details_prefix(LINE, web.id)
    assert _frames(await response.read()) == [
        (1, f"{prefix} hello 1\n".encode()),
        (2, f"{prefix} oops\n".encode()),
    ]
    request = fake.calls[-1][1]
    assert request == LogsRequest(service=web.id, follow=False, tail=-1, since=0.0)
    only_err = await client.get("/v1.47/services/web/logs?stdout=False&stderr=True&tail=3")
    assert _frames(await only_err.read()) == [(2, b"oops\n")]
    assert fake.calls[-1][1].tail == 3


async def test_logs_of_a_tty_service_and_of_old_clients_are_raw(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    web = make_service("web")
    container = msgspec.structs.replace(web.spec.task.container, tty=True)
    tty = msgspec.structs.replace(
        web,
        spec=msgspec.structs.replace(
            web.spec, task=msgspec.structs.replace(web.spec.task, container=container)
        ),
    )
    fake.add(tty)
    fake.lines = [LINE]
    response = await client.get("/v1.47/services/web/logs?stdout=1")
    assert response.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert await response.read() == b"hello 1\n"
    fake.add(make_service("plain", id="p" * 25))
    old = await client.get("/v1.41/services/plain/logs?stdout=1")
    assert old.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert _frames(await old.read()) == [(1, b"hello 1\n")]  # multiplexed all the same


async def test_an_error_after_the_200_is_a_stream_3_frame(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    fake.add(make_service("web"))
    fake.lines = [LINE, Unavailable("none of the nodes that ran these tasks is connected")]
    response = await client.get("/v1.47/services/web/logs?stdout=1")
    assert response.status == 200
    assert _frames(await response.read()) == [
        (1, b"hello 1\n"),
        (3, b"Error grabbing logs: none of the nodes that ran these tasks is connected\n"),
    ]


async def test_a_follow_ends_when_the_client_leaves(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    fake.add(make_service("web"))
    fake.lines, fake.follow_forever = [LINE], True
    response = await client.get("/v1.47/services/web/logs?stdout=1&follow=1")
    assert response.status == 200
    assert await response.content.readexactly(8 + len(b"hello 1\n")) == frame(1, b"hello 1\n")
    response.close()  # the client goes away while nothing more comes
    await asyncio.wait_for(fake.closed.wait(), 5)


async def test_a_follow_with_nothing_to_say_sends_its_headers_at_once(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    fake.add(make_service("web"))
    fake.follow_forever = True
    response = await asyncio.wait_for(client.get("/v1.47/services/web/logs?stdout=1&follow=1"), 5)
    assert response.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    response.close()
    await asyncio.wait_for(fake.closed.wait(), 5)


async def test_logs_are_checked_before_the_stream(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    fake.add(make_service("web"))
    message = await _error(await client.get("/v1.47/services/web/logs"), 400)
    assert message == "Bad parameters: you must choose at least one stream"
    for query in ("tail=-1", "tail=x", "since=yesterday"):
        await _error(await client.get(f"/v1.47/services/web/logs?stdout=1&{query}"), 400)
    message = await _error(await client.get("/v1.47/services/nope/logs?stdout=1"), 404)
    assert message == "service nope not found"
    assert not any(path == "/service/logs" for path in fake.paths())


async def test_task_logs_are_that_task_s_lines(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    web = fake.add(make_service("web", replicas=2))
    task = make_task(web, id=LINE.task_id, slot=1)
    fake.tasks = [task]
    other = msgspec.structs.replace(LINE, task_id="o" * 25, line="not mine")
    fake.lines = [LINE, other]
    response = await client.get(f"/v1.47/tasks/{task.id}/logs?stdout=1&timestamps=1&since=1.5")
    assert _frames(await response.read()) == [(1, b"2026-12-06T21:38:31.737897000Z hello 1\n")]
    assert fake.calls[-1][1] == LogsRequest(service=web.id, tail=-1, since=1.5)


# --------------------------------------------------------------------------- distribution


async def test_distribution_answers_as_an_unreachable_registry(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    message = await _error(
        await client.get("/v1.47/distribution/docker.io/library/nginx:1.25/json"), 500
    )
    assert "docker.io/library/nginx:1.25" in message and "registries" in message
    await _error(await client.get("/distribution/Not_A:valid:ref/json"), 400)
    assert fake.calls == []
