"""The passthrough of containers, images, exec... to the node's runtime, through the real
application on a unix socket, against a fake runtime on another: a small HTTP/1.1 server
that records what it is asked and can stream, hijack and break off. Checks that the
request arrives as the client sent it (version capped at the runtime's), that a stream
is relayed chunk by chunk, that an upgrade becomes a pipe both ways with half-close, that
a dead runtime is a 503 naming its socket, and that swarm paths never reach it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from swarmlite.api import NodeRole
from swarmlite.api.control import Info
from swarmlite.api.routes import INFO, Rep, Req, Route
from swarmlite.dockerapi import build_app
from swarmlite.dockerapi.hijack import drop_hop_by_hop
from swarmlite.dockerapi.http import API_VERSION, Control
from swarmlite.dockerapi.passthrough import NO_RUNTIME_MESSAGE
from swarmlite.errors import NotFound

WAIT = 10.0  # seconds any single step may take before the test fails


@dataclass
class Recorded:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeRuntime:
    """A container runtime on ``socket``: one request per connection, answered by path.

    ``/version``: the API version; ``.../events``: a chunked stream whose second line
    waits for ``release`` (``?broken=1``: cut after the first); ``.../exec/{id}/start``
    with an upgrade: 101, then each read echoed upper-cased and, on the client's
    half-close, ``stdin closed``; ``.../exec/missing/start``: 404; ``.../attach`` without
    an upgrade: dockerd's 200 hijack; anything else: a JSON echo of the request.
    """

    socket: Path
    api_version: str = "1.41"
    requests: list[Recorded] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    events_closed: asyncio.Event = field(default_factory=asyncio.Event)
    server: asyncio.Server | None = None
    connections: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, str(self.socket))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.connections:
                writer.close()
            await self.server.wait_closed()
            self.server = None

    def calls(self, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if path_part in r.target]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, target, _ = request_line.split(" ")
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = b""
            if "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding") == "chunked":
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    body += await reader.readexactly(size)
                    await reader.readexactly(2)
                await reader.readuntil(b"\r\n")
            self.requests.append(Recorded(method, target, headers, body))
            await self._answer(method, target, headers, body, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.connections.discard(writer)
            writer.close()

    async def _answer(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        path = target.split("?")[0]
        upgrade = (
            headers.get("upgrade") == "tcp" and "upgrade" in headers.get("connection", "").lower()
        )
        if path == "/version":
            await _send_json(writer, 200, {"ApiVersion": self.api_version, "Version": "20.10"})
        elif path.endswith("/events"):
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            writer.write(_chunk(b'{"status":"one"}\n'))
            await writer.drain()
            if "broken=1" in target:
                return
            gone = asyncio.ensure_future(reader.read(1))  # b"": the proxy hung up
            released = asyncio.ensure_future(self.release.wait())
            await asyncio.wait({gone, released}, return_when=asyncio.FIRST_COMPLETED)
            gone.cancel()
            released.cancel()
            if not self.release.is_set():
                self.events_closed.set()
                return
            writer.write(_chunk(b'{"status":"two"}\n') + b"0\r\n\r\n")
            await writer.drain()
        elif path.endswith("/exec/missing/start"):
            await _send_json(writer, 404, {"message": "No such exec instance: missing"})
        elif path.endswith("/start") and upgrade:
            writer.write(
                b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
            )
            while data := await reader.read(1024):
                writer.write(data.upper())
                await writer.drain()
            writer.write(b"stdin closed\n")
            await writer.drain()
        elif path.endswith("/attach"):
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nout\n"
            )
            await writer.drain()
        else:
            echo = {"method": method, "target": target, "body": body.decode()}
            await _send_json(writer, 200, echo, extra=b"Docker-Experimental: false\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _send_json(
    writer: asyncio.StreamWriter, status: int, obj: Any, extra: bytes = b""
) -> None:
    body = json.dumps(obj).encode()
    writer.write(
        b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Api-Version: %s\r\nServer: Docker/20.10 (linux)\r\nConnection: close\r\n%s\r\n%s"
        % (status, len(body), b"1.41", extra, body)
    )
    await writer.drain()


class FakeControl(Control):
    """A control API that knows nothing: every call is recorded and not found."""

    def __init__(self) -> None:
        super().__init__("/nonexistent/swarmlite.sock")
        self.calls: list[str] = []

    async def call(self, route: Route[Req, Rep], request: Req) -> Rep:
        self.calls.append(route.path)
        if route is INFO:  # a worker's: `/events` then has only the runtime's
            info = Info(
                node_id="w",
                cluster_id="c",
                role=NodeRole.WORKER,
                hostname="w",
                addr="",
                managers=[],
            )
            return cast(Rep, info)
        raise NotFound("nothing here")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory whose unix sockets stay under the ~100 byte limit."""
    path = Path(tempfile.mkdtemp(prefix="swlpt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def runtime(short_dir: Path) -> AsyncIterator[FakeRuntime]:
    fake = FakeRuntime(short_dir / "runtime.sock")
    await fake.start()
    yield fake
    await fake.stop()


@dataclass
class Api:
    socket: Path
    control: FakeControl
    session: aiohttp.ClientSession

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        return await self.request("GET", path, **kwargs)

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with asyncio.timeout(WAIT):
            url = URL("http://docker" + path, encoded=True)  # as given, not requoted
            async with self.session.request(method, url, **kwargs) as resp:
                raw = await resp.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        return resp.status, body, resp

    async def raw(self, head: str, body: bytes = b"") -> tuple[asyncio.StreamReader, Any]:
        reader, writer = await asyncio.open_unix_connection(str(self.socket))
        writer.write(head.replace("\n", "\r\n").encode() + body)
        await writer.drain()
        return reader, writer


async def _serve(short_dir: Path, docker_host: str | None) -> AsyncIterator[Api]:
    control = FakeControl()
    runner = web.AppRunner(build_app(control, docker_host=docker_host), access_log=None)
    await runner.setup()
    socket = short_dir / "docker.sock"
    await web.UnixSite(runner, str(socket)).start()
    session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket)))
    try:
        yield Api(socket, control, session)
    finally:
        await session.close()
        await runner.cleanup()


@pytest.fixture
async def api(short_dir: Path, runtime: FakeRuntime) -> AsyncIterator[Api]:
    async for served in _serve(short_dir, f"unix://{runtime.socket}"):
        yield served


async def _head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    async with asyncio.timeout(WAIT):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.strip().split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers


async def _read(reader: asyncio.StreamReader, size: int) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.readexactly(size)


# --------------------------------------------------------------------------- ordinary calls


async def test_method_path_query_headers_and_body_reach_the_runtime(
    api: Api, runtime: FakeRuntime
) -> None:
    body = json.dumps({"Image": "swl/busybox:1", "Cmd": ["sleep", "60"]})
    status, echo, resp = await api.request(
        "POST",
        "/v1.47/containers/create?name=x&platform=",
        data=body,
        headers={"Content-Type": "application/json", "X-Registry-Auth": "e30="},
    )
    assert status == 200
    # the client's version, capped at the runtime's 1.41; the query as sent
    assert echo["target"] == "/v1.41/containers/create?name=x&platform="
    assert echo["method"] == "POST"
    assert echo["body"] == body
    sent = runtime.calls("/containers/create")[0]
    assert sent.headers["x-registry-auth"] == "e30="
    assert sent.headers["content-type"] == "application/json"
    # our headers, not the runtime's; the runtime's own others are passed
    assert resp.headers["Api-Version"] == API_VERSION
    assert resp.headers["Server"].startswith("swarmlite/")
    assert resp.headers["Docker-Experimental"] == "false"


async def test_headers_the_client_did_not_send_are_not_added(
    api: Api, runtime: FakeRuntime
) -> None:
    """`docker commit` posts no body and no Content-Type; dockerd refuses any but JSON."""
    reader, writer = await api.raw(
        "POST /v1.47/commit?container=x&repo=a HTTP/1.1\nHost: api.moby.localhost\n"
        "User-Agent: Docker-Client/28.2.2 (linux)\nContent-Length: 0\n\n"
    )
    status_line, _ = await _head(reader)
    writer.close()
    assert status_line.startswith("HTTP/1.1 200")
    sent = runtime.calls("/commit")[0]
    assert sent.target == "/v1.41/commit?container=x&repo=a"
    assert "content-type" not in sent.headers
    assert "accept-encoding" not in sent.headers
    assert sent.headers["user-agent"] == "Docker-Client/28.2.2 (linux)"


@pytest.mark.parametrize(
    ("asked", "forwarded"),
    [
        ("/v1.30/images/json?all=1", "/v1.30/images/json?all=1"),  # under the cap: as is
        ("/v1.47/volumes", "/v1.41/volumes"),
        ("/images/swl/busybox:1/json", "/images/swl/busybox:1/json"),  # unversioned stays so
        ("/v1.41/system/df", "/v1.41/system/df"),
        ("/v1.44/plugins?filters=%7B%22enabled%22%3A%5B%22true%22%5D%7D", None),
    ],
)
async def test_versions_are_capped_at_the_runtimes_and_paths_kept(
    api: Api, runtime: FakeRuntime, asked: str, forwarded: str | None
) -> None:
    status, echo, _ = await api.get(asked)
    assert status == 200
    expected = forwarded or asked.replace("/v1.44/", "/v1.41/")
    assert echo["target"] == expected


async def test_the_runtime_version_is_asked_once(api: Api, runtime: FakeRuntime) -> None:
    for _ in range(3):
        assert (await api.get("/v1.47/containers/json"))[0] == 200
    assert len(runtime.calls("/version")) == 1


async def test_a_streamed_answer_arrives_chunk_by_chunk(api: Api, runtime: FakeRuntime) -> None:
    async with asyncio.timeout(WAIT):
        async with api.session.get("http://docker/v1.47/events") as resp:
            assert resp.status == 200
            # the runtime holds its second line until released: the first must be here
            assert await resp.content.readline() == b'{"status":"one"}\n'
            runtime.release.set()
            assert await resp.content.readline() == b'{"status":"two"}\n'
            assert await resp.content.read() == b""


async def test_a_client_that_leaves_a_stream_closes_the_runtimes(
    api: Api, runtime: FakeRuntime
) -> None:
    async with asyncio.timeout(WAIT):
        async with api.session.get("http://docker/v1.47/events") as resp:
            assert await resp.content.readline() == b'{"status":"one"}\n'
            resp.close()  # the client hangs up while the runtime has nothing to say
        await runtime.events_closed.wait()


async def test_a_stream_the_runtime_breaks_off_is_cut_for_the_client(api: Api) -> None:
    async with asyncio.timeout(WAIT):
        async with api.session.get("http://docker/v1.47/events?broken=1") as resp:
            assert await resp.content.readline() == b'{"status":"one"}\n'
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.content.read()


# --------------------------------------------------------------------------- hijacks


async def test_an_upgrade_becomes_a_pipe_both_ways(api: Api, runtime: FakeRuntime) -> None:
    options = b'{"Detach":false,"Tty":false}'
    reader, writer = await api.raw(
        "POST /v1.47/exec/abc/start HTTP/1.1\nHost: api.moby.localhost\n"
        "Content-Type: application/json\nConnection: Upgrade\nUpgrade: tcp\n"
        f"Content-Length: {len(options)}\n\n",
        options,
    )
    status_line, headers = await _head(reader)
    assert status_line.startswith("HTTP/1.1 101")
    assert headers["upgrade"] == "tcp"
    assert headers["connection"].lower() == "upgrade"
    assert headers["content-type"] == "application/vnd.docker.raw-stream"
    assert headers["api-version"] == API_VERSION
    assert "content-length" not in headers and "transfer-encoding" not in headers
    sent = runtime.calls("/exec/abc/start")[0]
    assert sent.target == "/v1.41/exec/abc/start"
    assert sent.body == options
    for word in (b"hello", b"again"):
        writer.write(word)
        await writer.drain()
        assert await _read(reader, len(word)) == word.upper()
    writer.write_eof()  # stdin's end: the output goes on until the runtime closes
    async with asyncio.timeout(WAIT):
        assert await reader.read() == b"stdin closed\n"
    writer.close()


async def test_an_attach_without_upgrade_gets_dockerds_200_hijack(api: Api) -> None:
    reader, writer = await api.raw(
        "POST /containers/abc/attach?stream=1&stdout=1 HTTP/1.1\nHost: docker\n\n"
    )
    status_line, headers = await _head(reader)
    assert status_line.startswith("HTTP/1.1 200")
    assert headers["content-type"] == "application/vnd.docker.raw-stream"
    assert "transfer-encoding" not in headers
    async with asyncio.timeout(WAIT):
        assert await reader.read() == b"out\n"
    writer.close()


async def test_an_upgrade_the_runtime_refuses_is_its_error(api: Api) -> None:
    reader, writer = await api.raw(
        "POST /v1.47/exec/missing/start HTTP/1.1\nHost: docker\nConnection: Upgrade\n"
        "Upgrade: tcp\nContent-Type: application/json\nContent-Length: 2\n\n",
        b"{}",
    )
    status_line, headers = await _head(reader)
    assert status_line.startswith("HTTP/1.1 404")
    body = await _read(reader, int(headers["content-length"]))
    assert json.loads(body) == {"message": "No such exec instance: missing"}
    writer.close()


async def test_other_exec_calls_are_ordinary(api: Api) -> None:
    status, echo, _ = await api.request(
        "POST", "/v1.47/exec/abc/resize?h=24&w=80", data=b"", headers={"Content-Length": "0"}
    )
    assert status == 200
    assert echo["target"] == "/v1.41/exec/abc/resize?h=24&w=80"


class TlsClient:
    """A TLS client over a plain TCP connection, with its own ``SSLObject``, so that it
    can half-close as Go's clients do: a ``close_notify`` alert (``tls.Conn.CloseWrite``)
    or a TCP half-close under TLS; asyncio's own TLS can do neither."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
    ) -> None:
        self.reader, self.writer = reader, writer
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext) -> TlsClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer, context)
        while True:
            try:
                client.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await client._exchange()
        client._flush()
        return client

    def _flush(self) -> None:
        if records := self.outgoing.read():
            self.writer.write(records)

    async def _exchange(self) -> None:
        self._flush()
        data = await self.reader.read(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    async def recv(self) -> bytes:
        """What comes next; b"" at the end."""
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    return self.tls.read(65536)
                except ssl.SSLWantReadError:
                    await self._exchange()
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""

    async def recv_all(self) -> bytes:
        data = b""
        while chunk := await self.recv():
            data += chunk
        return data

    def close_write(self, how: str) -> None:
        if how == "close_notify":
            with contextlib.suppress(ssl.SSLWantReadError):
                self.tls.unwrap()  # writes the alert, would then wait for the server's
            self._flush()
        else:
            self.writer.write_eof()


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for localhost, and a client
    context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    return server, client


@pytest.mark.parametrize("how", ["close_notify", "tcp"])
async def test_over_tls_a_half_close_keeps_the_output(
    runtime: FakeRuntime, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], how: str
) -> None:
    """The docker CLI over TLS ends stdin with a close_notify; dockerd writes on."""
    server_context, client_context = tls_contexts
    app = build_app(FakeControl(), docker_host=f"unix://{runtime.socket}")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context).start()
        port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        client = await TlsClient.connect(port, client_context)
    except BaseException:
        await runner.cleanup()
        raise
    try:
        client.send(
            b"POST /v1.47/exec/abc/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
            b"Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += await client.recv()
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        client.send(b"hello")
        echoed = rest
        while len(echoed) < 5:
            echoed += await client.recv()
        assert echoed == b"HELLO"
        client.close_write(how)
        assert await client.recv_all() == b"stdin closed\n"
    finally:
        client.writer.close()
        await runner.cleanup()


async def test_stopping_the_server_ends_open_streams_and_pipes_at_once(
    short_dir: Path, runtime: FakeRuntime
) -> None:
    """A daemon that stops (or restarts for a new role) does not wait for `docker events`
    or `docker exec -it` to end."""
    app = build_app(FakeControl(), docker_host=f"unix://{runtime.socket}")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    socket = short_dir / "docker.sock"
    await web.UnixSite(runner, str(socket)).start()
    session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket)))
    api = Api(socket, FakeControl(), session)
    try:
        events = await session.get("http://docker/v1.47/events")
        assert await events.content.readline() == b'{"status":"one"}\n'
        reader, writer = await api.raw(
            "POST /exec/abc/start HTTP/1.1\nHost: docker\nConnection: Upgrade\n"
            "Upgrade: tcp\nContent-Length: 2\n\n",
            b"{}",
        )
        status_line, _ = await _head(reader)
        assert status_line.startswith("HTTP/1.1 101")
        async with asyncio.timeout(5):
            await runner.cleanup()
        async with asyncio.timeout(WAIT):
            assert await reader.read() == b""
        with pytest.raises(aiohttp.ClientPayloadError):
            await events.content.read()
        events.release()
        writer.close()
    finally:
        await session.close()
        await runner.cleanup()


# --------------------------------------------------------------------------- refusals


async def test_a_dead_runtime_is_a_503_naming_its_socket(api: Api, runtime: FakeRuntime) -> None:
    await runtime.stop()
    runtime.socket.unlink()
    status, body, resp = await api.get("/v1.47/containers/json")
    assert status == 503
    assert resp.headers["Content-Type"] == "application/json"
    assert f"unix://{runtime.socket}" in body["message"]
    reader, writer = await api.raw(
        "POST /exec/abc/start HTTP/1.1\nHost: docker\nConnection: Upgrade\nUpgrade: tcp\n"
        "Content-Length: 0\n\n"
    )
    status_line, headers = await _head(reader)
    assert status_line.startswith("HTTP/1.1 503")
    body = json.loads(await _read(reader, int(headers["content-length"])))
    assert str(runtime.socket) in body["message"]
    writer.close()


async def test_without_a_runtime_the_runtimes_paths_are_501(short_dir: Path) -> None:
    async for served in _serve(short_dir, None):
        for path in ("/v1.47/containers/json", "/images/json", "/v1.41/exec/x/start"):
            status, body, _ = await served.request("POST" if "exec" in path else "GET", path)
            assert (status, body) == (501, {"message": NO_RUNTIME_MESSAGE})


@pytest.mark.parametrize(
    "path",
    [
        "/v1.47/nodes",
        "/v1.47/services/x",
        "/tasks",
        "/v1.47/networks",
        "/v1.47/secrets/x",
        "/v1.47/configs",
        "/v1.47/swarm",
        "/v1.47/distribution/docker.io/library/busybox:1/json",
        "/v1.47/swarm/init",  # not served at all: 404, not the runtime's
        "/v1.47/containersx",
    ],
)
async def test_swarm_paths_never_reach_the_runtime(
    api: Api, runtime: FakeRuntime, path: str
) -> None:
    method = "POST" if path.endswith("/init") else "GET"
    status, _, _ = await api.request(method, path)
    assert status in (404, 400, 500, 503)
    assert runtime.requests == []


# --------------------------------------------------------------------------- headers


def test_hop_by_hop_headers_are_dropped() -> None:
    kept = drop_hop_by_hop(
        [
            ("Connection", "keep-alive, X-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("X-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "tcp"),
            ("Proxy-Authorization", "secret"),
            ("X-Registry-Auth", "e30="),
            ("Content-Type", "application/json"),
        ]
    )
    assert sorted(kept.items()) == [
        ("Content-Type", "application/json"),
        ("X-Registry-Auth", "e30="),
    ]
