"""A deterministic simulator for `raft.core`: virtual time, a lossy network, crashes.

Owns the simulated world: nodes (a RaftCore, a "disk" that keeps only what was made
durable, a key-value state machine), a network that loses, duplicates, delays, reorders
and partitions messages, clients that write, compare-and-set and read keys, and the
checks run after every step: election safety, log matching, leader completeness, state
machine safety. At the end, `history` goes to the linearizability checker.

Everything random comes from one `random.Random(seed)`, so a seed replays the same trace.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import msgspec

from swarmlite.errors import SwarmliteError
from swarmlite.raft.core import CoreConfig, RaftCore, Ready, Role
from swarmlite.raft.entries import Entry, EntryKind, HardState, Member, Snapshot
from swarmlite.raft.messages import Message, decode, encode
from swarmlite.testing.linearizability import Operation


class InvariantViolation(AssertionError):
    pass


class _Command(msgspec.Struct, frozen=True, array_like=True):
    client: int
    op_id: int
    kind: str  # "write" | "cas"
    key: str
    value: int
    expected: int | None = None


_cmd_encoder = msgspec.msgpack.Encoder()
_cmd_decoder = msgspec.msgpack.Decoder(_Command)


class KVMachine:
    """The replicated state machine of the simulation: a dict of int values."""

    def __init__(self) -> None:
        self.data: dict[str, int] = {}
        self.applied = 0
        self.results: dict[tuple[int, int], bool] = {}  # (client, op_id) -> applied ok

    def apply(self, entry: Entry) -> None:
        self.applied = entry.index
        if entry.kind is not EntryKind.NORMAL:
            return
        cmd = _cmd_decoder.decode(entry.data)
        if cmd.kind == "write":
            self.data[cmd.key] = cmd.value
            ok = True
        else:
            ok = self.data.get(cmd.key) == cmd.expected
            if ok:
                self.data[cmd.key] = cmd.value
        self.results[(cmd.client, cmd.op_id)] = ok

    def snapshot(self) -> bytes:
        return _cmd_encoder.encode([self.data, sorted(self.results.items())])

    def restore(self, data: bytes, index: int) -> None:
        values, results = msgspec.msgpack.decode(data)
        self.data = dict(values)
        self.results = {(c, o): ok for (c, o), ok in results}
        self.applied = index


@dataclass
class _Disk:
    hard_state: HardState = field(default_factory=HardState)
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None

    def write(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            self.snapshot = ready.snapshot
            self.entries = [e for e in self.entries if e.index > ready.snapshot.meta.index]
            if self.entries and self.entries[0].index != ready.snapshot.meta.index + 1:
                self.entries = []
        if ready.hard_state is not None:
            self.hard_state = ready.hard_state
        if ready.entries:
            first = ready.entries[0].index
            base = self.snapshot.meta.index if self.snapshot else 0
            del self.entries[max(0, first - base - 1) :]
            self.entries.extend(ready.entries)


@dataclass
class SimNode:
    id: str
    core: RaftCore | None
    disk: _Disk
    machine: KVMachine
    up: bool = True


@dataclass
class _Op:
    """A client operation while the simulation runs; becomes an `Operation` at the end."""

    client: int
    op_id: int
    key: str
    kind: str
    value: int | None
    expected: int | None
    invoke: int  # simulation step numbers: no two events share one
    response: int | None = None
    result: int | None = None
    ok: bool | None = None

    def freeze(self) -> Operation:
        return Operation(
            self.client,
            self.key,
            self.kind,  # type: ignore[arg-type]
            self.value,
            self.expected,
            float(self.invoke),
            None if self.response is None else float(self.response),
            self.result,
            self.ok,
        )


@dataclass
class _Pending:
    op: _Op
    node: str
    index: int = 0  # for writes: the log index the proposal got
    term: int = 0
    ctx: int = 0  # for reads: the read-index context
    read_index: int = -1
    deadline: int = 0


@dataclass
class SimOptions:
    nodes: int = 3
    steps: int = 3000
    loss: float = 0.02
    duplicate: float = 0.01
    max_delay: int = 3  # ticks a message may wait
    crash_rate: float = 0.002
    partition_rate: float = 0.002
    compact_every: int = 40
    clients: int = 3
    keys: int = 3
    op_rate: float = 0.3
    op_timeout: int = 60
    max_append_bytes: int = 512
    membership_rate: float = 0.002  # the leader adds, promotes or removes a member
    transfer_rate: float = 0.001  # the leader hands leadership to another voter
    unsafe_commit_by_count: bool = False


class Simulation:
    def __init__(self, seed: int, options: SimOptions | None = None) -> None:
        self.seed = seed
        self.opt = options or SimOptions()
        self.rng = random.Random(seed)
        self.now = 0  # virtual ticks
        self.step_no = 0
        ids = [f"n{i + 1}" for i in range(self.opt.nodes)]
        members = [Member(i, f"sim:{i}", True) for i in ids]
        hs, entries = RaftCore.bootstrap(members)
        self.nodes: dict[str, SimNode] = {}
        for node_id in ids:
            disk = _Disk(hs, list(entries), None)
            self.nodes[node_id] = SimNode(node_id, None, disk, KVMachine())
            self._start(self.nodes[node_id])
        self._queue: list[tuple[int, int, bytes]] = []  # (deliver_at, seq, wire bytes)
        self._seq = 0
        self._cut: set[frozenset[str]] = set()
        self.leaders: dict[int, str] = {}
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        self._ops: list[_Op] = []
        self._checked_leaders: set[tuple[str, int]] = set()
        self._pending: dict[int, list[_Pending]] = {c: [] for c in range(self.opt.clients)}
        self._op_seq = 0
        self.trace: list[str] = []

    # -------------------------------------------------------------- the world

    def _config(self, node_id: str) -> CoreConfig:
        return CoreConfig(
            node_id=node_id,
            election_ticks=10,
            heartbeat_ticks=1,
            max_append_bytes=self.opt.max_append_bytes,
            max_inflight=4,
            unsafe_commit_by_count=self.opt.unsafe_commit_by_count,
        )

    def _start(self, node: SimNode) -> None:
        disk = node.disk
        node.core = RaftCore(
            self._config(node.id),
            hard_state=disk.hard_state,
            snapshot=disk.snapshot,
            entries=list(disk.entries),
            rng=random.Random(self.rng.random()),
        )
        node.machine = KVMachine()
        if disk.snapshot is not None:
            node.machine.restore(disk.snapshot.data, disk.snapshot.meta.index)
        node.up = True

    def _crash(self, node: SimNode) -> None:
        node.up = False
        node.core = None
        self.trace.append(f"{self.now} crash {node.id}")
        for pending in self._pending.values():
            for p in pending:
                if p.node == node.id:
                    p.deadline = self.now  # its outcome is now unknown

    def _send(self, messages: list[Message]) -> None:
        for m in messages:
            if self.rng.random() < self.opt.loss:
                continue
            copies = 2 if self.rng.random() < self.opt.duplicate else 1
            wire = encode(m)  # through the real codec, as on the network
            for _ in range(copies):
                self._seq += 1
                at = self.now + self.rng.randint(0, self.opt.max_delay)
                heapq.heappush(self._queue, (at, self._seq, wire))

    def _process(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        while core.has_ready():
            ready = core.ready()
            node.disk.write(ready)
            if ready.snapshot is not None:
                node.machine.restore(ready.snapshot.data, ready.snapshot.meta.index)
            self._send(ready.messages)
            for entry in ready.committed:
                self._record_commit(node, entry)
                node.machine.apply(entry)
            for rs in ready.reads:
                self._on_read_state(node, rs.ctx, rs.index)
            core.advance(ready)
            self._check_node(node)
        self._answer_clients(node)

    def _compact(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        applied = node.machine.applied
        if applied - core.first_index + 1 < self.opt.compact_every or applied <= 0:
            return
        if applied <= (core.snapshot.meta.index if core.snapshot else 0):
            return
        snapshot = core.compact(applied, node.machine.snapshot())
        node.disk.snapshot = snapshot
        node.disk.entries = [e for e in node.disk.entries if e.index > applied]

    # -------------------------------------------------------------- checks

    def _violation(self, what: str) -> InvariantViolation:
        tail = "\n".join(self.trace[-30:])
        return InvariantViolation(
            f"{what}\nSWARMLITE_SEED={self.seed} step={self.step_no} tick={self.now}\n{tail}"
        )

    def _record_commit(self, node: SimNode, entry: Entry) -> None:
        seen = self.committed.get(entry.index)
        if seen is None:
            self.committed[entry.index] = (entry.term, entry.data)
        elif seen != (entry.term, entry.data):
            raise self._violation(
                f"state machine safety: {node.id} applies index {entry.index} term {entry.term}"
                f", but term {seen[0]} was committed there"
            )

    def _check_node(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        if core.role is Role.LEADER:
            holder = self.leaders.setdefault(core.term, node.id)
            if holder != node.id:
                raise self._violation(
                    f"election safety: {holder} and {node.id} both lead term {core.term}"
                )
            if (node.id, core.term) not in self._checked_leaders:
                self._checked_leaders.add((node.id, core.term))
                # leader completeness: every entry committed so far is in the new leader's log
                for index, (term, _) in self.committed.items():
                    if index < core.first_index:
                        continue
                    if core.term_at(index) != term:
                        raise self._violation(
                            f"leader completeness: {node.id} leads term {core.term} without "
                            f"committed entry {index} (term {term})"
                        )

    def _check_log_matching(self) -> None:
        cores = [n.core for n in self.nodes.values() if n.core is not None]
        for i, a in enumerate(cores):
            for b in cores[i + 1 :]:
                top = min(a.last_index, b.last_index)
                low = max(a.first_index, b.first_index)
                matched = False
                for index in range(top, low - 1, -1):
                    ea, eb = a.entry(index), b.entry(index)
                    if ea is None or eb is None:
                        break
                    if matched and ea != eb:
                        raise self._violation(
                            f"log matching: {a.id} and {b.id} differ at {index} below a match"
                        )
                    if ea.term == eb.term:
                        if ea != eb:
                            raise self._violation(
                                f"log matching: {a.id} and {b.id} hold different entries "
                                f"at {index} in term {ea.term}"
                            )
                        matched = True

    # -------------------------------------------------------------- clients

    def _leader_guess(self) -> SimNode | None:
        leaders = [
            n for n in self.nodes.values() if n.core is not None and n.core.role is Role.LEADER
        ]
        if not leaders:
            return None
        return max(leaders, key=lambda n: n.core.term if n.core else 0)

    def _client_op(self, client: int) -> None:
        if self._pending[client]:
            return
        node = self._leader_guess()
        if node is None or node.core is None:
            return
        self._op_seq += 1
        key = f"k{self.rng.randrange(self.opt.keys)}"
        roll = self.rng.random()
        if roll < 0.4:
            try:
                ctx = node.core.read_index()
            except SwarmliteError:
                return
            op = _Op(client, self._op_seq, key, "read", None, None, self.step_no)
            pending = _Pending(op, node.id, ctx=ctx)
        else:
            kind = "write" if roll < 0.8 else "cas"
            expected = None
            if kind == "cas":
                expected = self.rng.choice([None, *range(max(1, self._op_seq - 5), self._op_seq)])
            cmd = _Command(client, self._op_seq, kind, key, self._op_seq, expected)
            try:
                index = node.core.propose(_cmd_encoder.encode(cmd))
            except SwarmliteError:
                return
            op = _Op(client, self._op_seq, key, kind, self._op_seq, expected, self.step_no)
            pending = _Pending(op, node.id, index=index, term=node.core.term)
        pending.deadline = self.now + self.opt.op_timeout
        self._pending[client].append(pending)
        self._ops.append(op)
        self._process(node)

    def _on_read_state(self, node: SimNode, ctx: int, index: int) -> None:
        for pending in self._pending.values():
            for p in pending:
                if p.node == node.id and p.op.kind == "read" and p.ctx == ctx:
                    p.read_index = index

    def _answer_clients(self, node: SimNode) -> None:
        core = node.core
        for client, pending in self._pending.items():
            for p in list(pending):
                if p.node != node.id or core is None:
                    continue
                op = p.op
                if op.kind == "read":
                    if p.read_index >= 0 and node.machine.applied >= p.read_index:
                        op.result = node.machine.data.get(op.key)
                        op.ok, op.response = True, self.step_no
                        pending.remove(p)
                    continue
                if node.machine.applied < p.index:
                    continue
                entry_term = core.term_at(p.index)
                op_id = op.op_id
                if (client, op_id) in node.machine.results and entry_term in (p.term, None):
                    op.ok = node.machine.results[(client, op_id)]
                    op.response = self.step_no
                    pending.remove(p)
                elif entry_term is not None and entry_term != p.term:
                    p.deadline = self.now  # another entry took its place: outcome unknown

    def _expire(self) -> None:
        for pending in self._pending.values():
            for p in list(pending):
                if p.deadline <= self.now:
                    pending.remove(p)  # leaves response None: unknown outcome

    # -------------------------------------------------------------- driving

    def step(self) -> None:
        self.step_no += 1
        roll = self.rng.random()
        up = [n for n in self.nodes.values() if n.up]
        if roll < self.opt.crash_rate:
            node = self.rng.choice(list(self.nodes.values()))
            if node.up and len(up) > 1:
                self._crash(node)
            elif not node.up:
                self._start(node)
                self.trace.append(f"{self.now} restart {node.id}")
                self._process(node)
            return
        if roll < self.opt.crash_rate + self.opt.partition_rate:
            self._repartition()
            return
        roll -= self.opt.crash_rate + self.opt.partition_rate
        if roll < self.opt.op_rate:
            self._client_op(self.rng.randrange(self.opt.clients))
            return
        roll -= self.opt.op_rate
        if roll < self.opt.membership_rate:
            self._change_membership()
            return
        roll -= self.opt.membership_rate
        if roll < self.opt.transfer_rate:
            self._transfer()
            return
        # Otherwise time passes: deliver what is due, or tick every live node.
        if self._queue and self._queue[0][0] <= self.now:
            _, _, wire = heapq.heappop(self._queue)
            self._deliver(decode(wire))
            return
        self.now += 1
        for node in self.nodes.values():
            if node.core is not None:
                node.core.tick()
                self._process(node)
                if self.rng.random() < 0.3:
                    self._compact(node)
        self._expire()
        if self.now % 5 == 0:
            self._check_log_matching()

    def _change_membership(self) -> None:
        leader = self._leader_guess()
        if leader is None or leader.core is None:
            return
        membership = leader.core.membership
        outside = sorted(set(self.nodes) - membership.ids)
        learners = sorted(membership.learners)
        change: Member | str
        if outside:
            node_id = self.rng.choice(outside)
            change = Member(node_id, f"sim:{node_id}", False)
        elif learners:
            node_id = self.rng.choice(learners)
            change = Member(node_id, f"sim:{node_id}", True)
        elif len(membership.voters) > 2:
            change = self.rng.choice(sorted(membership.voters))
        else:
            return
        try:
            leader.core.propose_membership(change)
        except SwarmliteError:
            return
        self.trace.append(f"{self.now} {leader.id} proposes membership change {change}")
        self._process(leader)

    def _transfer(self) -> None:
        leader = self._leader_guess()
        if leader is None or leader.core is None:
            return
        others = sorted(leader.core.membership.voters - {leader.id})
        if not others:
            return
        target = self.rng.choice(others)
        try:
            leader.core.transfer_leadership(target)
        except SwarmliteError:
            return
        self.trace.append(f"{self.now} {leader.id} transfers leadership to {target}")
        self._process(leader)

    def _deliver(self, m: Message) -> None:
        node = self.nodes.get(m.dst)
        if node is None or node.core is None:
            return
        if frozenset((m.src, m.dst)) in self._cut:
            return
        before = node.core.role, node.core.term
        node.core.step(m)
        after = node.core.role, node.core.term
        if before != after:
            self.trace.append(f"{self.now} {node.id} {after[0].value} term {after[1]}")
        self._process(node)

    def _repartition(self) -> None:
        ids = sorted(self.nodes)
        if self._cut and self.rng.random() < 0.5:
            self._cut = set()
            self.trace.append(f"{self.now} heal")
            return
        isolated = set(self.rng.sample(ids, self.rng.randint(1, (len(ids) - 1) // 2 + 1)))
        self._cut = {frozenset((a, b)) for a in isolated for b in ids if b not in isolated}
        self.trace.append(f"{self.now} partition {sorted(isolated)}")

    def heal(self) -> None:
        """End every fault: all nodes up, no partition, no loss; let the cluster settle."""
        self._cut = set()
        for node in self.nodes.values():
            if not node.up:
                self._start(node)
                self._process(node)
        self.opt.loss = self.opt.duplicate = 0.0
        self.opt.crash_rate = self.opt.partition_rate = 0.0
        self.opt.membership_rate = self.opt.transfer_rate = 0.0

    def history(self) -> list[Operation]:
        return [op.freeze() for op in self._ops]

    def run(self) -> None:
        for _ in range(self.opt.steps):
            self.step()
        self.heal()
        self.opt.op_rate = 0.0
        for _ in range(self.opt.steps // 3):
            self.step()
        self._check_log_matching()

    # -------------------------------------------------------------- scripted scenarios

    def connect_only(self, *groups: set[str]) -> None:
        """Let nodes talk only within their group (a node in no group is cut off)."""
        ids = sorted(self.nodes)
        group_of = {n: i for i, g in enumerate(groups) for n in g}
        self._cut = {
            frozenset((a, b))
            for a in ids
            for b in ids
            if a < b and (a not in group_of or group_of.get(a) != group_of.get(b))
        }

    def deliver_one(self) -> bool:
        """Deliver the next queued message at once, whatever its delay; False if none."""
        if not self._queue:
            return False
        _, _, wire = heapq.heappop(self._queue)
        self._deliver(decode(wire))
        return True

    def deliver_all(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.deliver_one():
                return

    def crash(self, node_id: str) -> None:
        self._crash(self.nodes[node_id])

    def restart(self, node_id: str) -> None:
        self._start(self.nodes[node_id])
        self._process(self.nodes[node_id])

    def campaign(self, node_id: str) -> None:
        """Start an election now, as a leadership transfer does (no pre-vote, no lease)."""
        core = self.nodes[node_id].core
        assert core is not None
        core.campaign(transfer=True)
        self._process(self.nodes[node_id])

    def propose(self, node_id: str, key: str, value: int) -> int:
        core = self.nodes[node_id].core
        assert core is not None
        self._op_seq += 1
        index = core.propose(_cmd_encoder.encode(_Command(0, self._op_seq, "write", key, value)))
        self._process(self.nodes[node_id])
        return index

    def core(self, node_id: str) -> RaftCore:
        core = self.nodes[node_id].core
        assert core is not None
        return core


def main(argv: list[str] | None = None) -> int:
    """Replay one seed: `python -m swarmlite.testing.raftsim --seed N [--nodes 5]`."""
    import argparse

    from swarmlite.testing.linearizability import check

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8000)
    args = parser.parse_args(argv)
    sim = Simulation(args.seed, SimOptions(nodes=args.nodes, steps=args.steps, clients=5))
    try:
        sim.run()
    except InvariantViolation as exc:
        print(exc)
        return 1
    result = check(sim.history())
    print("\n".join(sim.trace))
    print(f"committed={len(sim.committed)} operations={len(sim._ops)} linearizable={result.ok}")
    if not result.ok:
        print(result.explanation)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
