from swarmlite.api import TaskState


def test_task_states_order_by_lifecycle_not_alphabet() -> None:
    assert TaskState.NEW < TaskState.PENDING < TaskState.ASSIGNED < TaskState.RUNNING
    assert TaskState.RUNNING < TaskState.COMPLETE
    assert TaskState.PREPARING > TaskState.ACCEPTED
    assert sorted([TaskState.RUNNING, TaskState.FAILED, TaskState.NEW]) == [
        TaskState.NEW,
        TaskState.RUNNING,
        TaskState.FAILED,
    ]


def test_terminal_states_are_those_after_running() -> None:
    terminal = {s for s in TaskState if s.terminal}
    assert terminal == {
        TaskState.COMPLETE,
        TaskState.FAILED,
        TaskState.SHUTDOWN,
        TaskState.REJECTED,
        TaskState.ORPHANED,
    }


def test_task_state_values_are_words() -> None:
    assert TaskState.RUNNING.value == "running"
    assert TaskState("orphaned") is TaskState.ORPHANED
