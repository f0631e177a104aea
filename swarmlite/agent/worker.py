"""The node side of task execution: runs what the dispatcher assigns and reports how it goes.

Owns this node's set of running executors. A session starts with an Assignments (the
whole set of tasks this node should know of, with the secrets and configs they use and
their services' registry credentials); later ones may be AssignmentChanges, which the worker
merges into the last whole set it holds (`AssignmentChanges.applied_to`), so that what it
acts on is always a whole set, the one a full Assignments would have been. On each whole set
it starts a supervisor for every new task (an asyncio task that steps its `Executor` and
reports each status it returns), hands every known task its new desired state, and stops
and removes the containers of tasks no longer assigned. LogsQuery messages go to the
`LogServer`. Does not own the session (it is given `send`; the daemon passes `on_message`
to the session), the container runtime (a `RuntimeDriver`), or the store, which it never
touches.

Adoption: at start (and so after the agent restarted while containers ran on) the worker
has the runtime remove the secret and config files an earlier run left
(`RuntimeDriver.remove_stale_files`), then lists this cluster's and node's containers by
label before it acts on any assignment, so a task whose container still runs continues as
RUNNING and is not created twice.
Containers of tasks the manager does not name are stopped and removed, but only once the
first Assignments arrived: until then the worker cannot tell "unknown" from "not told yet".

Errors: a retryable error of a step is retried after a growing delay (the task stays
where it is); anything else ends that task (REJECTED/FAILED with the message), never the
worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from swarmlite.agent.dockersocket import DockerSocketSwap
from swarmlite.agent.driver import (
    LABEL_CLUSTER,
    LABEL_NODE,
    LABEL_TASK,
    ContainerState,
    NetworkDriver,
    RuntimeDriver,
)
from swarmlite.agent.executor import Executor
from swarmlite.agent.logs import LogServer, LogSource
from swarmlite.agent.reporter import Reporter
from swarmlite.api import Task
from swarmlite.api.control import (
    AgentMessage,
    AssignmentChanges,
    Assignments,
    LogsQuery,
    ManagerMessage,
    MeshChanges,
    MeshState,
    NetworkState,
)
from swarmlite.api.task import TaskStatus
from swarmlite.clock import Clock
from swarmlite.errors import InternalError, SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

RETRY_MIN, RETRY_MAX = 0.2, 5.0
DEFAULT_GRACE = 10.0


class Worker:
    def __init__(
        self,
        node_id: str,
        cluster_id: str,
        driver: RuntimeDriver,
        clock: Clock,
        send: Callable[[AgentMessage], Awaitable[None]],
        *,
        network: NetworkDriver | None = None,
        docker_socket: DockerSocketSwap | None = None,
    ) -> None:
        self.node_id = node_id
        self._network = network
        self._docker_socket = docker_socket
        self._network_lock = asyncio.Lock()
        self._newest: dict[type, MeshState | NetworkState] = {}  # the one of each kind that counts
        self.cluster_id = cluster_id
        self._driver = driver
        self._clock = clock
        self.reporter = Reporter(send, clock)
        self.logs = LogServer(node_id, driver, send, self._log_source)
        self._executors: dict[str, Executor] = {}
        self._children: set[asyncio.Task[None]] = set()
        self._supervisors: dict[str, asyncio.Task[None]] = {}
        self._removing: set[str] = set()  # container ids
        # Containers found at start, by task id, until the first Assignments claims them.
        self._found: dict[str, ContainerState] = {}
        self._strays: list[ContainerState] = []  # found without a task id
        self._adopted = False
        self._assigned_once = False
        self._latest: Assignments | None = None
        self._changed = asyncio.Event()
        self._stopping = False
        self._group: asyncio.TaskGroup | None = None

    # ------------------------------------------------------------------ inputs

    async def on_message(self, message: ManagerMessage) -> None:
        """A message from the manager; returns at once (the work happens in `run`)."""
        if isinstance(message, Assignments):
            self._latest = message  # each one is the whole set: only the latest matters
            self._changed.set()
            self.reporter.wake()  # a message came, so the session is up again
        elif isinstance(message, AssignmentChanges):
            if self._latest is None:
                # The manager starts every session with a whole set: nothing to merge into.
                log.error(
                    "assignment changes before any assignments; ignored %s",
                    kv(tasks=len(message.tasks), removed=len(message.removed)),
                )
                return
            self._latest = message.applied_to(self._latest)  # whole again
            self._changed.set()
            self.reporter.wake()
        elif isinstance(message, LogsQuery):
            self.logs.handle(message)
        elif isinstance(message, MeshChanges) and self._network is not None:
            base = self._newest.get(MeshState)
            if not isinstance(base, MeshState):
                # The manager starts every session's mesh with a whole state.
                log.error(
                    "mesh changes before any mesh state; ignored %s",
                    kv(peers=len(message.peers), removed=len(message.removed)),
                )
                return
            await self.on_message(message.applied_to(base))  # whole again
        elif isinstance(message, MeshState | NetworkState) and self._network is not None:
            # Applied in order, one at a time, without holding up the session; before
            # `run` started, only the latest of each kind is kept for it.
            self._newest[type(message)] = message
            if self._group is not None:
                _ = self._spawn(self._apply_network(message))

    async def _apply_network(self, message: MeshState | NetworkState) -> None:
        """Apply one state; one that fails is tried again (a device may still be settling)
        until it is applied or a newer state of its kind has come to replace it."""
        assert self._network is not None
        delay = RETRY_MIN
        while True:
            async with self._network_lock:
                if self._newest.get(type(message)) is not message:
                    return  # each state is whole: the newer one, queued behind, is applied
                try:
                    if isinstance(message, MeshState):
                        await self._network.apply_mesh(message)
                    else:
                        await self._network.apply_networks(message)
                    return
                except SwarmliteError as exc:
                    log.error(
                        "could not set up the node's networking; trying again %s",
                        kv(error=exc.message, seconds=delay),
                    )
            await self._clock.sleep(delay)
            delay = min(RETRY_MAX, delay * 2)

    def stop(self) -> None:
        """Make `run` return; the containers are left running, to be adopted next time."""
        self._stopping = True
        self._changed.set()

    # ------------------------------------------------------------------ views

    @property
    def tasks(self) -> dict[str, Task]:
        """Every task this node knows of, with the status it has here."""
        return {task_id: ex.task for task_id, ex in self._executors.items()}

    @property
    def ready(self) -> bool:
        """The containers found at start are sorted out and assignments are being run."""
        return self._adopted and self._assigned_once

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            for early in (self._newest.get(MeshState), self._newest.get(NetworkState)):
                if early is not None:
                    _ = self._spawn(self._apply_network(early))
            reporting = group.create_task(self.reporter.run())
            serving = group.create_task(self.logs.run())
            try:
                await self._adopt()
                while True:
                    await self._changed.wait()
                    self._changed.clear()
                    if self._stopping:
                        break
                    if self._latest is not None:
                        self._apply(self._latest)
            finally:
                for child in (*self._children, reporting, serving):
                    child.cancel()
                for ex in self._executors.values():
                    ex.close()
                self._group = None

    async def _adopt(self) -> None:
        labels = {LABEL_CLUSTER: self.cluster_id, LABEL_NODE: self.node_id}
        containers: list[ContainerState] = []
        delay = RETRY_MIN
        while not self._stopping:
            try:
                # Files a previous run left (a secret of a task that ended meanwhile, say).
                await self._driver.remove_stale_files()
                containers = await self._driver.list_containers(labels)
                break
            except SwarmliteError as exc:
                if not exc.retryable:
                    log.error("cannot list this node's containers %s", kv(error=exc.message))
                    break
                log.info("runtime not ready; retrying %s", kv(error=exc.message))
                await self._clock.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
        for container in containers:
            task_id = container.task_id or container.labels.get(LABEL_TASK, "")
            other = self._found.get(task_id)
            if not task_id:
                self._strays.append(container)
            elif other is None:
                self._found[task_id] = container
            elif container.status == "running" and other.status != "running":
                self._strays.append(other)  # two for one task: keep the one that runs
                self._found[task_id] = container
            else:
                self._strays.append(container)
        self._adopted = True
        log.info("found this node's containers %s", kv(containers=len(containers)))

    def _apply(self, assignments: Assignments) -> None:
        secrets = {s.spec.name: s.spec.data for s in assignments.secrets}
        configs = {c.spec.name: c.spec.data for c in assignments.configs}
        auths = assignments.registry_auth
        assigned = {task.id for task in assignments.tasks}
        for task in assignments.tasks:
            ex = self._executors.get(task.id)
            if ex is None:
                found = self._found.pop(task.id, None)
                if task.status.state.terminal and found is None:
                    continue  # history: nothing of it runs here
                ex = Executor(
                    task,
                    self._driver,
                    self._clock,
                    cluster_id=self.cluster_id,
                    node_id=self.node_id,
                    secrets=secrets,
                    configs=configs,
                    registry_auth=auths,
                    adopted=found,
                    network=self._network,
                    docker_socket=self._docker_socket,
                )
                self._executors[task.id] = ex
                self._supervisors[task.id] = self._spawn(self._supervise(ex))
                continue
            ex.update(task, secrets=secrets, configs=configs, registry_auth=auths)
            if _behind(task.status, ex.status):
                # The manager missed a report (lost with a session): say it again.
                self.reporter.report(task.id, ex.status)
        for task_id in [t for t in self._executors if t not in assigned]:
            self._unassign(task_id)
        if not self._assigned_once:
            self._assigned_once = True
            unknown = [*self._found.values(), *self._strays]
            self._found, self._strays = {}, []
            for container in unknown:
                log.info(
                    "removing a container of a task not assigned here %s",
                    kv(container=container.id, task=container.task_id or None),
                )
                self._remove(container.id, None)

    def _unassign(self, task_id: str) -> None:
        ex = self._executors.pop(task_id)
        supervisor = self._supervisors.pop(task_id, None)
        if supervisor is not None:
            supervisor.cancel()
        ex.close()
        self.reporter.forget(task_id)
        if ex.container_id:
            self._remove(ex.container_id, ex.task)
        log.info("task no longer assigned %s", kv(task=task_id))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._group is not None
        child = self._group.create_task(coro)
        self._children.add(child)
        child.add_done_callback(self._children.discard)
        return child

    # ------------------------------------------------------------------ children

    async def _supervise(self, ex: Executor) -> None:
        delay = RETRY_MIN
        while not ex.finished:
            status: TaskStatus | None
            try:
                status = await ex.step()
                delay = RETRY_MIN
            except SwarmliteError as exc:  # step raises only retryable errors
                log.info("task step will be retried %s", kv(task=ex.task.id, error=exc.message))
                await self._clock.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            except Exception as exc:
                log.exception("task step broke %s", kv(task=ex.task.id))
                status = ex.abort(InternalError(f"internal error: {exc}"))
            if status is not None:
                self.reporter.report(ex.task.id, status)

    def _remove(self, container_id: str, task: Task | None) -> None:
        if container_id in self._removing:
            return
        self._removing.add(container_id)
        _ = self._spawn(self._stop_and_remove(container_id, task))

    async def _stop_and_remove(self, container_id: str, task: Task | None) -> None:
        spec = task.spec.container if task is not None else None
        signal = spec.stop_signal if spec is not None else ""
        grace = spec.stop_grace_period if spec is not None else DEFAULT_GRACE
        delay = RETRY_MIN
        try:
            while True:
                try:
                    await self._driver.stop(container_id, signal=signal, grace=grace)
                    await self._driver.remove(container_id)
                    log.info("container removed %s", kv(container=container_id))
                    return
                except SwarmliteError as exc:
                    if not exc.retryable:
                        log.warning(
                            "could not remove a container %s",
                            kv(container=container_id, error=exc.message),
                        )
                        return
                    await self._clock.sleep(delay)
                    delay = min(RETRY_MAX, delay * 2)
        finally:
            self._removing.discard(container_id)

    def _log_source(self, task_id: str) -> LogSource | None:
        ex = self._executors.get(task_id)
        if ex is None or not ex.container_id:
            return None
        return LogSource(container_id=ex.container_id, task_name=ex.task.name)


def _behind(theirs: TaskStatus, ours: TaskStatus) -> bool:
    if ours.state != theirs.state:
        return ours.state > theirs.state
    return ours.health != theirs.health
