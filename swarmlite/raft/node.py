"""One Raft member at run time: drives the pure core with real time, disk and network.

Owns the event loop around `RaftCore`: ticks from the injected Clock, messages from the
transport, proposals and reads from callers; after every batch of inputs it persists the
Ready (one fsync for the whole batch: group commit), sends its messages, applies committed
entries to the state machine and answers the callers waiting on them. It does not own the
wire (``raft.transport``) nor the state machine's meaning (``store``).

Code outside ``raft/`` sees only its public face: role and leader, the membership
(``members``, ``voters``, ``member``, ``recently_active``), ``last_index``, proposals, reads
and membership changes, and what metrics read (``status``, ``applied``, ``leader_changes``,
the ``on_proposal`` hook). The core stays private to it.

Invariant: nothing leaves this node (no message, no answer to a caller) before what it
depends on is durable.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from swarmlite.clock import Clock, SystemClock
from swarmlite.errors import FailedPrecondition, NotLeader, SwarmliteError, Unavailable
from swarmlite.log import kv
from swarmlite.raft.core import CoreConfig, RaftCore, Ready, Role, Status
from swarmlite.raft.entries import Entry, EntryKind, Member, Membership
from swarmlite.raft.messages import Message
from swarmlite.raft.storage import RaftStorage

log = logging.getLogger(__name__)


class StateMachine(Protocol):
    def apply(self, index: int, data: bytes) -> object:
        """Apply a committed entry; the result goes back to whoever proposed it."""
        ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes, index: int) -> None: ...


class Transport(Protocol):
    def send(self, messages: list[Message]) -> None:
        """Queue messages for their peers; never blocks, may lose them."""
        ...

    def update_members(self, membership: Membership) -> None:
        """Where the peers are now (addresses come from the membership)."""
        ...


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    tick_seconds: float = 0.05
    election_ticks: int = 8  # a follower campaigns 0.4-0.8 s after the leader falls silent
    heartbeat_ticks: int = 1  # the leader is heard every 50 ms
    snapshot_every: int = 10_000  # applied entries between snapshots
    # ... or applied bytes, whichever comes first: a snapshot is taken once the log since
    # the last one holds this many bytes of entries, or as many as that snapshot had (so
    # a large state is not rewritten for every few MB of log). The log on disk stays within
    # about max(snapshot_bytes, state size) whatever the size of the entries.
    snapshot_bytes: int = 8 << 20
    max_append_bytes: int = 1 << 20
    max_inflight: int = 256
    propose_timeout: float = 10.0


@dataclass
class _Proposal:
    term: int
    future: asyncio.Future[object]


class RaftNode:
    def __init__(
        self,
        config: NodeConfig,
        storage: RaftStorage,
        machine: StateMachine,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = config
        self.id = config.node_id
        self._storage = storage
        self._machine = machine
        self._clock = clock or SystemClock()
        recovered = storage.recover()
        if recovered.truncated_bytes:
            log.warning("cut a torn log tail %s", kv(node=self.id, bytes=recovered.truncated_bytes))
        self._core = RaftCore(
            CoreConfig(
                node_id=config.node_id,
                election_ticks=config.election_ticks,
                heartbeat_ticks=config.heartbeat_ticks,
                max_append_bytes=config.max_append_bytes,
                max_inflight=config.max_inflight,
            ),
            hard_state=recovered.hard_state,
            snapshot=recovered.snapshot,
            entries=recovered.entries,
            rng=rng,
        )
        self.applied = 0
        if recovered.snapshot is not None:
            machine.restore(recovered.snapshot.data, recovered.snapshot.meta.index)
            self.applied = recovered.snapshot.meta.index
        self._last_snapshot = self.applied
        self._snapshot_size = len(recovered.snapshot.data) if recovered.snapshot else 0
        # Bytes of entries in the log since the last snapshot: what a snapshot would free.
        self._log_bytes = sum(len(e.data) for e in recovered.entries if e.index > self.applied)
        self._transport: Transport | None = None
        self._inbox: list[Message] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._proposals: dict[int, _Proposal] = {}
        self._reads: dict[int, asyncio.Future[int]] = {}  # read ctx -> future of its index
        self._read_waiters: list[tuple[int, asyncio.Future[None]]] = []  # (index, applied?)
        self._actions: list[Callable[[], None]] = []
        self._role = self._core.role
        self._leader: str | None = None
        self._watchers: list[asyncio.Future[None]] = []
        self._members = self._core.membership
        self.on_leader_change: Callable[[str | None], None] | None = None
        # For metrics: how often a new leader was seen, and each committed proposal's
        # latency in seconds (the hook is None unless metrics are on).
        self.leader_changes = 0
        self.on_proposal: Callable[[float], None] | None = None

    # ------------------------------------------------------------------ life cycle

    def attach(self, transport: Transport) -> None:
        self._transport = transport
        transport.update_members(self._core.membership)

    async def run(self) -> None:
        """Run until stop(); a failed disk write stops the node (it must not go on)."""
        assert self._transport is not None, "attach a transport first"
        if self._core.membership.voters == {self.id}:
            self._core.campaign()  # a single-manager cluster need not wait a timeout
        async with asyncio.TaskGroup() as tasks:
            ticker = tasks.create_task(self._tick_loop())
            failure: SwarmliteError = Unavailable("raft node stopped")
            try:
                await self._main_loop()
            except SwarmliteError as exc:
                failure = exc  # the writes waiting are told why (a full disk, its path)
                raise
            finally:
                ticker.cancel()
                self._fail_all(failure)
                self._storage.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def shutdown(self, *, timeout: float = 2.0) -> None:
        """Stop gracefully: a leader first hands leadership to the most up-to-date voter,
        so that the cluster does not wait an election timeout for a new one."""
        if self.is_leader and len(self._core.membership.voters) > 1:
            try:
                leader = await self.transfer_leadership(timeout=timeout)
                log.info("handed leadership over before stopping %s", kv(node=self.id, to=leader))
            except (SwarmliteError, TimeoutError) as exc:
                log.warning("leadership transfer before stopping failed %s", kv(error=repr(exc)))
        self.stop()

    async def _tick_loop(self) -> None:
        while not self._stopping:
            await self._clock.sleep(self.cfg.tick_seconds)
            self._actions.append(self._core.tick)
            self._wake.set()

    async def _main_loop(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            inbox, self._inbox = self._inbox, []
            actions, self._actions = self._actions, []
            for action in actions:
                try:
                    action()
                except SwarmliteError as exc:
                    log.warning("raft action refused %s", kv(node=self.id, error=exc.message))
            for m in inbox:
                self._core.step(m)
            while self._core.has_ready():
                await self._handle(self._core.ready())
            await self._after_round()

    async def _handle(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            await asyncio.to_thread(self._storage.save_snapshot, ready.snapshot)
            self._machine.restore(ready.snapshot.data, ready.snapshot.meta.index)
            self.applied = self._last_snapshot = ready.snapshot.meta.index
            self._snapshot_size, self._log_bytes = len(ready.snapshot.data), 0
        if ready.hard_state is not None or ready.entries:
            self._storage.write(ready.hard_state, ready.entries)
            await asyncio.to_thread(self._storage.sync)
        if ready.messages:
            assert self._transport is not None
            self._transport.send(ready.messages)
        for entry in ready.committed:
            self._apply(entry)
        for rs in ready.reads:
            future = self._reads.pop(rs.ctx, None)
            if future is not None and not future.done():
                future.set_result(rs.index)
        self._core.advance(ready)

    def _apply(self, entry: Entry) -> None:
        result: object = None
        if entry.kind is EntryKind.NORMAL:
            result = self._machine.apply(entry.index, entry.data)
        self.applied = entry.index
        self._log_bytes += len(entry.data)
        proposal = self._proposals.pop(entry.index, None)
        if proposal is not None and not proposal.future.done():
            if proposal.term == entry.term:
                proposal.future.set_result(result)
            else:
                proposal.future.set_exception(
                    Unavailable("leadership changed before the write committed; it was not applied")
                )

    async def _after_round(self) -> None:
        # Answer reads whose index is now applied.
        if self._read_waiters:
            waiting = []
            for index, future in self._read_waiters:
                if self.applied >= index:
                    if not future.done():
                        future.set_result(None)
                else:
                    waiting.append((index, future))
            self._read_waiters = waiting
        # Observe role, leader and membership changes.
        role, leader = self._core.role, self._core.leader
        if role is not self._role or leader != self._leader:
            if self._role is Role.LEADER and role is not Role.LEADER:
                self._fail_reads(Unavailable("lost leadership before the read was confirmed"))
            log.info(
                "raft state %s",
                kv(node=self.id, role=role.value, term=self._core.term, leader=leader),
            )
            if leader is not None and leader != self._leader:
                self.leader_changes += 1
            self._role, self._leader = role, leader
            if self.on_leader_change is not None:
                self.on_leader_change(leader)
        if self._core.membership != self._members:
            self._members = self._core.membership
            if self._transport is not None:
                self._transport.update_members(self._members)
        if self._snapshot_due():
            log_bytes = self._log_bytes
            snapshot = self._core.compact(self.applied, self._machine.snapshot())
            await asyncio.to_thread(self._storage.save_snapshot, snapshot)
            self._last_snapshot = self.applied
            self._snapshot_size, self._log_bytes = len(snapshot.data), 0
            log.info(
                "snapshot taken %s",
                kv(node=self.id, index=self.applied, log_bytes=log_bytes, size=self._snapshot_size),
            )
        watchers, self._watchers = self._watchers, []
        for future in watchers:
            if not future.done():
                future.set_result(None)

    def _snapshot_due(self) -> bool:
        """Whether the log since the last snapshot is long enough, by entries or bytes."""
        if self.applied <= self._last_snapshot:
            return False
        if self.applied - self._last_snapshot >= self.cfg.snapshot_every:
            return True
        return self._log_bytes >= max(self.cfg.snapshot_bytes, self._snapshot_size)

    def _fail_reads(self, error: SwarmliteError) -> None:
        for future in self._reads.values():
            if not future.done():
                future.set_exception(error)
        self._reads.clear()

    def _fail_all(self, error: SwarmliteError) -> None:
        self._fail_reads(error)
        for proposal in self._proposals.values():
            if not proposal.future.done():
                proposal.future.set_exception(error)
        self._proposals.clear()
        for _, future in self._read_waiters:
            if not future.done():
                future.set_exception(error)
        self._read_waiters.clear()

    # ------------------------------------------------------------------ inputs

    def receive(self, messages: list[Message]) -> None:
        """From the transport: messages from peers."""
        self._inbox.extend(messages)
        self._wake.set()

    def unreachable(self, peer: str) -> None:
        """From the transport: messages to `peer` may have been lost."""
        self._actions.append(lambda: self._core.report_unreachable(peer))
        self._wake.set()

    def scale_election_timeout(self, factor: float) -> None:
        """Wait ``factor`` times the configured election timeout (at least 1x) before
        campaigning, and before a leader steps down for not hearing from a quorum."""
        ticks = max(self.cfg.election_ticks, round(self.cfg.election_ticks * factor))
        self._actions.append(lambda: self._core.set_election_ticks(ticks))
        self._wake.set()

    # ------------------------------------------------------------------ the API

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def is_leader(self) -> bool:
        return self._core.role is Role.LEADER

    @property
    def leader_id(self) -> str | None:
        return self._core.leader

    def leader_address(self) -> str | None:
        return self._core.leader_address()

    def status(self) -> Status:
        return self._core.status()

    @property
    def last_index(self) -> int:
        """The index of the last entry in this node's log (0: it holds no raft state yet)."""
        return self._core.last_index

    def members(self) -> tuple[Member, ...]:
        """The membership in force here: voters and learners, with their addresses."""
        return self._core.membership.members

    def voters(self) -> frozenset[str]:
        """The ids of the voting members."""
        return self._core.membership.voters

    def member(self, node_id: str) -> Member | None:
        """`node_id`'s membership (voter or learner), or None if it is not a member."""
        return self._core.membership.get(node_id)

    def is_voter(self) -> bool:
        """Whether this node is a voting member."""
        return self._core.is_voter()

    def recently_active(self, node_id: str) -> bool:
        """Leader only: whether `node_id` answered within about an election timeout (False
        on a follower, which does not track its peers)."""
        return self._core.recently_active(node_id)

    async def propose(self, data: bytes, *, timeout: float | None = None) -> object:
        """Replicate `data`; returns the state machine's result once applied here."""
        if self._stopping:
            raise Unavailable("raft node is stopping")
        started = self._clock.monotonic()
        index = self._core.propose(data)  # raises NotLeader / Unavailable
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._proposals[index] = _Proposal(self._core.term, future)
        self._wake.set()
        try:
            result = await asyncio.wait_for(future, timeout or self.cfg.propose_timeout)
            if self.on_proposal is not None:
                self.on_proposal(self._clock.monotonic() - started)
            return result
        except TimeoutError as exc:
            self._proposals.pop(index, None)
            raise Unavailable(
                "the write did not commit in time; it may still be applied",
                details={"index": index},
            ) from exc

    async def read_barrier(self, *, timeout: float | None = None) -> None:
        """Return once this node has applied everything committed before the call."""
        if not self.is_leader:
            raise NotLeader(
                "linearizable reads are served by the leader",
                details={"leader": self.leader_address(), "leader_id": self.leader_id},
            )
        loop = asyncio.get_running_loop()
        index_future: asyncio.Future[int] = loop.create_future()
        ctx = self._core.read_index()
        self._reads[ctx] = index_future
        self._wake.set()
        async with asyncio.timeout(timeout or self.cfg.propose_timeout):
            index = await index_future
            await self.wait_applied(index)

    async def wait_applied(self, index: int) -> None:
        if self.applied >= index:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._read_waiters.append((index, future))
        await future

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until `predicate()` holds after some round of the loop."""
        async with asyncio.timeout(timeout):
            while not predicate():
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._watchers.append(future)
                await future

    async def change_membership(self, change: Member | str, *, timeout: float = 10.0) -> None:
        """One membership change, retried while another one is still in flight.

        A leader does not remove or demote itself: it hands leadership over first and
        answers NotLeader, so that the caller asks the new leader."""
        target = change if isinstance(change, str) else change.id
        leaves = isinstance(change, str) or not change.voter
        if target == self.id and leaves and self.is_leader:
            await self.transfer_leadership(timeout=timeout)
            raise NotLeader(
                "leadership moved away first; ask the new leader to make this change",
                details={"leader": self.leader_address(), "leader_id": self.leader_id},
            )
        async with asyncio.timeout(timeout):
            while True:
                try:
                    index = self._core.propose_membership(change)
                    break
                except Unavailable as exc:
                    if isinstance(exc, NotLeader):
                        raise
                    await self._clock.sleep(self.cfg.tick_seconds)
            # Like a write, the change counts only if its own entry commits at that index.
            future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            self._proposals[index] = _Proposal(self._core.term, future)
            self._wake.set()
            await future

    async def add_voter(self, node_id: str, address: str, *, timeout: float = 30.0) -> None:
        """Add a learner, wait until it has caught up, then make it a voter."""
        async with asyncio.timeout(timeout):
            member = self._core.membership.get(node_id)
            if member is None or member.address != address:
                await self.change_membership(Member(node_id, address, False), timeout=timeout)

            def caught_up() -> bool:
                progress = self._core.status().progress.get(node_id)
                return progress is not None and progress[0] >= self._core.commit

            await self.wait_for(caught_up, timeout)
            await self.change_membership(Member(node_id, address, True), timeout=timeout)

    async def remove_member(self, node_id: str, *, timeout: float = 10.0) -> None:
        await self.change_membership(node_id, timeout=timeout)

    async def transfer_leadership(
        self, target: str | None = None, *, timeout: float = 5.0
    ) -> str | None:
        """Hand leadership to `target` (default: the most up-to-date voter)."""
        if not self.is_leader:
            raise NotLeader("not the leader", details={"leader": self.leader_address()})
        if target is None:
            progress = self._core.status().progress
            voters = self._core.membership.voters - {self.id}
            if not voters:
                raise FailedPrecondition("no other voter to hand leadership to")
            target = max(voters, key=lambda v: (progress.get(v, (0, 0))[0], v))
        self._actions.append(lambda: self._core.transfer_leadership(target))
        self._wake.set()
        await self.wait_for(lambda: not self.is_leader and self.leader_id is not None, timeout)
        return self.leader_id
