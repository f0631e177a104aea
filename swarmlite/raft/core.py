"""Raft consensus as a pure state machine: messages and ticks in, a `Ready` out.

Owns the rules of Raft: elections (with pre-vote and check-quorum), log replication
(pipelined and batched), the commit rule, snapshots sent to followers that fell behind,
single-server membership changes, leadership transfer and ReadIndex reads. It does no
I/O, has no asyncio and reads no clock: the caller (``raft.node``) feeds it ``tick()``,
``step(message)`` and proposals, then takes ``ready()`` and must, in this order, make
``hard_state``, ``entries`` and ``snapshot`` durable, send ``messages``, apply
``committed``, and call ``advance(ready)``.

Invariants kept here (and checked by the simulator after every step):
- at most one leader per term; a node votes at most once per term (the vote is durable
  before the reply leaves, because every message leaves after the Ready is persisted);
- a leader commits only entries of its own term by counting replicas; earlier entries
  are committed indirectly (Raft §5.4.2);
- a membership change takes effect when appended, and a leader starts a new one only
  after the previous one and an entry of its own term are committed.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections import deque
from dataclasses import dataclass, field

from swarmlite.errors import FailedPrecondition, InvalidArgument, NotLeader, Unavailable
from swarmlite.raft.entries import (
    Entry,
    EntryKind,
    HardState,
    Member,
    Membership,
    Snapshot,
    SnapshotMeta,
    decode_membership,
    encode_membership,
)
from swarmlite.raft.messages import (
    Append,
    AppendResp,
    Heartbeat,
    HeartbeatResp,
    InstallSnapshot,
    Message,
    PreVote,
    PreVoteResp,
    TimeoutNow,
    Vote,
    VoteResp,
)

# Bytes counted per entry on top of its data when sizing an Append.
_ENTRY_OVERHEAD = 16


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class _Flow(enum.Enum):
    PROBE = 0  # one Append at a time until the follower's log position is found
    REPLICATE = 1  # Appends streamed ahead of their acknowledgements
    SNAPSHOT = 2  # an InstallSnapshot is on its way


@dataclass(frozen=True)
class CoreConfig:
    node_id: str
    election_ticks: int = 10  # a follower campaigns after a random 1x-2x this many silent ticks
    heartbeat_ticks: int = 1
    max_append_bytes: int = 1 << 20
    max_inflight: int = 256  # Appends in flight per follower while replicating
    check_quorum: bool = True
    pre_vote: bool = True
    # Test-only: commit entries of earlier terms by counting replicas, the rule Raft §5.4.2
    # forbids. The simulator must catch it; nothing else may set it.
    unsafe_commit_by_count: bool = False


@dataclass(frozen=True)
class ReadState:
    """A linearizable read may be served once the state machine has applied `index`."""

    ctx: int
    index: int


@dataclass
class Ready:
    hard_state: HardState | None
    entries: list[Entry]  # may start at or below the last index: replace from there
    snapshot: Snapshot | None
    messages: list[Message]
    committed: list[Entry]
    reads: list[ReadState]

    def __bool__(self) -> bool:
        return bool(
            self.hard_state
            or self.entries
            or self.snapshot
            or self.messages
            or self.committed
            or self.reads
        )


@dataclass
class _Progress:
    match: int = 0
    next: int = 1
    flow: _Flow = _Flow.PROBE
    probe_sent: bool = False
    inflight: deque[int] = field(default_factory=deque)
    recent_active: bool = False
    was_active: bool = False  # recent_active of the previous check-quorum period
    read_ack: int = 0  # highest read ctx this peer has confirmed
    stalled_beats: int = 0  # heartbeats without progress of `match` while behind
    last_match: int = 0
    snapshot_ticks: int = 0


@dataclass(frozen=True)
class Status:
    """What an operator (or a test) may want to see of this node."""

    node_id: str
    role: Role
    term: int
    leader: str | None
    commit: int
    last_index: int
    first_index: int
    membership: Membership
    progress: dict[str, tuple[int, int]]  # peer -> (match, next); leader only


class RaftCore:
    def __init__(
        self,
        config: CoreConfig,
        *,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: list[Entry] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = config
        self.id = config.node_id
        self._rng = rng or random.Random()
        hs = hard_state or HardState()
        self.term = hs.term
        self.vote: str | None = hs.vote
        self.role = Role.FOLLOWER
        self.leader: str | None = None

        self._snapshot = snapshot
        self._offset = snapshot.meta.index if snapshot else 0  # index before entries[0]
        self._offset_term = snapshot.meta.term if snapshot else 0
        self._base_membership = snapshot.meta.membership if snapshot else Membership()
        self._entries: list[Entry] = list(entries or [])
        if self._entries and self._entries[0].index != self._offset + 1:
            raise InvalidArgument(
                f"raft log starts at {self._entries[0].index}, expected {self._offset + 1}"
            )
        self._configs: list[tuple[int, Membership]] = [
            (e.index, decode_membership(e.data))
            for e in self._entries
            if e.kind is EntryKind.CONFIG
        ]
        self.commit = self._offset
        self._applied_handed = self._offset  # committed entries handed out by ready()
        self._stable = self.last_index  # entries known durable
        self._unstable_from = self.last_index + 1
        self._pending_snapshot: Snapshot | None = None
        self._hs_handed = HardState(self.term, self.vote)
        self._msgs: list[Message] = []

        self._elapsed = 0
        self._heartbeat_elapsed = 0
        self._timeout = self._random_timeout()
        self._votes: dict[str, bool] = {}
        self._progress: dict[str, _Progress] = {}
        self._pending_conf_index = 0
        self._transferee: str | None = None
        self._transfer_elapsed = 0
        self._need_flush = False

        self._read_seq = 0
        self._reads_waiting: list[int] = []  # ctxs waiting for an entry of this term to commit
        self._reads_pending: deque[tuple[int, int]] = deque()  # (ctx, index) waiting for quorum
        self._reads_ready: list[ReadState] = []
        self._read_broadcast = 0  # ctx to confirm in the next heartbeat round (0: none)

    # ------------------------------------------------------------------ queries

    @property
    def last_index(self) -> int:
        return self._offset + len(self._entries)

    @property
    def first_index(self) -> int:
        return self._offset + 1

    @property
    def membership(self) -> Membership:
        return self._configs[-1][1] if self._configs else self._base_membership

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def term_at(self, index: int) -> int | None:
        if index == self._offset:
            return self._offset_term
        if index < self._offset or index > self.last_index:
            return None
        return self._entries[index - self._offset - 1].term

    def entry(self, index: int) -> Entry | None:
        if index <= self._offset or index > self.last_index:
            return None
        return self._entries[index - self._offset - 1]

    def status(self) -> Status:
        return Status(
            node_id=self.id,
            role=self.role,
            term=self.term,
            leader=self.leader,
            commit=self.commit,
            last_index=self.last_index,
            first_index=self.first_index,
            membership=self.membership,
            progress={p: (pr.match, pr.next) for p, pr in self._progress.items()},
        )

    def recently_active(self, peer: str) -> bool:
        """Leader only: whether `peer` answered within the last election timeout or so."""
        pr = self._progress.get(peer)
        return pr is not None and (pr.recent_active or pr.was_active)

    def is_voter(self) -> bool:
        return self.id in self.membership.voters

    def leader_address(self) -> str | None:
        member = self.membership.get(self.leader) if self.leader else None
        return member.address if member else None

    # ------------------------------------------------------------------ inputs

    @staticmethod
    def bootstrap(members: list[Member]) -> tuple[HardState, list[Entry]]:
        """The durable state a new cluster starts from: one configuration entry."""
        membership = Membership(tuple(sorted(members, key=lambda m: m.id)))
        return HardState(term=1), [Entry(1, 1, EntryKind.CONFIG, encode_membership(membership))]

    def tick(self) -> None:
        if self.role is Role.LEADER:
            self._tick_leader()
            return
        self._elapsed += 1
        if self._elapsed >= self._timeout and self.is_voter():
            self._elapsed = 0
            self.campaign()

    def campaign(self, *, transfer: bool = False) -> None:
        """Start an election (after a pre-vote round unless this is a transfer)."""
        if not self.is_voter() or self.role is Role.LEADER:
            return
        if self.cfg.pre_vote and not transfer:
            self._become(Role.PRE_CANDIDATE, self.term, None)
            self._request_votes(pre=True, transfer=False)
        else:
            self._become(Role.CANDIDATE, self.term + 1, None)
            self.vote = self.id
            self._request_votes(pre=False, transfer=transfer)

    def propose(self, data: bytes) -> int:
        """Append `data` to the log; returns its index. Raises NotLeader/Unavailable."""
        self._check_can_propose()
        return self._append_local(EntryKind.NORMAL, data)

    def propose_membership(self, change: Member | str) -> int:
        """Add or change one member (a Member), or remove one (its id). Returns the index."""
        self._check_can_propose()
        if self._pending_conf_index > self.commit:
            raise Unavailable(
                "a membership change is already in progress",
                hint="retry once it has committed",
            )
        if self.term_at(self.commit) != self.term:
            raise Unavailable("the new leader has not committed an entry of its term yet")
        current = self.membership
        if isinstance(change, str):
            if current.get(change) is None:
                raise FailedPrecondition(f"node {change} is not a member")
            new = current.without(change)
        else:
            new = current.with_member(change)
        if not new.voters:
            raise FailedPrecondition("the change would leave the cluster without voters")
        index = self._append_local(EntryKind.CONFIG, encode_membership(new))
        self._pending_conf_index = index
        return index

    def transfer_leadership(self, target: str) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader("not the leader", details={"leader": self.leader_address()})
        if target == self.id:
            return
        if target not in self.membership.voters:
            raise FailedPrecondition(f"node {target} is not a voter")
        self._transferee = target
        self._transfer_elapsed = 0
        if self._progress[target].match == self.last_index:
            self._send(TimeoutNow(self.term, self.id, target))
        else:
            self._send_append(target)

    def read_index(self) -> int:
        """Ask for a linearizable read; its ReadState comes out of a later Ready."""
        if self.role is not Role.LEADER:
            raise NotLeader("not the leader", details={"leader": self.leader_address()})
        self._read_seq += 1
        ctx = self._read_seq
        if self.term_at(self.commit) != self.term:
            self._reads_waiting.append(ctx)
        else:
            self._start_read(ctx)
        return ctx

    def report_unreachable(self, peer: str) -> None:
        """The transport lost its connection to `peer`: what was in flight may be lost."""
        pr = self._progress.get(peer)
        if pr is not None and pr.flow is _Flow.REPLICATE:
            self._to_probe(pr)

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Replace the log up to `index` (already applied) with a snapshot of the state."""
        if index > self._applied_handed or index > self._stable:
            raise InvalidArgument(f"cannot compact to {index}: not applied and durable yet")
        if index <= self._offset:
            raise InvalidArgument(f"log already compacted to {self._offset}")
        term = self.term_at(index)
        assert term is not None
        membership = self._membership_at(index)
        snapshot = Snapshot(SnapshotMeta(index, term, membership), data)
        del self._entries[: index - self._offset]
        self._configs = [(i, m) for i, m in self._configs if i > index]
        self._base_membership = membership
        self._offset, self._offset_term = index, term
        self._snapshot = snapshot
        return snapshot

    def step(self, m: Message) -> None:
        if m.dst != self.id:
            return
        if m.term > self.term:
            if isinstance(m, PreVote) or (isinstance(m, PreVoteResp) and m.granted):
                pass  # a prospective term: nobody's term changes in a pre-vote
            elif isinstance(m, Vote) and self._in_lease() and not m.transfer:
                return  # a leader was heard from recently: ignore the disruptive vote
            else:
                leader = m.src if isinstance(m, Append | Heartbeat | InstallSnapshot) else None
                self._become(Role.FOLLOWER, m.term, leader)
        elif m.term < self.term:
            if isinstance(m, Append | Heartbeat):
                # Tell a stale leader that a newer term exists (it would stay stuck otherwise).
                self._send(HeartbeatResp(self.term, self.id, m.src))
            elif isinstance(m, PreVote):
                self._send(PreVoteResp(self.term, self.id, m.src, False))
            return

        if isinstance(m, PreVote | Vote):
            self._on_vote_request(m)
        elif isinstance(m, PreVoteResp | VoteResp):
            self._on_vote_response(m)
        elif isinstance(m, Append):
            self._on_append(m)
        elif isinstance(m, Heartbeat):
            self._on_heartbeat(m)
        elif isinstance(m, InstallSnapshot):
            self._on_install_snapshot(m)
        elif isinstance(m, AppendResp):
            self._on_append_resp(m)
        elif isinstance(m, HeartbeatResp):
            self._on_heartbeat_resp(m)
        elif self.role is not Role.LEADER and self.is_voter():  # TimeoutNow
            self.campaign(transfer=True)

    # ------------------------------------------------------------------ output

    def has_ready(self) -> bool:
        return bool(
            self._msgs
            or self._need_flush
            or self._read_broadcast
            or self._reads_ready
            or self._pending_snapshot
            or self._unstable_from <= self.last_index
            or HardState(self.term, self.vote) != self._hs_handed
            or self._applied_handed < min(self.commit, self.last_index)
        )

    def ready(self) -> Ready:
        if self.role is Role.LEADER:
            if self._need_flush:
                for peer in self._progress:
                    self._send_append(peer)
            if self._read_broadcast:
                self._broadcast_heartbeat(self._read_broadcast)
        self._need_flush = False
        self._read_broadcast = 0
        hs = HardState(self.term, self.vote)
        hard_state = hs if hs != self._hs_handed else None
        self._hs_handed = hs
        start = max(self._unstable_from, self.first_index)
        entries = self._entries[start - self._offset - 1 :] if start <= self.last_index else []
        self._unstable_from = self.last_index + 1
        upto = min(self.commit, self.last_index)
        committed: list[Entry] = []
        if self._applied_handed < upto:
            lo = self._applied_handed - self._offset
            committed = self._entries[lo : upto - self._offset]
            self._applied_handed = upto
        snapshot, self._pending_snapshot = self._pending_snapshot, None
        msgs, self._msgs = self._msgs, []
        reads, self._reads_ready = self._reads_ready, []
        return Ready(hard_state, entries, snapshot, msgs, committed, reads)

    def advance(self, ready: Ready) -> None:
        """The Ready was persisted, sent and applied."""
        if ready.snapshot is not None:
            self._stable = max(self._stable, ready.snapshot.meta.index)
        if ready.entries:
            self._stable = ready.entries[-1].index
        self._stable = min(self._stable, self.last_index)
        if self.role is Role.LEADER and self._maybe_commit():
            self._need_flush = True

    # ------------------------------------------------------------------ roles

    def set_election_ticks(self, ticks: int) -> None:
        """Campaign (and, leading, check the quorum) after ``ticks`` silent ticks from now
        on (a random 1x-2x of them: drawn again now)."""
        self.cfg = dataclasses.replace(self.cfg, election_ticks=max(1, ticks))
        self._timeout = self._random_timeout()

    def _random_timeout(self) -> int:
        n = self.cfg.election_ticks
        return self._rng.randint(n, 2 * n - 1)

    def _become(self, role: Role, term: int, leader: str | None) -> None:
        was_leader = self.role is Role.LEADER
        if term != self.term:
            self.term = term
            self.vote = None
        self.role = role
        self.leader = leader
        self._elapsed = 0
        self._heartbeat_elapsed = 0
        self._timeout = self._random_timeout()
        self._votes = {}
        self._transferee = None
        if was_leader and role is not Role.LEADER:
            self._progress = {}
            self._reads_waiting.clear()
            self._reads_pending.clear()

    def _become_leader(self) -> None:
        self._become(Role.LEADER, self.term, self.id)
        last = self.last_index
        self._progress = {
            peer: _Progress(next=last + 1) for peer in self.membership.ids if peer != self.id
        }
        self._pending_conf_index = last
        self._append_local(EntryKind.NOOP, b"")

    def _in_lease(self) -> bool:
        return (
            self.cfg.check_quorum
            and self.leader is not None
            and self.role is Role.FOLLOWER
            and self._elapsed < self.cfg.election_ticks
        )

    def _request_votes(self, *, pre: bool, transfer: bool) -> None:
        self._votes = {self.id: True}
        if self._tally() is True:
            self._won(pre)
            return
        term = self.term + 1 if pre else self.term
        last_term = self.term_at(self.last_index) or 0
        for peer in sorted(self.membership.voters - {self.id}):
            if pre:
                self._send(PreVote(term, self.id, peer, self.last_index, last_term))
            else:
                self._send(Vote(term, self.id, peer, self.last_index, last_term, transfer))

    def _tally(self) -> bool | None:
        voters = self.membership.voters
        quorum = len(voters) // 2 + 1
        yes = sum(1 for v, granted in self._votes.items() if granted and v in voters)
        no = sum(1 for v, granted in self._votes.items() if not granted and v in voters)
        if yes >= quorum:
            return True
        if no >= quorum:
            return False
        return None

    def _won(self, pre: bool) -> None:
        if pre:
            self._become(Role.CANDIDATE, self.term + 1, None)
            self.vote = self.id
            self._request_votes(pre=False, transfer=False)
        else:
            self._become_leader()

    def _log_ok(self, last_index: int, last_term: int) -> bool:
        my_last_term = self.term_at(self.last_index) or 0
        return last_term > my_last_term or (
            last_term == my_last_term and last_index >= self.last_index
        )

    def _on_vote_request(self, m: PreVote | Vote) -> None:
        if isinstance(m, PreVote):
            granted = (
                m.term > self.term
                and not self._in_lease()
                and self.role is not Role.LEADER
                and self._log_ok(m.last_index, m.last_term)
            )
            self._send(PreVoteResp(m.term if granted else self.term, self.id, m.src, granted))
            return
        granted = (
            self.vote in (None, m.src)
            and self.role is Role.FOLLOWER
            and self._log_ok(m.last_index, m.last_term)
        )
        if granted:
            self.vote = m.src
            self._elapsed = 0
        self._send(VoteResp(self.term, self.id, m.src, granted))

    def _on_vote_response(self, m: PreVoteResp | VoteResp) -> None:
        pre = isinstance(m, PreVoteResp)
        expected = Role.PRE_CANDIDATE if pre else Role.CANDIDATE
        if self.role is not expected:
            return
        self._votes[m.src] = m.granted
        result = self._tally()
        if result is True:
            self._won(pre)
        elif result is False:
            self._become(Role.FOLLOWER, self.term, None)

    # ------------------------------------------------------------------ follower side

    def _on_append(self, m: Append) -> None:
        self._follow(m.src)
        if m.prev_index < self.commit:
            self._send(
                AppendResp(self.term, self.id, m.src, True, self.commit, self.last_index, m.ctx)
            )
            return
        if self.term_at(m.prev_index) != m.prev_term:
            hint = min(self.last_index, m.prev_index - 1)
            self._send(AppendResp(self.term, self.id, m.src, False, m.prev_index, hint, m.ctx))
            return
        last_new = m.prev_index + len(m.entries)
        for i, e in enumerate(m.entries):
            if self.term_at(e.index) != e.term:
                self._append_entries(m.entries[i:])
                break
        if m.commit > self.commit:
            self.commit = max(self.commit, min(m.commit, last_new))
        self._send(AppendResp(self.term, self.id, m.src, True, last_new, self.last_index, m.ctx))

    def _on_heartbeat(self, m: Heartbeat) -> None:
        self._follow(m.src)
        if m.commit > self.commit:
            self.commit = min(m.commit, self.last_index)
        self._send(HeartbeatResp(self.term, self.id, m.src, m.ctx))

    def _on_install_snapshot(self, m: InstallSnapshot) -> None:
        self._follow(m.src)
        meta = m.snapshot.meta
        if meta.index <= self.commit:
            self._send(AppendResp(self.term, self.id, m.src, True, self.commit, self.last_index))
            return
        if self.term_at(meta.index) == meta.term:
            # We hold the snapshot's last entry already: our log is a superset.
            self.commit = meta.index
        else:
            self._entries = []
            self._configs = []
            self._offset, self._offset_term = meta.index, meta.term
            self._base_membership = meta.membership
            self._snapshot = m.snapshot
            self._pending_snapshot = m.snapshot
            self.commit = meta.index
            self._applied_handed = meta.index
            self._unstable_from = meta.index + 1
        self._send(AppendResp(self.term, self.id, m.src, True, meta.index, self.last_index))

    def _follow(self, leader: str) -> None:
        if self.role is not Role.FOLLOWER:
            self._become(Role.FOLLOWER, self.term, leader)
        self.leader = leader
        self._elapsed = 0

    # ------------------------------------------------------------------ log

    def _append_local(self, kind: EntryKind, data: bytes) -> int:
        entry = Entry(self.term, self.last_index + 1, kind, data)
        self._append_entries((entry,))
        self._need_flush = True
        return entry.index

    def _append_entries(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        first = entries[0].index
        if first <= self.commit:
            raise AssertionError(f"raft: would overwrite committed entry {first}")
        changed = False
        if first <= self.last_index:
            del self._entries[first - self._offset - 1 :]
            kept = [(i, c) for i, c in self._configs if i < first]
            changed = len(kept) != len(self._configs)  # a truncated config is reverted
            self._configs = kept
            self._stable = min(self._stable, first - 1)
        self._unstable_from = min(self._unstable_from, first)
        self._entries.extend(entries)
        for e in entries:
            if e.kind is EntryKind.CONFIG:
                self._configs.append((e.index, decode_membership(e.data)))
                changed = True
        if changed:
            self._on_membership_change()

    def _membership_at(self, index: int) -> Membership:
        found = self._base_membership
        for i, membership in self._configs:
            if i > index:
                break
            found = membership
        return found

    def _on_membership_change(self) -> None:
        if self.role is not Role.LEADER:
            return
        ids = self.membership.ids
        for peer in list(self._progress):
            if peer not in ids:
                del self._progress[peer]
        for peer in ids - {self.id} - self._progress.keys():
            self._progress[peer] = _Progress(next=self.last_index + 1)
        if self._transferee is not None and self._transferee not in self.membership.voters:
            self._transferee = None

    # ------------------------------------------------------------------ leader side

    def _check_can_propose(self) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader(
                "this node is not the leader",
                details={"leader": self.leader_address(), "leader_id": self.leader},
            )
        if self._transferee is not None:
            raise Unavailable("leadership transfer in progress", hint="retry on the new leader")

    def _send(self, m: Message) -> None:
        self._msgs.append(m)

    def _send_append(self, peer: str) -> None:
        pr = self._progress.get(peer)
        if pr is None or self.role is not Role.LEADER:
            return  # removed from the configuration, or this node stood down
        while True:
            if pr.flow is _Flow.SNAPSHOT or (pr.flow is _Flow.PROBE and pr.probe_sent):
                return
            if pr.flow is _Flow.REPLICATE and len(pr.inflight) >= self.cfg.max_inflight:
                return
            prev = pr.next - 1
            prev_term = self.term_at(prev)
            if prev_term is None:
                self._send_snapshot(peer, pr)
                return
            entries = self._batch(pr.next)
            if not entries and pr.flow is _Flow.REPLICATE:
                return
            commit = self.commit
            self._send(Append(self.term, self.id, peer, prev, prev_term, entries, commit))
            if pr.flow is _Flow.PROBE:
                pr.probe_sent = True
                return
            pr.next = entries[-1].index + 1
            pr.inflight.append(entries[-1].index)

    def _batch(self, start: int) -> tuple[Entry, ...]:
        if start > self.last_index:
            return ()
        lo = start - self._offset - 1
        budget = self.cfg.max_append_bytes
        hi = lo
        n = len(self._entries)
        while hi < n:
            budget -= len(self._entries[hi].data) + _ENTRY_OVERHEAD
            if budget < 0 and hi > lo:
                break
            hi += 1
        return tuple(self._entries[lo:hi])

    def _send_snapshot(self, peer: str, pr: _Progress) -> None:
        if self._snapshot is None:
            raise AssertionError("raft: log compacted without a snapshot")
        pr.flow = _Flow.SNAPSHOT
        pr.snapshot_ticks = 0
        self._send(InstallSnapshot(self.term, self.id, peer, self._snapshot, self.commit))

    def _to_probe(self, pr: _Progress) -> None:
        pr.flow = _Flow.PROBE
        pr.probe_sent = False
        pr.next = pr.match + 1
        pr.inflight.clear()

    def _on_append_resp(self, m: AppendResp) -> None:
        if self.role is not Role.LEADER:
            return
        pr = self._progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if m.success:
            if m.index > pr.match:
                pr.match = m.index
                pr.stalled_beats = 0
            while pr.inflight and pr.inflight[0] <= m.index:
                pr.inflight.popleft()
            if pr.flow is _Flow.PROBE or (
                pr.flow is _Flow.SNAPSHOT and pr.match >= (self._offset if self._snapshot else 0)
            ):
                pr.flow = _Flow.REPLICATE
                pr.probe_sent = False
                pr.inflight.clear()
                pr.next = pr.match + 1
            else:
                pr.next = max(pr.next, pr.match + 1)
            if self._maybe_commit():
                self._need_flush = True
            self._send_append(m.src)
            if m.src == self._transferee and pr.match == self.last_index:
                self._send(TimeoutNow(self.term, self.id, m.src))
        else:
            if pr.flow is _Flow.REPLICATE:
                if m.index <= pr.match and m.last_index >= pr.match:
                    return  # stale
                # (or the follower lost entries it had acknowledged: its disk lied; start over
                # from where its log really ends)
                pr.match = min(pr.match, m.last_index)
                self._to_probe(pr)
                pr.next = max(pr.match + 1, min(m.index, m.last_index + 1))
            elif pr.flow is _Flow.PROBE:
                if m.last_index < pr.match:
                    pr.match = m.last_index  # the follower lost acknowledged entries
                elif m.index != pr.next - 1:
                    return  # stale
                pr.next = max(pr.match + 1, min(m.index, m.last_index + 1))
                pr.probe_sent = False
            else:
                return
            self._send_append(m.src)

    def _on_heartbeat_resp(self, m: HeartbeatResp) -> None:
        if self.role is not Role.LEADER:
            return
        pr = self._progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if pr.flow is _Flow.PROBE:
            pr.probe_sent = False
        if pr.match < self.last_index:
            self._send_append(m.src)
        if m.ctx > pr.read_ack:
            pr.read_ack = m.ctx
            self._release_reads()

    def _quorum_index(self) -> int:
        """The highest index that a majority of voters hold durably."""
        voters = self.membership.voters
        if not voters:
            return 0
        matches = sorted(
            (
                self._stable
                if v == self.id
                else (self._progress[v].match if v in self._progress else 0)
            )
            for v in voters
        )
        return matches[len(matches) - (len(matches) // 2 + 1)]

    def _maybe_commit(self) -> bool:
        q = self._quorum_index()
        if q <= self.commit:
            return False
        if self.term_at(q) != self.term and not self.cfg.unsafe_commit_by_count:
            return False
        old_term_at_commit = self.term_at(self.commit)
        self.commit = q
        if old_term_at_commit != self.term and self.term_at(q) == self.term:
            for ctx in self._reads_waiting:
                self._start_read(ctx)
            self._reads_waiting.clear()
        if self.id not in self.membership.ids and self._pending_conf_index <= self.commit:
            # This leader was removed and its removal is committed: stand down.
            self._become(Role.FOLLOWER, self.term, None)
            return False
        if self.id in self.membership.learners and self._pending_conf_index <= self.commit:
            self._become(Role.FOLLOWER, self.term, None)
            return False
        return True

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._elapsed += 1
        if self._transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.cfg.election_ticks:
                self._transferee = None
        for pr in self._progress.values():
            if pr.flow is _Flow.SNAPSHOT:
                pr.snapshot_ticks += 1
                if pr.snapshot_ticks >= self.cfg.election_ticks:
                    self._to_probe(pr)
        if self._elapsed >= self.cfg.election_ticks:
            self._elapsed = 0
            if self.cfg.check_quorum and not self._quorum_active():
                self._become(Role.FOLLOWER, self.term, None)
                return
        if self._heartbeat_elapsed >= self.cfg.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._detect_stalls()
            self._broadcast_heartbeat(self._read_seq if self._reads_pending else 0)
            self._read_broadcast = 0

    def _quorum_active(self) -> bool:
        voters = self.membership.voters
        active = sum(
            1
            for v in voters
            if v == self.id or (v in self._progress and self._progress[v].recent_active)
        )
        for pr in self._progress.values():
            pr.was_active, pr.recent_active = pr.recent_active, False
        return active >= len(voters) // 2 + 1

    def _detect_stalls(self) -> None:
        # Appends may be lost (the transport reconnects, the simulator drops): a follower
        # that made no progress for a few heartbeats while behind is probed afresh.
        for pr in self._progress.values():
            if pr.flow is not _Flow.REPLICATE or pr.match >= self.last_index:
                pr.stalled_beats = 0
                continue
            if pr.match == pr.last_match and pr.inflight:
                pr.stalled_beats += 1
                if pr.stalled_beats >= 3:
                    self._to_probe(pr)
                    pr.stalled_beats = 0
            pr.last_match = pr.match

    def _broadcast_heartbeat(self, ctx: int) -> None:
        for peer, pr in self._progress.items():
            commit = min(pr.match, self.commit)
            self._send(Heartbeat(self.term, self.id, peer, commit, ctx))

    def _start_read(self, ctx: int) -> None:
        self._reads_pending.append((ctx, self.commit))
        if len(self.membership.voters) == 1 and self.id in self.membership.voters:
            self._release_reads()
        else:
            self._read_broadcast = ctx

    def _release_reads(self) -> None:
        voters = self.membership.voters
        quorum = len(voters) // 2 + 1
        while self._reads_pending:
            ctx, index = self._reads_pending[0]
            acks = sum(
                1
                for v in voters
                if v == self.id or (v in self._progress and self._progress[v].read_ack >= ctx)
            )
            if acks < quorum:
                return
            self._reads_pending.popleft()
            self._reads_ready.append(ReadState(ctx, index))
