"""One task's state machine on its node: each call to `Executor.step` advances it one state.

Owns the order of a task's states on the node and what the runtime is asked at each:

    ASSIGNED -> ACCEPTED -> PREPARING (pull, create) -> STARTING (start) -> RUNNING
    RUNNING -> COMPLETE (exit 0) | FAILED (non-zero exit, or unhealthy: reported as RUNNING
               with health "unhealthy" first, so it leaves rotation, then stopped)
    any live state, desired SHUTDOWN -> stop (signal, grace) -> SHUTDOWN

The container is made from a copy of the task with what only this node knows: its DNS
server on the task's networks, and its Docker API socket where the task binds the
runtime's (`agent.dockersocket`). The task the worker reports keeps the manager's spec.

Does not own reporting (the worker reports every status `step` returns), the session, or
which tasks exist (the worker's Assignments do). Never touches the store.

Errors: a retryable error (`SwarmliteError.retryable`, e.g. RuntimeUnavailable) leaves
the task where it is and propagates, so the caller retries the same step after a delay;
any other SwarmliteError ends the task: REJECTED before it started (the node could not
even try: missing image, invalid configuration), FAILED from STARTING on.

Invariants: the status only moves forward (never back in `TaskState` order), one state
per step; a step with nothing to do waits (for the container's exit, a health change or a
new desired state) instead of returning at once, so calling `step` in a loop never spins.
Desired states follow swarm mode: COMPLETE (a job) runs the task to completion like
RUNNING; SHUTDOWN or later stops it; a desired state before the current one holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
from collections.abc import Mapping
from typing import Any

import msgspec

from swarmlite.agent.dockersocket import DockerSocketSwap
from swarmlite.agent.driver import (
    LABEL_CLUSTER,
    LABEL_NODE,
    LABEL_SERVICE,
    LABEL_SLOT,
    LABEL_TASK,
    ContainerRequest,
    ContainerState,
    FileData,
    NetworkDriver,
    RuntimeDriver,
)
from swarmlite.api import FileRef, Task, TaskState
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.api.task import TaskStatus
from swarmlite.clock import Clock
from swarmlite.errors import ContainerFailed, InvalidArgument, SwarmliteError, Unavailable
from swarmlite.log import kv

log = logging.getLogger(__name__)

HEALTH_POLL_SECONDS = 0.25  # a health change reaches the managers within this (plus a report)
"""How often a running container with a healthcheck is inspected for its health."""

UNHEALTHY = "unhealthy container"
UNHEALTHY_DRAIN_SECONDS = 1.0  # from "unhealthy" reported to the container stopped
SECRETS_DIR = "/run/secrets"


def stops(task: Task) -> bool:
    """Whether the task's desired state asks its container to stop (swarm: SHUTDOWN on)."""
    return task.desired_state >= TaskState.SHUTDOWN


def container_labels(task: Task, cluster_id: str, node_id: str) -> dict[str, str]:
    """The task's own container labels plus ours, which find the container again."""
    labels = dict(task.spec.container.labels)
    labels.update(
        {
            LABEL_CLUSTER: cluster_id,
            LABEL_NODE: node_id,
            LABEL_TASK: task.id,
            LABEL_SERVICE: task.service_id,
            LABEL_SLOT: str(task.slot),
        }
    )
    return labels


def container_name(task: Task) -> str:
    """As swarm names them: service.slot.taskid (service.nodeid.taskid for global ones)."""
    return f"{task.name}.{task.id}"


def files_for(
    task: Task, secrets: Mapping[str, bytes], configs: Mapping[str, bytes]
) -> list[FileData]:
    """The secrets and configs `task` references, as files; InvalidArgument if one is missing.

    `secrets` and `configs` map names to data. A relative secret target lands under
    /run/secrets, a relative config target under / (as in swarm mode).
    """
    files: list[FileData] = []
    spec = task.spec.container
    for kind, refs, data, base in (
        ("secret", spec.secrets, secrets, SECRETS_DIR),
        ("config", spec.configs, configs, "/"),
    ):
        for ref in refs:
            if ref.name not in data:
                raise InvalidArgument(f"{kind} {ref.name!r} is not available to this node")
            files.append(_file(kind, ref, data[ref.name], base))
    return files


def _file(kind: str, ref: FileRef, data: bytes, base: str) -> FileData:
    target = ref.target or ref.name
    if not posixpath.isabs(target):
        target = posixpath.join(base, target)
    try:
        uid, gid = int(ref.uid or "0"), int(ref.gid or "0")
    except ValueError as exc:
        raise InvalidArgument(
            f"{kind} {ref.name!r}: uid and gid must be numbers, got {ref.uid!r}, {ref.gid!r}"
        ) from exc
    return FileData(target=target, data=data, uid=uid, gid=gid, mode=ref.mode)


class Executor:
    """Runs one task on this node through `driver`, one state per `step`."""

    def __init__(
        self,
        task: Task,
        driver: RuntimeDriver,
        clock: Clock,
        *,
        cluster_id: str,
        node_id: str,
        secrets: Mapping[str, bytes] | None = None,
        configs: Mapping[str, bytes] | None = None,
        registry_auth: Mapping[str, RegistryAuth] | None = None,
        adopted: ContainerState | None = None,
        network: NetworkDriver | None = None,
        docker_socket: DockerSocketSwap | None = None,
    ) -> None:
        """`adopted` is the task's container found on the node (after an agent restart);
        `network` attaches the container to the task's networks once it runs;
        `docker_socket` gives binds of the runtime's socket this node's Docker API socket."""
        self._task = task
        self._driver = driver
        self._network = network
        self._docker_socket = docker_socket
        self._clock = clock
        self._cluster_id = cluster_id
        self._node_id = node_id
        self._secrets: Mapping[str, bytes] = secrets or {}
        self._configs: Mapping[str, bytes] = configs or {}
        # By service id: the credentials for its image's registry (`--with-registry-auth`).
        self._registry_auth: Mapping[str, RegistryAuth] = registry_auth or {}
        self._changed = asyncio.Event()
        self._exit: asyncio.Task[int] | None = None
        self._adopted = adopted
        self._health = task.status.health
        # The container was stopped or is known to have exited.
        self._stopped = adopted is not None and adopted.status not in ("created", "running")
        if adopted is not None and not task.status.container_id:
            self._task = msgspec.structs.replace(
                task, status=msgspec.structs.replace(task.status, container_id=adopted.id)
            )

    # ------------------------------------------------------------------ what the worker sees

    @property
    def task(self) -> Task:
        """The task as this node sees it: the manager's desired state, our status."""
        return self._task

    @property
    def status(self) -> TaskStatus:
        return self._task.status

    @property
    def container_id(self) -> str:
        return self._task.status.container_id

    @property
    def finished(self) -> bool:
        """Terminal, and its container (if any) is known to be stopped."""
        return self.status.state.terminal and (self._stopped or not self.container_id)

    def update(
        self,
        task: Task,
        *,
        secrets: Mapping[str, bytes] | None = None,
        configs: Mapping[str, bytes] | None = None,
        registry_auth: Mapping[str, RegistryAuth] | None = None,
    ) -> None:
        """A new view of the task from the manager: take its desired state and spec.

        The status stays ours unless the manager's is further along (it may lag behind
        what we reported, never the other way round except after a restart).
        """
        status = self.status
        if task.status.state > status.state:
            status = task.status
            if not status.container_id and self.container_id:
                status = msgspec.structs.replace(status, container_id=self.container_id)
        self._task = msgspec.structs.replace(task, status=status)
        if secrets is not None:
            self._secrets = secrets
        if configs is not None:
            self._configs = configs
        if registry_auth is not None:
            self._registry_auth = registry_auth
        self._changed.set()

    def close(self) -> None:
        """Stop waiting for the container (the container itself is left alone)."""
        if self._exit is not None:
            self._exit.cancel()
            self._exit = None

    # ------------------------------------------------------------------ the state machine

    async def step(self) -> TaskStatus | None:
        """Advance one state; the new status, or None when nothing changed.

        Raises only retryable errors (the same step can be tried again later).
        """
        self._changed.clear()
        task, state = self._task, self.status.state
        try:
            if state.terminal:
                await self._settle_terminal()
                return None
            if stops(task):
                return await self._shutdown()
            if task.desired_state < state:
                await self._changed.wait()  # hold here until the manager says more
                return None
            if self._adopted is not None:
                adopted = await self._adopt()
                if adopted is not None:
                    return adopted
            if state < TaskState.ACCEPTED:
                return self._move(TaskState.ACCEPTED, "accepted")
            if state is TaskState.ACCEPTED:
                return self._move(TaskState.PREPARING, "preparing")
            if state is TaskState.PREPARING:
                return await self._prepare()
            if not self.container_id:
                raise ContainerFailed("the task's container is gone")
            if state is TaskState.STARTING:
                return await self._start()
            return await self._watch()
        except SwarmliteError as exc:
            if exc.retryable:
                raise
            return self._fatal(exc)

    def _move(self, state: TaskState, message: str, **changes: object) -> TaskStatus:
        old = self.status
        if state < old.state:
            # The manager's view moved past us during this step (see `update`): never back.
            return old
        fields: dict[str, object] = {
            "state": state,
            "message": message,
            "timestamp": self._clock.wall(),
            "err": "",
        }
        fields.update(changes)
        status = msgspec.structs.replace(old, **fields)
        self._task = msgspec.structs.replace(self._task, status=status)
        if state.terminal:
            self.close()
        log.info(
            "task state changed %s",
            kv(task=self._task.id, old=old.state.value, new=state.value, err=status.err or None),
        )
        return status

    def _fatal(self, exc: SwarmliteError) -> TaskStatus:
        if self.status.state < TaskState.STARTING:
            return self._move(TaskState.REJECTED, "rejected", err=exc.message)
        return self._move(TaskState.FAILED, "failed", err=exc.message)

    async def _adopt(self) -> TaskStatus | None:
        """A container of ours already exists for this task: continue from where it is."""
        container, self._adopted = self._adopted, None
        assert container is not None
        self._health = container.health or self._health
        if container.status == "running" and self.status.state < TaskState.RUNNING:
            return self._move(TaskState.RUNNING, "started", health=container.health)
        if container.status != "created" and self.status.state < TaskState.STARTING:
            # It ran and exited while we were away: the next step's wait sees its exit code.
            return self._move(TaskState.RUNNING, "started", health=container.health)
        if container.status == "created" and self.status.state < TaskState.STARTING:
            return self._move(TaskState.STARTING, "starting")
        return None

    async def _prepare(self) -> TaskStatus:
        task = self._task
        files = files_for(task, self._secrets, self._configs)
        if not task.spec.container.image:
            raise InvalidArgument("the task has no image")
        if not self.container_id:
            auth = self._registry_auth.get(task.service_id)
            await self._driver.pull(task.spec.container.image, auth=auth)
            if self._network is not None and task.networks:
                # The node's DNS server on the task's networks answers service names.
                container = task.spec.container
                try:
                    servers = [*await self._network.prepare(task), *container.dns]
                except TimeoutError as exc:
                    raise Unavailable(
                        "this node's networks for the task are not set up yet",
                        hint="the manager has not sent them; the task is retried",
                    ) from exc
                spec = msgspec.structs.replace(
                    task.spec, container=msgspec.structs.replace(container, dns=servers)
                )
                task = msgspec.structs.replace(task, spec=spec)
            if self._docker_socket is not None:
                task = self._docker_socket.apply(task)
            request = ContainerRequest(
                task=task,
                name=container_name(task),
                labels=container_labels(task, self._cluster_id, self._node_id),
                files=files,
            )
            container_id = await self._driver.create(request)
            return self._move(TaskState.STARTING, "starting", container_id=container_id)
        return self._move(TaskState.STARTING, "starting")

    async def _start(self) -> TaskStatus:
        await self._driver.start(self.container_id)
        state = await self._driver.inspect(self.container_id)
        if self._network is not None and self._task.networks and state.pid:
            # Created without networking (any runtime can): now give it its interfaces.
            await self._network.attach(self._task, state.pid)
        self._health = state.health
        return self._move(TaskState.RUNNING, "started", health=state.health)

    async def _watch(self) -> TaskStatus | None:
        """RUNNING: wait for the exit, a health change or a new desired state."""
        if self._health == "unhealthy":
            # Reported last step, so the managers take it out of rotation; give that a
            # moment to reach every node before the container stops answering.
            await self._clock.sleep(UNHEALTHY_DRAIN_SECONDS)
            await self._stop()
            return self._move(TaskState.FAILED, "failed", err=UNHEALTHY, health="unhealthy")
        if self._exit is None:
            self._exit = asyncio.ensure_future(self._driver.wait(self.container_id))
        changed = asyncio.ensure_future(self._changed.wait())
        waiters: set[asyncio.Future[Any]] = {self._exit, changed}
        if self._health:
            waiters.add(asyncio.ensure_future(self._clock.sleep(HEALTH_POLL_SECONDS)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters - {self._exit}:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        if self._exit.done():
            return self._exited()
        if changed.done() and not changed.cancelled():
            return None  # the next step looks at the new desired state
        state = await self._driver.inspect(self.container_id)
        if state.health == self._health or not state.health:
            return None
        self._health = state.health
        return self._move(TaskState.RUNNING, self.status.message, health=state.health)

    def _exited(self) -> TaskStatus:
        assert self._exit is not None
        exit_task, self._exit = self._exit, None
        code = exit_task.result()  # a retryable error propagates: the next step waits again
        self._stopped = True
        if code == 0:
            return self._move(TaskState.COMPLETE, "finished", exit_code=0)
        return self._move(
            TaskState.FAILED, "failed", exit_code=code, err=f"task: non-zero exit ({code})"
        )

    async def _shutdown(self) -> TaskStatus:
        exit_code = None
        if self.container_id:
            await self._stop()
            if self._exit is not None and self._exit.done() and not self._exit.cancelled():
                with contextlib.suppress(SwarmliteError):
                    exit_code = self._exit.result()
        self.close()
        return self._move(TaskState.SHUTDOWN, "shutdown", exit_code=exit_code)

    async def _stop(self) -> None:
        spec = self._task.spec.container
        await self._driver.stop(
            self.container_id, signal=spec.stop_signal, grace=spec.stop_grace_period
        )
        self._stopped = True

    async def _settle_terminal(self) -> None:
        """The manager says it is over (e.g. orphaned) while its container may still run."""
        if self.container_id and not self._stopped:
            try:
                await self._stop()
            except SwarmliteError as exc:
                if exc.retryable:
                    raise
                log.warning(
                    "could not stop a finished task's container %s",
                    kv(task=self._task.id, container=self.container_id, error=exc.message),
                )
                self._stopped = True
        self.close()

    def abort(self, exc: SwarmliteError) -> TaskStatus | None:
        """End the task because of `exc` (a bug, say): REJECTED or FAILED; None if it ended."""
        if self.status.state.terminal:
            self._stopped = True
            return None
        return self._fatal(exc)
