"""A leader stopped with SIGTERM hands leadership over before it exits."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from swarmlite.testing.raftcluster import ProcCluster


@pytest.mark.timeout(120)
async def test_sigterm_on_the_leader_hands_leadership_to_a_follower(tmp_path: Path) -> None:
    cluster = ProcCluster(tmp_path, 3)
    try:
        cluster.start_all()
        await cluster.put("before", b"1")
        leader = await cluster.leader()
        term = (await cluster.status(leader)).term
        proc = cluster.members[leader].proc
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0

        others = [n for n in cluster.members if n != leader]
        new_leader = await cluster.leader(timeout=5, among=others)
        log = cluster.members[leader].log.read_text()
        assert f"handed leadership over before stopping node={leader} to={new_leader}" in log
        # One election, started by the transfer: no term was lost to a timed-out follower.
        assert (await cluster.status(new_leader)).term == term + 1
        await cluster.put("after", b"2")
        assert await cluster.get("before") == b"1"
        assert await cluster.get("after") == b"2"
    finally:
        await cluster.close()
