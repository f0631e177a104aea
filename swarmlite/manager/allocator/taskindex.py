"""What the allocator's planner needs to know of the tasks, kept so a pass need not scan them.

Owns two facts per task, and nothing else: the addresses it holds (for every network, the
addresses taken there, and the subnets of the interfaces held, for networks that were
removed while tasks still use them) and whether it waits for its attachments (live, none
yet), grouped by service, with apart those of them whose spec names a network (a task on
no network that publishes nothing waits for ever: a pass need not look at it). Does not
decide anything: ``plan`` reads it as it read the tasks.

Invariant: after ``build(read)`` and then ``update`` for every later write of a task, in
commit order, it says exactly what a scan of the same store state would say. The
allocator keeps one across passes, fed from its own watch inside its update function, and
builds it again whenever it cannot be sure (a new leader, a resync, no watch).
"""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from swarmlite.api import Task, TaskState
from swarmlite.manager.allocator.ipam import parse_interface
from swarmlite.store import ReadTx


def is_live(task: Task) -> bool:
    """Still meant to run and not finished: worth giving addresses to."""
    meant = task.desired_state <= TaskState.RUNNING or task.desired_state is TaskState.COMPLETE
    return meant and not task.status.state.terminal


def holds_addresses(task: Task) -> bool:
    """A task keeps its addresses until its status is terminal (or it is deleted)."""
    return not task.status.state.terminal


class TaskIndex:
    def __init__(self) -> None:
        # task id -> (network id, interface) of each address it holds now
        self._held: dict[str, tuple[tuple[str, IPv4Interface], ...]] = {}
        # network id -> address -> how many tasks hold it
        self.used: dict[str, Counter[IPv4Address]] = {}
        # network id -> subnet of a held interface -> how many attachments
        self.subnets: dict[str, Counter[IPv4Network]] = {}
        # service id -> task id -> live task without attachments
        self.waiting: dict[str, dict[str, Task]] = {}
        # service id -> task id -> those of ``waiting`` whose spec names a network
        self.networked: dict[str, dict[str, Task]] = {}

    @classmethod
    def build(cls, read: ReadTx) -> TaskIndex:
        index = cls()
        for task in read.list(Task):
            index.update(None, task)
        return index

    def update(self, old: Task | None, new: Task | None) -> None:
        """One write of a task (``old`` -> ``new``; None for a creation or a deletion)."""
        either = new if new is not None else old
        if either is None:
            return
        task_id = either.id
        self._forget(task_id, old)
        if new is None:
            return
        if new.networks and holds_addresses(new):
            held: list[tuple[str, IPv4Interface]] = []
            for att in new.networks:
                iface = parse_interface(att.address)
                if iface is None:
                    continue
                held.append((att.network_id, iface))
                self.used.setdefault(att.network_id, Counter())[iface.ip] += 1
                self.subnets.setdefault(att.network_id, Counter())[iface.network] += 1
            if held:
                self._held[task_id] = tuple(held)
        if not new.networks and is_live(new):
            self.waiting.setdefault(new.service_id, {})[task_id] = new
            if new.spec.networks:
                self.networked.setdefault(new.service_id, {})[task_id] = new

    def _forget(self, task_id: str, old: Task | None) -> None:
        for network_id, iface in self._held.pop(task_id, ()):
            _decrement(self.used, network_id, iface.ip)
            _decrement(self.subnets, network_id, iface.network)
        if old is not None:
            for table in (self.waiting, self.networked):
                bucket = table.get(old.service_id)
                if bucket is not None and bucket.pop(task_id, None) is not None and not bucket:
                    del table[old.service_id]


def _decrement(
    table: dict[str, Counter[IPv4Address]] | dict[str, Counter[IPv4Network]],
    network_id: str,
    key: IPv4Address | IPv4Network,
) -> None:
    counts: Counter[IPv4Address | IPv4Network] = table[network_id]  # type: ignore[assignment]
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]
        if not counts:
            del table[network_id]
