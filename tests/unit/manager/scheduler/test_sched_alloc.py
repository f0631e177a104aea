"""The scheduler leaves a task alone until the allocator gave it its network attachments."""

from __future__ import annotations

from typing import Any

import msgspec

from swarmlite.api import Attachment, NetworkAttachment, TaskState
from swarmlite.manager.scheduler import is_schedulable

replace = msgspec.structs.replace


def on_networks(task: Any, *targets: str) -> Any:
    nets = [NetworkAttachment(target=t) for t in targets]
    return replace(task, spec=replace(task.spec, networks=nets))


def attached(task: Any, *network_ids: str) -> Any:
    atts = [Attachment(network_id=n, address=f"10.0.{i}.5/24") for i, n in enumerate(network_ids)]
    return replace(task, networks=atts)


def test_a_task_is_schedulable_only_with_an_attachment_per_network(make: Any) -> None:
    svc = make.service("web")
    bare = make.task(svc, 1)
    assert is_schedulable(bare)  # on no network: nothing to wait for
    waiting = on_networks(bare, "front", "back")
    assert not is_schedulable(waiting)
    assert not is_schedulable(attached(waiting, "net-front"))
    assert is_schedulable(attached(waiting, "net-front", "net-back"))
    # The ingress attachment comes with the others.
    assert is_schedulable(attached(waiting, "net-front", "net-back", "net-ingress"))


async def test_the_scheduler_places_a_task_once_it_is_allocated(cluster: Any, make: Any) -> None:
    svc = make.service("web")
    task = on_networks(make.task(svc, 1), "front")
    await cluster.create(make.node("n1"), svc, task)
    async with cluster.running():
        waiting = cluster.task(task.id)
        assert waiting.status.state == TaskState.PENDING
        assert waiting.node_id == ""
        assert waiting.status.pending_reason == ""  # the scheduler did not look at it
        await cluster.update(attached(waiting, "net-front"))
        await cluster.settle()
        placed = cluster.task(task.id)
        assert placed.status.state == TaskState.ASSIGNED
        assert placed.node_id == "n1"
