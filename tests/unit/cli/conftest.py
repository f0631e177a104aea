"""Fixtures for the CLI: a fake daemon (a real RpcServer on a unix socket, in its own thread
with its own event loop, answering scripted control calls) and a runner pointed at it.

Every call the fake daemon receives is recorded as (path, decoded request), so a test can
check exactly what a command sent. A path the test did not script answers
FailedPrecondition, so a command calling something unexpected fails loudly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner, Result

from swarmlite.api import Node, NodeAvailability, NodeRole, NodeSpec, NodeState, NodeStatus
from swarmlite.api.control import (
    INFO,
    JOIN_TOKEN,
    LEAVE,
    NODE_INSPECT,
    NODE_LS,
    NODE_PS,
    NODE_RM,
    NODE_UPDATE,
    Empty,
    JoinTokenRequest,
    LeaveRequest,
    ManagerStatus,
    NodeRef,
    NodeRemove,
    NodeUpdate,
    NodeView,
)
from swarmlite.cli import cli
from swarmlite.errors import FailedPrecondition
from swarmlite.rpc import Peer, RpcServer

Reply = Callable[[Any], msgspec.Struct | None]

_ROUTES: dict[str, type[msgspec.Struct]] = {
    NODE_LS: Empty,
    NODE_INSPECT: NodeRef,
    NODE_UPDATE: NodeUpdate,
    NODE_RM: NodeRemove,
    NODE_PS: NodeRef,
    JOIN_TOKEN: JoinTokenRequest,
    INFO: Empty,
    LEAVE: LeaveRequest,
}


class FakeDaemon:
    """Serves the control paths on ``socket``; ``on(path, reply)`` scripts the answers."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.calls: list[tuple[str, msgspec.Struct]] = []
        self._replies: dict[str, Reply] = {}
        self._loop = asyncio.new_event_loop()
        self._server = RpcServer(None)
        for path, request_type in _ROUTES.items():
            self._server.add_unary(path, request_type, self._handler(path))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def on(self, path: str, reply: Reply) -> None:
        """Answer ``path`` with ``reply(request)``; ``reply`` may raise a SwarmliteError."""
        self._replies[path] = reply

    def requests(self, path: str) -> list[Any]:
        return [request for called, request in self.calls if called == path]

    def _handler(self, path: str) -> Callable[[Any, Peer], Any]:
        async def handle(request: Any, peer: Peer) -> msgspec.Struct | None:
            self.calls.append((path, request))
            reply = self._replies.get(path)
            if reply is None:
                raise FailedPrecondition(f"the test did not script {path}")
            return reply(request)

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
