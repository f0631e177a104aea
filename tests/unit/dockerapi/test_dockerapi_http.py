"""The Docker API's shared plumbing: version negotiation, errors, query booleans, filters,
request bodies and their limit, checked on the pure functions and through the aiohttp
application with a fake control API (no daemon, no socket: aiohttp's test server)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from swarmlite.api import Secret, SecretSpec
from swarmlite.api.control import BlobView, Info
from swarmlite.api.routes import INFO, NOT_A_MANAGER, SECRET_CREATE, Rep, Req, Route
from swarmlite.api.states import NodeRole
from swarmlite.dockerapi import build_app
from swarmlite.dockerapi.http import (
    MAX_BODY_BYTES,
    NOT_A_MANAGER_MESSAGE,
    Body,
    Control,
    docker_error,
    json_response,
    query_bool,
    query_filters,
    version_refusal,
)
from swarmlite.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NoLeader,
    NotFound,
    PermissionDenied,
    SwarmliteError,
)

# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/_ping", None),
        ("/v1.24/info", None),
        ("/v1.41/nodes", None),
        ("/v1.47/nodes", None),
        (
            "/v1.23/info",
            "client version 1.23 is too old. Minimum supported API version is 1.24, "
            "please upgrade your client to a newer version",
        ),
        (
            "/v1.5/info",
            "client version 1.5 is too old. Minimum supported API version is 1.24, "
            "please upgrade your client to a newer version",
        ),
        ("/v1.48/nodes", "client version 1.48 is too new. Maximum supported API version is 1.47"),
        ("/v2.0/nodes", "client version 2.0 is too new. Maximum supported API version is 1.47"),
    ],
)
def test_version_refusal_has_dockerd_words(path: str, message: str | None) -> None:
    assert version_refusal(path) == message


# --------------------------------------------------------------------------- query parameters


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", False),  # absent: the default
        ("?force=", False),
        ("?force=0", False),
        ("?force=no", False),
        ("?force=False", False),  # docker-py's Python repr
        ("?force=%20NONE%20", False),
        ("?force=1", True),
        ("?force=true", True),
        ("?force=True", True),
        ("?force=yes-please", True),  # dockerd: anything else is true
    ],
)
def test_query_bool_follows_dockerd(query: str, expected: bool) -> None:
    assert query_bool(make_mocked_request("GET", f"/nodes/x{query}"), "force") is expected


def test_query_bool_default_applies_only_when_absent() -> None:
    assert query_bool(make_mocked_request("GET", "/x"), "status", default=True) is True
    assert query_bool(make_mocked_request("GET", "/x?status=0"), "status", default=True) is False


@pytest.mark.parametrize(
    "raw",
    [
        '{"label":{"com.docker.stack.namespace=app":true},"name":{"a":true,"b":true}}',  # CLI
        '{"label":["com.docker.stack.namespace=app"],"name":["a","b"]}',  # docker-py
    ],
)
def test_query_filters_reads_both_forms(raw: str) -> None:
    from urllib.parse import quote

    request = make_mocked_request("GET", f"/services?filters={quote(raw)}")
    assert query_filters(request) == {
        "label": ["com.docker.stack.namespace=app"],
        "name": ["a", "b"],
    }


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidArgument("bad"), 400),
        (FailedPrecondition("in use"), 400),
        (NotFound("gone"), 404),
        (AlreadyExists("taken"), 409),
        (PermissionDenied("no"), 403),
        (NoLeader("no leader"), 503),
        (InternalError("bug"), 500),
    ],
)
def test_error_status_is_dockerds(error: SwarmliteError, status: int) -> None:
    assert docker_error(error) == (status, error.message)


def test_worker_refusal_reads_as_dockerds_not_a_manager() -> None:
    refusal = FailedPrecondition("this node is not a manager", details={"refusal": NOT_A_MANAGER})
    assert docker_error(refusal) == (503, NOT_A_MANAGER_MESSAGE)
    assert NOT_A_MANAGER_MESSAGE.startswith("This node is not a swarm manager.")


def test_stale_version_is_update_out_of_sequence() -> None:
    # dockerd passes swarmkit's plain error on as a 500.
    status, message = docker_error(Conflict("service web changed since it was read"))
    assert (status, message) == (
        500,
        "update out of sequence: service web changed since it was read",
    )
    assert docker_error(Conflict("update out of sequence")) == (500, "update out of sequence")


def test_json_response_has_no_charset() -> None:
    response = json_response({"message": "x"}, status=404)
    assert response.headers["Content-Type"] == "application/json"
    assert response.body == b'{"message":"x"}\n'


# --------------------------------------------------------------------------- bodies


def test_body_reads_keys_case_insensitively_and_null_as_absent() -> None:
    body = Body({"name": "web", "LABELS": {"a": "b"}, "Driver": None}, "SecretSpec")
    assert body.get_str("Name") == "web"
    assert body.get_map("Labels") == {"a": "b"}
    assert body.get_obj("Driver") is None
    assert body.keys() == ["name", "LABELS"]


@pytest.mark.parametrize(
    ("data", "read", "message"),
    [
        (
            {"Name": 5},
            lambda b: b.get_str("Name"),
            "invalid JSON: json: cannot unmarshal number into Go struct field SecretSpec.Name "
            "of type string",
        ),
        (
            {"Labels": []},
            lambda b: b.get_map("Labels"),
            "invalid JSON: json: cannot unmarshal array into Go struct field SecretSpec.Labels "
            "of type map[string]string",
        ),
        (
            {"Attachable": "true"},
            lambda b: b.get_bool("Attachable"),
            "invalid JSON: json: cannot unmarshal string into Go struct field "
            "SecretSpec.Attachable of type bool",
        ),
        (
            {"Replicas": 1.5},
            lambda b: b.get_int("Replicas"),
            "invalid JSON: json: cannot unmarshal number into Go struct field "
            "SecretSpec.Replicas of type int64",
        ),
    ],
)
def test_body_names_a_value_of_the_wrong_type(
    data: dict[str, Any], read: Any, message: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        read(Body(data, "SecretSpec"))
    assert raised.value.message == message


def test_body_refuses_unknown_fields_by_name() -> None:
    body = Body({"name": "x", "Colour": "red"}, "SecretSpec")
    with pytest.raises(InvalidArgument, match='unknown field "Colour"'):
        body.refuse_unknown(["Name", "Labels", "Data"])
    Body({"NAME": "x"}, "SecretSpec").refuse_unknown(["Name"])


# --------------------------------------------------------------------------- through the app


class FakeControl(Control):
    """Answers INFO as a manager (or a worker) and SECRET_CREATE; records every call."""

    def __init__(self, *, role: NodeRole = NodeRole.MANAGER) -> None:
        super().__init__("/nonexistent/swarmlite.sock")
        self.role = role
        self.calls: list[str] = []

    async def call(self, route: Route[Req, Rep], request: Req) -> Rep:
        self.calls.append(route.path)
        if route is INFO:
            info = Info(
                node_id="n1", cluster_id="c1", role=self.role, hostname="h1", addr="", managers=[]
            )
            return info  # type: ignore[return-value]
        if self.role is NodeRole.WORKER:
            raise FailedPrecondition("not a manager", details={"refusal": NOT_A_MANAGER})
        assert route is SECRET_CREATE
        secret = Secret(id="s" * 25, spec=SecretSpec(name="x"))
        return BlobView(object=secret)  # type: ignore[return-value]


@pytest.fixture
async def fake() -> FakeControl:
    return FakeControl()


@pytest.fixture
async def client(fake: FakeControl) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(fake, version="9.9"))) as test_client:
        yield test_client


async def _error(response: Any) -> tuple[int, str]:
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Api-Version"] == "1.47"
    body = json.loads(await response.read())
    assert set(body) == {"message"}
    return response.status, body["message"]


async def test_ping_headers(client: TestClient[Any, Any]) -> None:
    for method in ("GET", "HEAD"):
        response = await client.request(method, "/_ping")
        assert response.status == 200
        assert response.headers["Swarm"] == "active/manager"
        assert response.headers["Api-Version"] == "1.47"
        assert response.headers["Ostype"] == "linux"
        assert response.headers["Server"] == "swarmlite/9.9 (linux)"
        assert response.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert await (await client.get("/v1.41/_ping")).text() == "OK"


async def test_unknown_path_and_version(client: TestClient[Any, Any], fake: FakeControl) -> None:
    assert await _error(await client.get("/v1.47/nope")) == (404, "page not found")
    status, message = await _error(await client.get("/v1.99/_ping"))
    assert status == 400
    assert message == "client version 1.99 is too new. Maximum supported API version is 1.47"
    assert fake.calls == []


async def test_secret_create_reads_json(client: TestClient[Any, Any], fake: FakeControl) -> None:
    response = await client.post("/v1.47/secrets/create", json={"name": "x", "data": "eA=="})
    assert response.status == 201
    assert response.headers["Content-Type"] == "application/json"
    assert await response.json() == {"ID": "s" * 25}
    assert fake.calls == [SECRET_CREATE.path]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"Name":', "application/json", "invalid JSON: Input data was truncated"),
        (b"", "application/json", "invalid JSON: got EOF while reading request body"),
        (
            b'{"Name":"x","Data":"eA==","Colour":"red"}',
            "application/json",
            'invalid JSON: json: unknown field "Colour"',
        ),
        (
            b'{"Name":["x"],"Data":"eA=="}',
            "application/json",
            "invalid JSON: json: cannot unmarshal array into Go struct field SecretSpec.Name "
            "of type string",
        ),
        (
            b'{"Name":"x","Data":"not base64!"}',
            "application/json",
            "invalid JSON: Data is not standard base64",
        ),
        (
            b'{"Name":"x","Data":"eA==","Driver":{"Name":"vault"}}',
            "application/json",
            "Driver is not supported by swarmlite",
        ),
        (
            b'{"Name":"x"}',
            "text/plain",
            "unsupported Content-Type header (text/plain): must be 'application/json'",
        ),
    ],
)
async def test_bad_bodies_are_refused_before_any_call(
    client: TestClient[Any, Any], fake: FakeControl, body: bytes, content_type: str, message: str
) -> None:
    response = await client.post(
        "/v1.47/secrets/create", data=body, headers={"Content-Type": content_type}
    )
    status, said = await _error(response)
    assert status == 400
    assert said.startswith(message)
    assert fake.calls == []


async def _chunks() -> AsyncIterator[bytes]:
    for _ in range(MAX_BODY_BYTES // (1 << 20) + 1):
        yield b"x" * (1 << 20)


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_limit_is_refused(
    client: TestClient[Any, Any], fake: FakeControl, chunked: bool
) -> None:
    # With a Content-Length it is refused unread; chunked, once the limit is crossed.
    big: Any = _chunks() if chunked else io.BytesIO(b"x" * (MAX_BODY_BYTES + 1))
    response = await client.post(
        "/v1.47/secrets/create", data=big, headers={"Content-Type": "application/json"}
    )
    status, message = await _error(response)
    assert status == 413
    assert "too large" in message
    assert f"limit of {MAX_BODY_BYTES} bytes" in message
    assert fake.calls == []


async def test_network_fields_swarmlite_cannot_honour_are_named(
    client: TestClient[Any, Any], fake: FakeControl
) -> None:
    for field, value in [("Ingress", True), ("EnableIPv6", True)]:
        body = {"Name": "n", "Driver": "overlay", field: value}
        status, message = await _error(await client.post("/networks/create", json=body))
        assert status == 400
        assert message.startswith(f"{field} is not supported by swarmlite")
    status, message = await _error(
        await client.post("/networks/create", json={"Name": "n"} | {"Driver": "bridge"})
    )
    assert (status, message.split(":")[0]) == (400, "Driver 'bridge' is not supported by swarmlite")
    assert fake.calls == []


async def test_worker_answers_manager_calls_with_dockerds_503() -> None:
    worker = FakeControl(role=NodeRole.WORKER)
    async with TestClient(TestServer(build_app(worker))) as test_client:
        ping = await test_client.head("/_ping")
        assert ping.headers["Swarm"] == "active/worker"
        response = await test_client.post(
            "/v1.47/secrets/create", json={"Name": "x", "Data": "eA=="}
        )
        assert await _error(response) == (503, NOT_A_MANAGER_MESSAGE)


def test_fake_answers_are_real_shapes() -> None:
    # The fake's replies must decode as the control API's own types.
    view = BlobView(object=Secret(id="s" * 25, spec=SecretSpec(name="x")))
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(view), type=BlobView) == view
