"""Raft under a simulated, hostile network: safety after every step, linearizable at the end.

A failure prints SWARMLITE_SEED; `python -m swarmlite.testing.raftsim --seed N [--nodes 5]`
replays it and prints the trace.
"""

from __future__ import annotations

import pytest

from swarmlite.raft.core import Role
from swarmlite.testing.linearizability import check
from swarmlite.testing.raftsim import InvariantViolation, SimOptions, Simulation

SEEDS_3 = range(0, 300)
SEEDS_5 = range(1000, 1200)
CHUNK = 25


def _run(seed: int, nodes: int, **overrides: object) -> Simulation:
    options = SimOptions(nodes=nodes, steps=8000, clients=5, **overrides)  # type: ignore[arg-type]
    sim = Simulation(seed, options)
    sim.run()
    result = check(sim.history())
    assert result.ok, f"SWARMLITE_SEED={seed}: not linearizable: {result.explanation}"
    return sim


def _chunks(seeds: range) -> list[range]:
    return [seeds[i : i + CHUNK] for i in range(0, len(seeds), CHUNK)]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seeds", _chunks(SEEDS_3), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_three_nodes_stay_safe_and_linearizable(seeds: range) -> None:
    for seed in seeds:
        sim = _run(seed, 3)
        # The run must have done real work, or it proves nothing.
        assert sim.committed, f"SWARMLITE_SEED={seed}: nothing committed"


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seeds", _chunks(SEEDS_5), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_five_nodes_stay_safe_and_linearizable(seeds: range) -> None:
    for seed in seeds:
        sim = _run(seed, 5)
        assert sim.committed, f"SWARMLITE_SEED={seed}: nothing committed"


def test_same_seed_gives_the_same_trace() -> None:
    a, b = _run(7, 3), _run(7, 3)
    assert a.trace == b.trace
    assert a.history() == b.history()
    assert a.committed == b.committed


def _figure8(unsafe: bool) -> Simulation:
    """Raft paper, figure 8: an entry of an old term, replicated to a majority by a later
    leader, is committed by counting, then overwritten by another leader."""
    opts = SimOptions(
        nodes=5, loss=0, duplicate=0, max_delay=0, crash_rate=0, partition_rate=0, op_rate=0
    )
    opts.unsafe_commit_by_count = unsafe
    opts.max_append_bytes = 1  # every Append carries one entry
    sim = Simulation(1, opts)
    everyone = set(sim.nodes)
    sim.connect_only(everyone)
    sim.campaign("n1")
    sim.deliver_all()
    assert sim.core("n1").role is Role.LEADER

    # n1 appends X and gets it only to n2.
    sim.connect_only({"n1", "n2"}, {"n3", "n4", "n5"})
    x = sim.propose("n1", "k", 1)
    sim.deliver_all()
    assert sim.core("n2").term_at(x) == sim.core("n1").term
    sim.crash("n1")

    # n5 wins the next term with n3 and n4, appends at X's index, and is cut off.
    sim.connect_only({"n3", "n4", "n5"})
    sim.campaign("n5")
    while sim.core("n5").role is not Role.LEADER:
        assert sim.deliver_one()
    sim.connect_only()
    sim.deliver_all()
    assert sim.core("n5").term_at(x) not in (None, sim.core("n2").term_at(x))

    # n1 comes back, wins with n2 and n3, and replicates X to n3 one Append at a time.
    sim.restart("n1")
    sim.connect_only({"n1", "n2", "n3"})
    for _ in range(3):  # n1's first term number was taken by n5: it needs a later one
        sim.campaign("n1")
        while sim.core("n1").role is not Role.LEADER and sim.deliver_one():
            pass
        if sim.core("n1").role is Role.LEADER:
            break
    assert sim.core("n1").role is Role.LEADER
    while sim.core("n3").term_at(x) != sim.core("n2").term_at(x) and sim.deliver_one():
        pass
    while sim.deliver_one():
        if sim.core("n1").commit >= x:
            break
    committed_x = sim.core("n1").commit >= x and sim.core("n1").term_at(sim.core("n1").commit) != (
        sim.core("n1").term
    )
    sim.crash("n1")

    # n5 returns and wins with n2, n3 and n4: its entry at X's index wins.
    sim.connect_only({"n2", "n3", "n4", "n5"})
    sim.campaign("n5")
    sim.deliver_all()
    for _ in range(30):
        sim.now += 1
        for node in ("n2", "n3", "n4", "n5"):
            sim.core(node).tick()
            sim._process(sim.nodes[node])
        sim.deliver_all()
    assert unsafe == committed_x
    return sim


def test_figure8_is_caught_when_the_commit_rule_is_broken() -> None:
    with pytest.raises(InvariantViolation, match=r"leader completeness|state machine safety"):
        _figure8(unsafe=True)


def test_figure8_is_safe_with_the_real_commit_rule() -> None:
    _figure8(unsafe=False)
