"""The heartbeat period as the cluster grows (manager/heartbeats.py, ManagerContext).

Checked: a small cluster beats at the configured period; a large one at a longer period,
in whole seconds, so that the leader hears at most MAX_BEATS_PER_S heartbeats a second; a
configured period longer than that is kept; the manager's `heartbeat_period()` (what
the dispatcher tells the nodes and judges them DOWN by) follows the nodes in the store;
and the raft election timeout grows as the period does, a follower waiting the timeout it
was set before it campaigns.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from swarmlite.api import Cluster, ClusterSettings, ClusterSpec
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.heartbeats import MAX_BEATS_PER_S, election_scale, heartbeat_period
from swarmlite.raft.core import CoreConfig, RaftCore, Role
from swarmlite.raft.entries import Member
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_node


@pytest.mark.parametrize("configured", [0.5, 1.0, 5.0])
def test_a_small_cluster_beats_at_the_configured_period(configured: float) -> None:
    for nodes in (0, 1, 3, 50):
        assert heartbeat_period(configured, nodes) == configured


def test_a_thousand_nodes_beat_every_five_seconds_at_the_default_setting() -> None:
    assert heartbeat_period(1.0, 1_000) == 5.0
    assert heartbeat_period(1.0, 1_001) == 6.0
    assert heartbeat_period(1.0, 5_000) == 25.0


def test_a_configured_period_longer_than_needed_is_kept() -> None:
    assert heartbeat_period(10.0, 1_000) == 10.0
    assert heartbeat_period(2.5, 400) == 2.5


def test_the_leader_hears_at_most_its_budget_and_the_period_changes_rarely() -> None:
    periods = [heartbeat_period(1.0, nodes) for nodes in range(1, 2_001)]
    for nodes, period in enumerate(periods, start=1):
        assert nodes / period <= MAX_BEATS_PER_S, (nodes, period)
        assert period == int(period), (nodes, period)  # whole seconds
    # The period grows with the cluster, one step per MAX_BEATS_PER_S nodes: each step is a
    # SessionInfo to every node, so a step per join would cost nodes² messages.
    assert periods == sorted(periods)
    assert len(set(periods)) == 2_000 // MAX_BEATS_PER_S


def _ctx() -> ManagerContext:
    memory = MemoryStore()
    clock = FakeClock()
    raft: Any = None  # heartbeat_period() needs no raft member
    ctx = ManagerContext(
        node_id="m1",
        cluster_id="c1",
        addr="10.0.0.1:2377",
        store=Store(memory, LocalProposer(memory), clock=clock),
        raft=raft,
        clock=clock,
        client_ssl=lambda: pytest.fail("no call leaves this manager"),
    )
    return ctx


async def test_the_managers_period_follows_the_nodes_in_the_store() -> None:
    settings = ClusterSettings(heartbeat_period=1.0)
    ctx = _ctx()
    tx = Tx().create(Cluster(id="c1", spec=ClusterSpec(settings=settings)))
    for i in range(3):
        tx.create(make_node(f"n{i}"))
    await ctx.store.propose(tx)
    assert ctx.heartbeat_period() == 1.0

    tx = Tx()
    for i in range(3, 1_000):
        tx.create(make_node(f"n{i}"))
    await ctx.store.propose(tx)
    assert ctx.heartbeat_period() == 5.0

    # A longer configured period wins again (`swarm update --dispatcher-heartbeat 10s`).
    (cluster,) = ctx.store.memory.list(Cluster)
    longer = msgspec.structs.replace(cluster.spec.settings, heartbeat_period=10.0)
    spec = msgspec.structs.replace(cluster.spec, settings=longer)
    await ctx.store.propose(Tx().update(msgspec.structs.replace(cluster, spec=spec)))
    assert ctx.heartbeat_period() == 10.0


def test_the_election_timeout_grows_as_the_heartbeat_period_does() -> None:
    assert election_scale(1.0, 3) == 1.0
    assert election_scale(1.0, 1_000) == 5.0
    assert election_scale(1.0, 1_003) == 6.0
    assert election_scale(10.0, 1_000) == 1.0  # the period did not grow


def _ticks_until_it_campaigns(ticks: int | None) -> int:
    """A follower of three that hears nothing: its silent ticks before it campaigns, its
    election timeout set to ``ticks`` first (None: left as configured, 8)."""
    members = [Member(i, f"sim:{i}", True) for i in ("n1", "n2", "n3")]
    hard_state, entries = RaftCore.bootstrap(members)
    core = RaftCore(
        CoreConfig(node_id="n1", election_ticks=8),
        hard_state=hard_state,
        entries=list(entries),
        rng=random.Random(ticks),
    )
    if ticks is not None:
        core.set_election_ticks(ticks)
    for tick in range(1, 1_000):
        core.tick()
        if core.role is not Role.FOLLOWER:
            return tick
    raise AssertionError("it never campaigned")


@pytest.mark.parametrize("ticks", [None, 48])
def test_a_follower_waits_its_election_timeout_as_set_before_it_campaigns(
    ticks: int | None,
) -> None:
    timeout = 8 if ticks is None else ticks
    waited = _ticks_until_it_campaigns(ticks)
    assert timeout <= waited < 2 * timeout
