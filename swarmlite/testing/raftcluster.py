"""Several `raftproc` members as real processes on loopback, for tests and benchmarks.

Owns their certificates (one test CA, real mutual TLS), ports, data directories and
processes: start, SIGKILL, restart, and the client side of the test API with leader
discovery and retry. Every process it starts it also stops (`close`), by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import msgspec

from swarmlite.ca import RootCA, client_context, issue_node_cert, write_credentials
from swarmlite.errors import NotLeader, SwarmliteError, Unavailable
from swarmlite.rpc import RpcClient
from swarmlite.testing.raftproc import (
    Empty,
    GetReply,
    GetRequest,
    MemberRequest,
    PutReply,
    PutRequest,
    StatusReply,
    TransferReply,
)

T = TypeVar("T")
CLUSTER_ID = "swl-test-cluster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Member:
    node_id: str
    port: int
    data: Path
    certs: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class ProcCluster:
    def __init__(
        self,
        root: Path,
        size: int,
        *,
        snapshot_every: int = 10_000,
        bootstrap: int | None = None,
        log_level: str = "INFO",
    ) -> None:
        """`size` members n1..nN; the first `bootstrap` (default all) form the cluster."""
        self.root = root
        self.snapshot_every = snapshot_every
        self.log_level = log_level
        self.ca = RootCA.create(CLUSTER_ID)
        self.members: dict[str, Member] = {}
        for i in range(1, size + 1):
            self.add_member(f"n{i}")
        founders = list(self.members.values())[: bootstrap or size]
        self.bootstrap = ",".join(f"{m.node_id}={m.address}" for m in founders)
        self.founders = {m.node_id for m in founders}
        self._clients: dict[str, RpcClient] = {}
        self._dead_clients: list[RpcClient] = []
        self._client_ssl = client_context(
            issue_node_cert(self.ca, "test-client", "manager", CLUSTER_ID)
        )

    def add_member(self, node_id: str) -> Member:
        certs = self.root / node_id / "certs"
        write_credentials(certs, issue_node_cert(self.ca, node_id, "manager", CLUSTER_ID))
        member = Member(node_id, free_port(), self.root / node_id / "data", certs)
        member.log = self.root / node_id / "log.txt"
        self.members[node_id] = member
        return member

    # ------------------------------------------------------------------ processes

    def start(self, node_id: str) -> None:
        m = self.members[node_id]
        argv = [
            sys.executable,
            "-m",
            "swarmlite.testing.raftproc",
            "--id",
            node_id,
            "--data",
            str(m.data),
            "--listen",
            m.address,
            "--certs",
            str(m.certs),
            "--cluster",
            CLUSTER_ID,
            "--snapshot-every",
            str(self.snapshot_every),
            "--log-level",
            self.log_level,
        ]
        if node_id in self.founders:
            argv += ["--bootstrap", self.bootstrap]
        with open(m.log, "ab") as log_file:
            m.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL
            )
        assert m.proc.stdout is not None
        line = m.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            raise RuntimeError(f"{node_id} did not start: {m.log.read_text()[-2000:]}")

    def start_all(self) -> None:
        for node_id in self.founders:
            self.start(node_id)

    def kill(self, node_id: str) -> None:
        """SIGKILL: no clean-up, no flush; only what was fsynced survives."""
        m = self.members[node_id]
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait()
        if m.proc is not None and m.proc.stdout is not None:
            m.proc.stdout.close()
        m.proc = None
        client = self._clients.pop(node_id, None)
        if client is not None:
            self._dead_clients.append(client)  # closed by close(): kill() is synchronous

    def alive(self) -> list[str]:
        return [i for i, m in self.members.items() if m.proc is not None and m.proc.poll() is None]

    async def close(self) -> None:
        for client in [*self._clients.values(), *self._dead_clients]:
            with contextlib.suppress(Exception):
                await client.close()
        self._clients.clear()
        self._dead_clients.clear()
        for m in self.members.values():
            if m.proc is not None and m.proc.poll() is None:
                m.proc.send_signal(signal.SIGKILL)
                m.proc.wait()
            if m.proc is not None and m.proc.stdout is not None:
                m.proc.stdout.close()
            m.proc = None

    # ------------------------------------------------------------------ the test API

    def client(self, node_id: str) -> RpcClient:
        client = self._clients.get(node_id)
        if client is None:
            address = self.members[node_id].address
            client = RpcClient(f"https://{address}", self._client_ssl, timeout=5.0)
            self._clients[node_id] = client
        return client

    async def call(self, node_id: str, path: str, req: msgspec.Struct, rtype: type[T]) -> T:
        return await self.client(node_id).call(path, req, rtype)

    async def status(self, node_id: str) -> StatusReply:
        return await self.call(node_id, "/test/v1/status", Empty(), StatusReply)

    async def leader(self, timeout: float = 10.0, among: list[str] | None = None) -> str:
        """The id of a member that says it leads (and that its peers agree on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node_id in among or self.alive():
                with contextlib.suppress(SwarmliteError):
                    status = await self.status(node_id)
                    if status.role == "leader":
                        return node_id
            await asyncio.sleep(0.05)
        raise Unavailable(f"no leader within {timeout}s")

    async def on_leader(
        self, path: str, req: msgspec.Struct, rtype: type[T], timeout: float = 20.0
    ) -> T:
        """Call the leader, following NotLeader and retrying while there is none."""
        deadline = time.monotonic() + timeout
        last: SwarmliteError | None = None
        while time.monotonic() < deadline:
            try:
                leader = await self.leader(timeout=max(0.1, deadline - time.monotonic()))
                return await self.call(leader, path, req, rtype)
            except (NotLeader, Unavailable) as exc:
                last = exc
                await asyncio.sleep(0.05)
        raise Unavailable(f"{path} did not succeed within {timeout}s: {last}")

    async def put(self, key: str, value: bytes, timeout: float = 20.0) -> int:
        reply = await self.on_leader("/test/v1/put", PutRequest(key, value), PutReply, timeout)
        return reply.index

    async def get(self, key: str, timeout: float = 20.0) -> bytes | None:
        reply = await self.on_leader("/test/v1/get", GetRequest(key), GetReply, timeout)
        return reply.value

    async def add_voter(self, node_id: str, timeout: float = 30.0) -> None:
        req = MemberRequest(node_id, self.members[node_id].address)
        await self.on_leader("/test/v1/add_voter", req, Empty, timeout)

    async def remove(self, node_id: str, timeout: float = 20.0) -> None:
        await self.on_leader("/test/v1/remove", MemberRequest(node_id), Empty, timeout)

    async def transfer(self, node_id: str) -> str | None:
        reply = await self.call(node_id, "/test/v1/transfer", Empty(), TransferReply)
        return reply.leader
