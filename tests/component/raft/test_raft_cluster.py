"""The replicated store on real Raft processes: SIGKILLed members, a compacted log, membership
changes under load, a torn log tail and a whole-cluster restart lose no acknowledged write.

Each member is a `raftproc` process (real store, fsync'd storage, mutual TLS); writes and
linearizable reads go through the test API with leader discovery (`ProcCluster`).
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from swarmlite.errors import NotLeader
from swarmlite.raft.entries import Entry, EntryKind
from swarmlite.testing.raftcluster import ProcCluster
from swarmlite.testing.raftproc import Empty, GetReply, GetRequest, MemberRequest, StatusReply

MakeCluster = Callable[..., ProcCluster]
Writers = Any  # conftest.Writers, reached through the `writers` fixture
Kill = Callable[[ProcCluster, str], None]


async def followers(cluster: ProcCluster, leader: str) -> list[str]:
    return sorted(n for n in cluster.alive() if n != leader)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("size", "kill_followers"),
    [(3, 0), (5, 1)],
    ids=["3-nodes-leader-killed", "5-nodes-leader-and-follower-killed"],
)
async def test_no_acknowledged_write_is_lost_when_a_minority_is_sigkilled(
    make_cluster: MakeCluster,
    writers: Callable[..., Writers],
    caught_up: Callable[..., Any],
    kill: Kill,
    size: int,
    kill_followers: int,
) -> None:
    cluster = make_cluster(size)
    cluster.start_all()
    leader = await cluster.leader()
    load = writers(cluster, 6)
    load.start()
    await load.wait_acks(60)

    victims = [leader, *(await followers(cluster, leader))[:kill_followers]]
    for node in victims:
        kill(cluster, node)
    await load.wait_acks(60)  # the majority keeps serving
    new_leader = await cluster.leader()
    assert new_leader not in victims

    for node in victims:
        cluster.start(node)
    await load.wait_acks(60)
    await load.stop()

    statuses = await caught_up(cluster, list(cluster.members))
    assert {s.leader for s in statuses.values()} == {await cluster.leader()}
    await load.check_readable()


@pytest.mark.timeout(120)
async def test_whole_cluster_sigkilled_and_restarted_keeps_acknowledged_writes(
    make_cluster: MakeCluster,
    writers: Callable[..., Writers],
    caught_up: Callable[..., Any],
    kill: Kill,
) -> None:
    cluster = make_cluster(3)
    cluster.start_all()
    load = writers(cluster, 6)
    load.start()
    await load.wait_acks(100)

    for node in list(cluster.members):
        kill(cluster, node)
    acked_before = dict(load.acked)
    for node in list(cluster.members):
        cluster.start(node)
    await load.wait_acks(30)
    await load.stop()

    await caught_up(cluster, list(cluster.members))
    await load.check_readable()
    for key, value in acked_before.items():
        assert load.acked[key] >= value


@pytest.mark.timeout(120)
async def test_restarted_member_catches_up_from_a_snapshot_when_its_log_was_compacted(
    make_cluster: MakeCluster, caught_up: Callable[..., Any], kill: Kill
) -> None:
    cluster = make_cluster(3, snapshot_every=50)
    cluster.start_all()
    await cluster.put("before", b"1")
    await caught_up(cluster, ["n3"])
    behind = await cluster.status("n3")
    kill(cluster, "n3")

    async def write(worker: int) -> None:
        for i in range(worker, 400, 8):
            await cluster.put(f"k{i}", f"v{i}".encode())

    await asyncio.gather(*(write(w) for w in range(8)))
    leader = await cluster.leader()
    compacted = await cluster.status(leader)
    # The entries n3 lacks are gone from the leader's log: only a snapshot can bring it back.
    assert compacted.first_index > behind.commit + 1

    cluster.start("n3")
    statuses = await caught_up(cluster, ["n3"])
    assert statuses["n3"].first_index > 1
    assert statuses["n3"].applied >= compacted.commit

    for _ in range(10):  # hand leadership over until n3 leads (ties go to the higher id)
        leader = await cluster.leader()
        if leader == "n3":
            break
        await cluster.transfer(leader)
    assert (await cluster.status("n3")).role == "leader"
    for i in range(400):
        reply = await cluster.call("n3", "/test/v1/get", GetRequest(f"k{i}"), GetReply)
        assert reply.value == f"v{i}".encode()
    assert (await cluster.call("n3", "/test/v1/get", GetRequest("before"), GetReply)).value == b"1"


@pytest.mark.timeout(120)
async def test_restarted_member_catches_up_from_a_snapshot_larger_than_a_frame(
    make_cluster: MakeCluster, caught_up: Callable[..., Any], kill: Kill
) -> None:
    """A store of 24 MB: more than the rpc layer takes in one message (16 MiB)."""
    cluster = make_cluster(3, snapshot_every=10)
    cluster.start_all()
    await cluster.put("before", b"1")
    await caught_up(cluster, ["n3"])
    kill(cluster, "n3")
    for i in range(24):  # values under 1 MiB: see test_put_of_a_value_over_one_mib
        await cluster.put(f"big{i}", os.urandom(1_000_000))
    compacted = await cluster.status(await cluster.leader())
    assert compacted.first_index > 3

    cluster.start("n3")

    statuses = await caught_up(cluster, ["n3"], timeout=20.0)
    assert statuses["n3"].first_index > 1


@pytest.mark.timeout(120)
async def test_member_started_empty_is_added_as_a_voter_and_catches_up(
    make_cluster: MakeCluster, caught_up: Callable[..., Any]
) -> None:
    cluster = make_cluster(4, bootstrap=3)
    cluster.start_all()
    await cluster.put("k", b"v")
    cluster.start("n4")  # no bootstrap: joins empty, waits to be added

    await cluster.add_voter("n4", timeout=15.0)

    statuses = await caught_up(cluster, ["n4"])
    assert statuses["n4"].voters == ["n1", "n2", "n3", "n4"]
    assert statuses["n4"].learners == []


async def remove_leader(cluster: ProcCluster) -> str:
    """Remove the current leader: it hands leadership over first and answers NotLeader,
    then the new leader removes it."""
    leader = await cluster.leader()
    with pytest.raises(NotLeader):
        await cluster.call(leader, "/test/v1/remove", MemberRequest(leader), Empty)
    await cluster.remove(leader)  # asks the new leader
    return leader


@pytest.mark.timeout(120)
async def test_membership_changes_while_writing(
    make_cluster: MakeCluster, writers: Callable[..., Writers], caught_up: Callable[..., Any]
) -> None:
    cluster = make_cluster(4, bootstrap=3)
    cluster.start_all()
    cluster.start("n4")  # no bootstrap: joins empty, waits to be added
    load = writers(cluster, 4)
    load.start()
    await load.wait_acks(40)

    await cluster.add_voter("n4", timeout=15.0)
    status = await cluster.status(await cluster.leader())
    assert (status.voters, status.learners) == (["n1", "n2", "n3", "n4"], [])
    await load.wait_acks(40)

    leader = await cluster.leader()
    founder = next(n for n in ["n1", "n2", "n3"] if n != leader)
    await cluster.remove(founder)
    expected = sorted({"n1", "n2", "n3", "n4"} - {founder})
    assert (await cluster.status(await cluster.leader())).voters == expected
    await load.wait_acks(40)

    expected.remove(await remove_leader(cluster))
    await load.wait_acks(40)
    await load.stop()

    statuses = await caught_up(cluster, expected)
    for node in expected:
        assert (statuses[node].voters, statuses[node].learners) == (expected, [])
    await load.check_readable()


@pytest.mark.timeout(120)
async def test_removing_a_follower_then_the_leader_while_writing(
    make_cluster: MakeCluster, writers: Callable[..., Writers], caught_up: Callable[..., Any]
) -> None:
    cluster = make_cluster(5)
    cluster.start_all()
    load = writers(cluster, 4)
    load.start()
    await load.wait_acks(40)

    leader = await cluster.leader()
    follower = (await followers(cluster, leader))[0]
    await cluster.remove(follower)
    expected = sorted(set(cluster.members) - {follower})
    assert (await cluster.status(await cluster.leader())).voters == expected
    await load.wait_acks(40)

    expected.remove(await remove_leader(cluster))
    await load.wait_acks(40)
    await load.stop()

    statuses = await caught_up(cluster, expected)
    for node in expected:
        assert statuses[node].voters == expected
    assert await cluster.leader(among=expected) in expected
    await load.check_readable()


def newest_segment(data: Path) -> Path:
    return sorted(data.glob("wal-*.log"))[-1]


# The record layout documented in swarmlite/raft/storage.py: [length u32][crc u32][type u8].
HEADER = struct.Struct("<IIB")
ENTRIES = 2


def append_partial_record(segment: Path, status: StatusReply) -> None:
    """A crash early in an append: a header promising more bytes than follow."""
    with segment.open("ab") as file:
        file.write(HEADER.pack(4096, 0xDEADBEEF, ENTRIES) + os.urandom(37))


def append_record_cut_short(segment: Path, status: StatusReply) -> None:
    """A crash late in an append: a well-formed record of the next entries, minus its end.

    Only a record that was never fsynced can be torn, so it must be one the member never
    acknowledged: cutting an acknowledged record would be a disk losing synced data."""
    entries = [
        Entry(status.term, status.commit + i, EntryKind.NORMAL, os.urandom(64)) for i in (1, 2)
    ]
    payload = msgspec.msgpack.encode(entries)
    crc = zlib.crc32(bytes([ENTRIES]) + payload)
    record = HEADER.pack(len(payload), crc, ENTRIES) + payload
    with segment.open("ab") as file:
        file.write(record[:-5])


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "tear", [append_partial_record, append_record_cut_short], ids=["partial-record", "cut-short"]
)
async def test_member_with_a_torn_final_log_record_restarts_and_catches_up(
    make_cluster: MakeCluster,
    writers: Callable[..., Writers],
    caught_up: Callable[..., Any],
    logged: Callable[..., Any],
    kill: Kill,
    tear: Callable[[Path, StatusReply], None],
) -> None:
    cluster = make_cluster(3)
    cluster.start_all()
    leader = await cluster.leader()
    load = writers(cluster, 4)
    load.start()
    await load.wait_acks(80)

    follower = (await followers(cluster, leader))[0]
    status = await cluster.status(follower)
    kill(cluster, follower)
    member = cluster.members[follower]
    segment = newest_segment(member.data)
    size = segment.stat().st_size
    tear(segment, status)
    assert segment.stat().st_size > size

    cluster.start(follower)
    line = await logged(member.log, "torn tail")
    assert segment.name in line
    await load.wait_acks(40)
    await load.stop()

    await caught_up(cluster, list(cluster.members))
    await load.check_readable()
    await cluster.put("after", b"ok")
    assert await cluster.get("after") == b"ok"


@pytest.mark.timeout(60)
async def test_kill_closes_the_pipe_of_the_killed_member(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(1)
    cluster.start_all()
    proc = cluster.members["n1"].proc
    assert proc is not None and proc.stdout is not None

    cluster.kill("n1")

    try:
        assert proc.stdout.closed, "ProcCluster.kill left the member's stdout pipe open"
    finally:
        proc.stdout.close()


@pytest.mark.timeout(60)
async def test_put_of_a_value_over_one_mib(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(1)
    cluster.start_all()
    value = b"v" * (2 << 20)

    await cluster.put("big", value)

    assert await cluster.get("big") == value
