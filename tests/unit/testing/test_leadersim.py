"""The in-process leader the scale benchmark measures: it really places, tells and
replaces (a benchmark of a harness that did nothing would be fast)."""

import asyncio

from swarmlite.api import Node, NodeState, Task, TaskState
from swarmlite.testing.leadersim import LeaderSim


def live_on(sim: LeaderSim, node_id: str) -> list[Task]:
    return [
        t
        for t in sim.memory.tasks_on_node(node_id)
        if t.desired_state is TaskState.RUNNING and not t.status.state.terminal
    ]


def test_the_sim_places_tells_scales_and_replaces_a_down_nodes_tasks() -> None:
    async def run() -> None:
        async with LeaderSim(5) as sim:
            assert await sim.deploy(4, 10) > 0
            state = sim.progress()
            assert (state.tasks, state.placed, state.nodes_behind) == (40, 40, 0)
            for node_id in sim.node_ids:  # every node was told exactly its tasks
                session = sim.dispatcher.sessions[node_id]
                told = getattr(session, "assigned", None)
                assert told == {t.id for t in live_on(sim, node_id)}
            await sim.scale(sim.services[0], 10)
            assert sim.progress().placed == 50
            victim = sim.busiest_node()
            _, held = await sim.node_down(victim)
            assert held > 0
            assert live_on(sim, victim) == []  # none of its tasks still meant to run there
            assert sim.progress().placed == 50
            node = sim.memory.get(Node, victim)
            assert node is not None and node.status.state is NodeState.DOWN
            assert sim.loop_restarts == 0

    asyncio.run(run())


def test_a_node_marked_down_while_its_session_stays_open_has_that_session_ended() -> None:
    """A leader too busy to read a node's beats marks it DOWN; the session it still holds
    is closed so that the node opens a new one (whose hello makes it READY again)."""

    async def run() -> None:
        async with LeaderSim(3) as sim:
            quiet = sim.node_ids[0]
            sim.down.add(quiet)  # the sim stops beating for it; its session stays
            await asyncio.sleep(0.05)
            sim.beat()  # the others have just beaten
            await sim.dispatcher.check(period=0.01)
            node = sim.memory.get(Node, quiet)
            assert node is not None and node.status.state is NodeState.DOWN
            closed = sim.session_error(quiet)
            assert closed is not None and "marked down" in str(closed)
            for other in sim.node_ids[1:]:  # the others beat on and keep theirs
                assert sim.session_error(other) is None

    asyncio.run(run())
