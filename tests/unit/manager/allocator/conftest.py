"""A store on a LocalProposer with a FakeClock, and the Allocator running on it.

``Net`` writes objects the way the control API, the orchestrator and the agents would,
lets the allocator run until the store stops changing (``settle``), and reads back what
it allocated.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Interface
from typing import Any

import msgspec
import pytest

from swarmlite.api import Network, Node, Service, Task, TaskState
from swarmlite.manager.allocator import Allocator, Pools, find_ingress
from swarmlite.store import LocalProposer, MemoryStore, ReadTx, Store, Tx
from swarmlite.testing.clock import FakeClock

replace = msgspec.structs.replace


class Net:
    def __init__(self, pools: Pools | None = None) -> None:
        self.clock = FakeClock()
        self.memory = MemoryStore()
        self.store = Store(self.memory, LocalProposer(self.memory), clock=self.clock)
        self.pools = pools
        self.allocator: Allocator | None = None
        self._run: asyncio.Task[None] | None = None

    # -- the loop

    async def start(self) -> None:
        self.allocator = Allocator(self.store, self.clock, pools=self.pools)
        self._run = asyncio.create_task(self.allocator.run())
        await self.settle()

    async def stop(self) -> None:
        if self.allocator is not None and self._run is not None:
            self.allocator.stop()
            self._run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run
            self.allocator, self._run = None, None

    async def restart(self) -> None:
        """A new leader: a fresh allocator over the same store."""
        await self.stop()
        await self.start()

    async def settle(self) -> None:
        last, quiet = -1, 0
        for _ in range(20_000):
            await asyncio.sleep(0)
            index = self.memory.applied_index
            quiet = quiet + 1 if index == last else 0
            last = index
            if quiet >= 30:
                return
        raise AssertionError("the store kept changing")

    # -- writes

    async def write(self, fn: Callable[[ReadTx], Tx | None]) -> None:
        await self.store.update(fn)
        await self.settle()

    async def put(self, *objects: Any) -> None:
        tx = Tx()
        for obj in objects:
            tx.create(obj)
        await self.write(lambda rt: tx)

    async def delete(self, kind: type[Any], object_id: str) -> None:
        await self.write(lambda rt: Tx().delete(rt.get(kind, object_id)))

    async def set_task(
        self, task_id: str, *, desired: TaskState | None = None, **status: Any
    ) -> None:
        """Change a task's status fields (``state``, ``health``) or its desired state."""

        def change(rt: ReadTx) -> Tx:
            task = rt.get(Task, task_id)
            assert task is not None
            return Tx().update(
                replace(
                    task,
                    status=replace(task.status, **status),
                    desired_state=desired or task.desired_state,
                )
            )

        await self.write(change)

    async def run_task(self, task_id: str, node_id: str, **status: Any) -> None:
        """What the scheduler and the agent do: the task is on ``node_id`` and RUNNING."""

        def change(rt: ReadTx) -> Tx:
            task = rt.get(Task, task_id)
            assert task is not None
            new_status = replace(task.status, state=TaskState.RUNNING, **status)
            return Tx().update(replace(task, node_id=node_id, status=new_status))

        await self.write(change)

    # -- reads

    def network(self, name: str) -> Network:
        found = self.memory.get_by_name(Network, name)
        assert found is not None, name
        return found

    def ingress(self) -> Network:
        found = find_ingress(self.memory)
        assert found is not None
        return found

    def service(self, service_id: str) -> Service:
        found = self.memory.get(Service, service_id)
        assert found is not None
        return found

    def task(self, task_id: str) -> Task:
        found = self.memory.get(Task, task_id)
        assert found is not None
        return found

    def node(self, node_id: str) -> Node:
        found = self.memory.get(Node, node_id)
        assert found is not None
        return found

    def address(self, task_id: str, network_name: str) -> IPv4Interface:
        """The task's address on the network named ``network_name``."""
        network = self.network(network_name)
        for att in self.task(task_id).networks:
            if att.network_id == network.id:
                return IPv4Interface(att.address)
        raise AssertionError(f"task {task_id} has no address on {network_name}")


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    harness = Net()
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
def new_net() -> type[Net]:
    """For tests that need their own pools or several harnesses: ``new_net(pools)``."""
    return Net
