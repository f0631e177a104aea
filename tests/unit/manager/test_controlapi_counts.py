"""What `service ls` counts for a global service: every node it should run on, so that a
deploy whose tasks all failed (and wait out their restart delay) is not "converged"."""

from swarmlite.api import NodeAvailability, NodeState, TaskState
from swarmlite.manager.controlapi.services import counts
from swarmlite.testing.factories import make_node, make_service, make_task

S = TaskState


def test_a_global_service_whose_tasks_wait_out_their_restart_delay_still_wants_them() -> None:
    service = make_service("agent", mode="global")
    nodes = [make_node("n1"), make_node("n2")]
    failed = [
        make_task(service, slot=0, node_id=n.id, state=S.FAILED, desired=S.SHUTDOWN) for n in nodes
    ]
    assert counts(service, failed, nodes) == (0, 2)  # not 0/0: nothing runs, two should


def test_a_global_service_counts_eligible_nodes_and_nodes_still_running_one() -> None:
    service = make_service("agent", mode="global", constraints=["node.labels.zone==a"])
    nodes = [
        make_node("n1", labels={"zone": "a"}),
        make_node("n2", labels={"zone": "a"}, state=NodeState.DOWN),  # gets none
        make_node("n3", labels={"zone": "b"}),  # does not match
        make_node("n4", labels={"zone": "a"}, availability=NodeAvailability.DRAIN),
        make_node("n5", labels={"zone": "a"}, availability=NodeAvailability.PAUSE),
    ]
    running = [
        make_task(service, slot=0, node_id="n1", state=S.RUNNING),
        make_task(service, slot=0, node_id="n5", state=S.RUNNING),  # paused: keeps it
    ]
    assert counts(service, running, nodes) == (2, 2)
    # Before the orchestrator made any task, the eligible node is already wanted.
    assert counts(service, [], nodes) == (0, 1)


def test_a_global_service_with_an_unreadable_constraint_wants_only_what_runs() -> None:
    service = make_service("agent", mode="global", constraints=["node.labels.zone=~a"])
    assert counts(service, [], [make_node("n1")]) == (0, 0)
