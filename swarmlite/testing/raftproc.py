"""A Raft member as its own process, for component tests and benchmarks.

Runs one `RaftNode` with the real store (`MemoryStore`) as its state machine, the real
storage (fsync on; sealed with the data dir's keys when asked, as a manager's is), and
the real transport over mutual TLS, plus a small test API on the same port: put/get keys
(stored as Config objects), status, membership changes and leadership transfer. The
daemon of a later issue wires the same pieces for production.

    python -m swarmlite.testing.raftproc --id n1 --data DIR --listen 127.0.0.1:PORT \
        --certs CERTDIR --cluster CID [--bootstrap n1=ADDR,n2=ADDR,...] [--snapshot-every N] \
        [--sealed]

It prints "ready <port>" on stdout once it serves, then logs to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import msgspec

from swarmlite import log as swl_log
from swarmlite.api import Config, ConfigSpec
from swarmlite.ca import client_context, read_credentials, server_context
from swarmlite.errors import NotLeader
from swarmlite.raft import Member, NodeConfig, RaftCore, RaftNode, RaftStorage, RaftTransport
from swarmlite.raft.sealing import load_keys
from swarmlite.rpc import Peer, RpcServer
from swarmlite.store import MemoryStore, ReadTx, Store, Tx
from swarmlite.store.raftproposer import RaftProposer


class PutRequest(msgspec.Struct, frozen=True):
    key: str
    value: bytes


class PutReply(msgspec.Struct, frozen=True):
    index: int


class GetRequest(msgspec.Struct, frozen=True):
    key: str


class GetReply(msgspec.Struct, frozen=True):
    value: bytes | None
    index: int


class Empty(msgspec.Struct, frozen=True):
    pass


class StatusReply(msgspec.Struct, frozen=True):
    node_id: str
    role: str
    term: int
    leader: str | None
    commit: int
    applied: int
    first_index: int
    voters: list[str]
    learners: list[str]


class MemberRequest(msgspec.Struct, frozen=True):
    node_id: str
    address: str = ""


class TransferReply(msgspec.Struct, frozen=True):
    leader: str | None


@dataclass
class RaftProcess:
    """The pieces of one member, wired; `serve()` runs them until stopped."""

    node: RaftNode
    store: Store
    server: RpcServer
    transport: RaftTransport

    async def put(self, key: str, value: bytes) -> int:
        def write(state: ReadTx) -> Tx:
            old = state.get(Config, key)
            spec = ConfigSpec(name=key, data=value)
            if old is None:
                return Tx().create(Config(id=key, spec=spec))
            return Tx().update(msgspec.structs.replace(old, spec=spec))

        result = await self.store.update(write)
        return result.index

    async def get(self, key: str) -> tuple[bytes | None, int]:
        obj = await self.store.get(Config, key, linearizable=True)
        return (obj.spec.data if obj else None), self.node.applied

    def _leader_only(self) -> None:
        if not self.node.is_leader:
            raise NotLeader(
                "not the leader",
                details={"leader": self.node.leader_address(), "leader_id": self.node.leader_id},
            )

    def add_routes(self) -> None:
        async def put(req: PutRequest, _: Peer) -> PutReply:
            self._leader_only()
            return PutReply(await self.put(req.key, req.value))

        async def get(req: GetRequest, _: Peer) -> GetReply:
            value, index = await self.get(req.key)
            return GetReply(value, index)

        async def status(_: Empty, __: Peer) -> StatusReply:
            s = self.node.status()
            return StatusReply(
                s.node_id,
                s.role.value,
                s.term,
                s.leader,
                s.commit,
                self.node.applied,
                s.first_index,
                sorted(s.membership.voters),
                sorted(s.membership.learners),
            )

        async def add_voter(req: MemberRequest, _: Peer) -> Empty:
            self._leader_only()
            await self.node.add_voter(req.node_id, req.address)
            return Empty()

        async def remove(req: MemberRequest, _: Peer) -> Empty:
            self._leader_only()
            await self.node.remove_member(req.node_id)
            return Empty()

        async def transfer(_: Empty, __: Peer) -> TransferReply:
            return TransferReply(await self.node.transfer_leadership())

        self.server.add_unary("/test/v1/put", PutRequest, put)
        self.server.add_unary("/test/v1/get", GetRequest, get)
        self.server.add_unary("/test/v1/status", Empty, status)
        self.server.add_unary("/test/v1/add_voter", MemberRequest, add_voter)
        self.server.add_unary("/test/v1/remove", MemberRequest, remove)
        self.server.add_unary("/test/v1/transfer", Empty, transfer)


def build(
    node_id: str,
    data_dir: str,
    cert_dir: str,
    cluster_id: str,
    *,
    bootstrap: list[Member] | None = None,
    snapshot_every: int = 10_000,
    fsync: bool = True,
    address: str = "",
    sealed: bool = False,
) -> RaftProcess:
    """Open the storage (bootstrapping a new cluster if asked and empty) and wire a member.

    ``sealed`` seals every record with the data keys kept in ``data_dir`` (made on first
    use, not locked), as a manager's raft directory is."""
    keys = load_keys(Path(data_dir)) if sealed else None
    storage = RaftStorage.open(data_dir, fsync=fsync, keys=keys)
    if bootstrap:
        recovered = storage.recover()
        if not recovered.entries and recovered.snapshot is None:
            hard_state, entries = RaftCore.bootstrap(bootstrap)
            storage.write(hard_state, entries)
            storage.sync()
        storage.close()
        storage = RaftStorage.open(data_dir, fsync=fsync, keys=keys)
    memory = MemoryStore()
    node = RaftNode(NodeConfig(node_id=node_id, snapshot_every=snapshot_every), storage, memory)
    creds = read_credentials(cert_dir)
    server = RpcServer(server_context(creds), cluster_id=cluster_id)
    transport = RaftTransport(
        node_id,
        cluster_id,
        client_context(creds),
        deliver=node.receive,
        unreachable=node.unreachable,
        address=address,
    )
    transport.register(server)
    proc = RaftProcess(node, Store(memory, RaftProposer(node)), server, transport)
    proc.add_routes()
    return proc


async def serve(proc: RaftProcess, host: str, port: int, *, announce: bool = True) -> None:
    """Serve until the node stops; `announce` prints "ready <port>" once listening."""
    bound = await proc.server.start(host, port)
    proc.node.attach(proc.transport)
    if announce:
        print(f"ready {bound}", flush=True)
    try:
        await proc.node.run()
    finally:
        await proc.transport.close()
        await proc.server.stop()


def _parse_members(text: str) -> list[Member]:
    members = []
    for part in text.split(","):
        node_id, _, address = part.partition("=")
        members.append(Member(node_id, address, True))
    return members


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmlite.testing.raftproc")
    parser.add_argument("--id", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--listen", required=True, help="host:port (port 0 picks one)")
    parser.add_argument("--certs", required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--bootstrap", default="", help="id=host:port,... of the first voters")
    parser.add_argument("--snapshot-every", type=int, default=10_000)
    parser.add_argument("--sealed", action="store_true", help="seal the raft data at rest")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    swl_log.setup(args.log_level)
    logging.getLogger("aiohttp").setLevel(logging.ERROR)
    host, _, port = args.listen.rpartition(":")
    bootstrap = _parse_members(args.bootstrap) if args.bootstrap else None

    async def run() -> None:
        proc = build(
            args.id,
            args.data,
            args.certs,
            args.cluster,
            bootstrap=bootstrap,
            snapshot_every=args.snapshot_every,
            address=args.listen,
            sealed=args.sealed,
        )
        loop = asyncio.get_running_loop()
        shutdown: set[asyncio.Task[None]] = set()

        def graceful() -> None:
            shutdown.add(loop.create_task(proc.node.shutdown()))

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, graceful)
        await serve(proc, host, int(port))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
