"""Fixtures for the CLI: a fake daemon (a real RpcServer on a unix socket, in its own thread
with its own event loop, answering scripted control calls) and a runner pointed at it.

The fake serves every route of ``api.routes.ROUTES``, unary and stream alike, so it can
never drift from the table. Every call it receives is recorded as (route, decoded
request), so a test can check exactly what a command sent. A route the test did not script
answers FailedPrecondition, so a command calling something unexpected fails loudly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner, Result

from swarmlite.api import Node, NodeAvailability, NodeRole, NodeSpec, NodeState, NodeStatus
from swarmlite.api.control import ManagerStatus, NodeView
from swarmlite.api.routes import ROUTES, Route
from swarmlite.cli.main import cli
from swarmlite.errors import FailedPrecondition
from swarmlite.rpc import Peer, RpcServer

# A unary route's answer, or a stream route's items (a list, any iterable).
Reply = Callable[[Any], msgspec.Struct | Iterable[Any] | None]


class FakeDaemon:
    """Serves every control route on ``socket``; ``on(route, reply)`` scripts the answers."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.calls: list[tuple[Route[Any, Any], msgspec.Struct]] = []
        self._replies: dict[str, Reply] = {}
        self._loop = asyncio.new_event_loop()
        self._server = RpcServer(None)
        for route in ROUTES:
            handler = self._stream(route) if route.stream else self._unary(route)
            self._server.add_route(route, handler)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def on(self, route: Route[Any, Any], reply: Reply) -> None:
        """Answer ``route`` with ``reply(request)``, which may raise a SwarmliteError (None
        stands for an empty reply); for a stream route, ``reply(request)`` gives the items to
        send (then the stream ends)."""
        self._replies[route.path] = reply

    def requests(self, route: Route[Any, Any]) -> list[Any]:
        return [request for called, request in self.calls if called == route]

    def _answer(self, route: Route[Any, Any], request: Any) -> Any:
        self.calls.append((route, request))
        reply = self._replies.get(route.path)
        if reply is None:
            raise FailedPrecondition(f"the test did not script {route.path}")
        return reply(request)

    def _unary(self, route: Route[Any, Any]) -> Callable[[Any, Peer], Any]:
        async def handle(request: Any, peer: Peer) -> Any:
            answer = self._answer(route, request)
            return route.reply() if answer is None else answer  # None: Empty, for short

        return handle

    def _stream(self, route: Route[Any, Any]) -> Callable[[Any, Peer], AsyncIterator[Any]]:
        async def handle(request: Any, peer: Peer) -> AsyncIterator[Any]:
            for item in self._answer(route, request):
                yield item

        return handle

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(
            self._server.start_unix(str(self.socket)), self._loop
        ).result(timeout=5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(tmp_path / "d.sock")
    fake.start()
    yield fake
    fake.stop()


Run = Callable[..., Result]


@pytest.fixture
def run(daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run("node", "ls")``: the CLI against the fake daemon (through SWARMLITE_HOST)."""
    for name in ("SWARMLITE_HOST", "SWARMLITE_SOCKET", "SWARMLITE_CERT_DIR", "SWARMLITE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> Result:
        environment = {"SWARMLITE_HOST": daemon.host, **(env or {})}
        return CliRunner().invoke(cli, list(args), env=environment, input=input)

    return invoke


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """--debug and the daemon set up the swarmlite logger; give other tests theirs back."""
    logger = logging.getLogger("swarmlite")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def _make_view(
    node_id: str,
    hostname: str,
    *,
    state: NodeState = NodeState.READY,
    availability: NodeAvailability = NodeAvailability.ACTIVE,
    manager: ManagerStatus | None = None,
    is_self: bool = False,
    version: str = "0.1.0",
    labels: dict[str, str] | None = None,
) -> NodeView:
    role = NodeRole.MANAGER if manager is not None else NodeRole.WORKER
    node = Node(
        id=node_id,
        created_at=1_700_000_000.0,
        spec=NodeSpec(role=role, availability=availability, labels=labels or {}),
        status=NodeStatus(
            state=state, hostname=hostname, addresses=(f"{hostname}:2377",), version=version
        ),
    )
    return NodeView(node=node, manager=manager, self=is_self)


@pytest.fixture
def make_view() -> Callable[..., NodeView]:
    """``make_view(id, hostname, manager=ManagerStatus(...), is_self=True, ...)``."""
    return _make_view
