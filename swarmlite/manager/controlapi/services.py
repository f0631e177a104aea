"""The control API for stacks, services and tasks: what `swarmlite stack|service ...` call.

Owns the rules of changing services as a Swarm user knows them: a stack is deployed in
one store transaction (all of it or nothing); a change of what tasks run (the task
template) is an update that the orchestrator rolls out, while scaling is not; a rollback
swaps the spec with the previous one; secrets and configs cannot change once created.
Calls reach the leader (a follower forwards them). It never talks to a node: the
orchestrator, scheduler and dispatcher act on what it writes.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator

import msgspec

from swarmlite.api import (
    STACK_LABEL,
    Config,
    Network,
    Node,
    Secret,
    Service,
    ServiceMode,
    ServiceSpec,
    Task,
    TaskState,
    UpdateState,
    UpdateStatus,
    new_id,
)
from swarmlite.api.control import (
    Empty,
    LogLine,
    LogsRequest,
    NameRef,
    ServiceCreate,
    ServiceFilter,
    ServiceList,
    ServiceScale,
    ServiceUpdate,
    ServiceView,
    StackDeploy,
    StackDeployReply,
    StackInfo,
    StackList,
    TaskFilter,
    TaskList,
)
from swarmlite.api.filters import match_services, match_tasks
from swarmlite.api.registryauth import RegistryAuth, check_auth
from swarmlite.api.routes import (
    SERVICE_CREATE,
    SERVICE_INSPECT,
    SERVICE_LOGS,
    SERVICE_LS,
    SERVICE_RM,
    SERVICE_ROLLBACK,
    SERVICE_SCALE,
    SERVICE_UPDATE,
    STACK_DEPLOY,
    STACK_LS,
    STACK_RM,
    TASK_LS,
)
from swarmlite.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from swarmlite.log import kv
from swarmlite.manager.constraints import parse_constraints, takes_global_task
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.blobs import check_create
from swarmlite.manager.controlapi.blobs import users as blob_users
from swarmlite.manager.controlapi.checks import (
    autoscaled_replicas,
    check_internal_networks,
    check_ports,
    check_scale,
    check_service,
)
from swarmlite.manager.controlapi.names import check_name
from swarmlite.manager.controlapi.networks import users
from swarmlite.manager.controlapi.router import Router
from swarmlite.manager.logbroker import LogBroker
from swarmlite.rpc import Peer
from swarmlite.store import ReadTx, Tx

log = logging.getLogger(__name__)


def live(task: Task) -> bool:
    return not task.desired_state.terminal and not task.status.state.terminal


def counts(service: Service, tasks: list[Task], nodes: list[Node]) -> tuple[int, int]:
    """(running, desired) as `service ls` shows them; for jobs (running, completions left)."""
    mine = [t for t in tasks if t.service_id == service.id]
    if service.spec.mode.is_job:
        # (running now, completions still to come)
        mine = [t for t in mine if t.job_iteration == service.job_iteration]
        done = sum(1 for t in mine if t.status.state is TaskState.COMPLETE)
        total = (
            service.spec.job.total_completions or service.spec.replicas
            if service.spec.mode is ServiceMode.REPLICATED_JOB
            else len({t.node_id for t in mine})
        )
        running = sum(1 for t in mine if t.status.state is TaskState.RUNNING)
        return running, max(0, total - done)
    running = sum(
        1
        for t in mine
        if t.desired_state is TaskState.RUNNING
        and t.status.state is TaskState.RUNNING
        and t.status.health != "unhealthy"
    )
    if service.spec.mode is ServiceMode.REPLICATED:
        return running, service.spec.replicas
    # Global: every node it should run on, also one whose task failed and waits out its
    # restart delay (it has no task desired RUNNING then), and any node still running one.
    desired = {t.node_id for t in mine if t.desired_state is TaskState.RUNNING}
    try:
        constraints = parse_constraints(service.spec.task.placement.constraints)
    except InvalidArgument:
        constraints = None  # placed nowhere, as the orchestrator does
    if constraints is not None:
        desired.update(n.id for n in nodes if takes_global_task(n, constraints))
    return running, len(desired)


def _changes_tasks(old: ServiceSpec, new: ServiceSpec) -> bool:
    """Whether the running tasks must be replaced (an update) or not (a scale)."""
    return (old.task, old.endpoint, old.mode) != (new.task, new.endpoint, new.mode)


def _scaled(spec: ServiceSpec, replicas: int) -> ServiceSpec:
    """``service scale``: a replicated service's replicas, a replicated job's completions."""
    if spec.mode is ServiceMode.REPLICATED:
        return msgspec.structs.replace(spec, replicas=replicas)
    if spec.mode is ServiceMode.REPLICATED_JOB:
        job = msgspec.structs.replace(spec.job, total_completions=replicas)
        return msgspec.structs.replace(spec, job=job)
    raise InvalidArgument(
        f"{spec.name}: scale can only be used with replicated or replicated-job mode",
        details={"service": spec.name, "mode": spec.mode.value},
    )


def _with_update(service: Service, spec: ServiceSpec, now: float, *, rollback: bool) -> Service:
    """``service`` with its new ``spec``. A change of the tasks starts an update (or a
    rollback). Any other change (a scale, labels) keeps the spec it replaces for a rollback
    and clears the update status, as swarm does: a client's progress display then follows
    the new replicas instead of reading the last update's "completed", and a paused update
    resumes (its tasks of the old spec are still there to replace)."""
    if not rollback and not _changes_tasks(service.spec, spec):
        return msgspec.structs.replace(
            service, spec=spec, previous_spec=service.spec, update_status=None
        )
    state = UpdateState.ROLLBACK_STARTED if rollback else UpdateState.UPDATING
    message = "rollback started" if rollback else "update in progress"
    return msgspec.structs.replace(
        service,
        spec=spec,
        previous_spec=service.spec,
        spec_version=service.spec_version + 1,
        update_status=UpdateStatus(state=state, message=message, started_at=now),
    )


def _resumed(service: Service) -> Service:
    return msgspec.structs.replace(service, update_status=None)


def _with_auth(service: Service, auth: RegistryAuth | None) -> Service:
    """New registry credentials replace the old; none given keeps the old (as dockerd
    keeps a service's encoded auth on an update without --with-registry-auth)."""
    if auth is None or auth == service.registry_auth:
        return service
    return msgspec.structs.replace(service, registry_auth=auth)


def shown(service: Service) -> Service:
    """A service as any client sees it: without its registry credentials, which never
    leave the managers but for the nodes that pull its image (as `docker service
    inspect` shows no auth)."""
    if service.registry_auth is None:
        return service
    return msgspec.structs.replace(service, registry_auth=None)


class ServiceAPI:
    def __init__(self, ctx: ManagerContext, logs: LogBroker) -> None:
        self.ctx = ctx
        self.logs = logs

    def register(self, router: Router) -> None:
        router.unary(STACK_DEPLOY, self.stack_deploy)
        router.unary(STACK_LS, self.stack_ls)
        router.unary(STACK_RM, self.stack_rm)
        router.unary(SERVICE_CREATE, self.service_create)
        router.unary(SERVICE_LS, self.service_ls)
        router.unary(SERVICE_INSPECT, self.service_inspect)
        router.unary(SERVICE_UPDATE, self.service_update)
        router.unary(SERVICE_SCALE, self.service_scale)
        router.unary(SERVICE_ROLLBACK, self.service_rollback)
        router.unary(SERVICE_RM, self.service_rm)
        router.unary(TASK_LS, self.task_ls)
        router.stream(SERVICE_LOGS, self.service_logs)

    # ------------------------------------------------------------------ lookups

    def resolve(self, state: ReadTx, ref: str) -> Service:
        return self.ctx.resolve_named(state, Service, ref)

    # ------------------------------------------------------------------ stacks

    async def stack_deploy(self, req: StackDeploy, peer: Peer) -> StackDeployReply:
        _check_stack(req)
        reply = StackDeployReply()

        def write(state: ReadTx) -> Tx:
            nonlocal reply
            now = self.ctx.clock.wall()
            tx = Tx()
            created, updated, unchanged, removed = [], [], [], []
            for net in req.networks:
                if state.get_by_name(Network, net.spec.name) is None:
                    tx.create(msgspec.structs.replace(net, id=new_id()))
            for kind, items in ((Secret, req.secrets), (Config, req.configs)):
                for item in items:
                    existing = state.get_by_name(kind, item.spec.name)
                    if existing is None:
                        tx.create(msgspec.structs.replace(item, id=new_id()))
                    elif existing.spec.data != item.spec.data:
                        raise FailedPrecondition(
                            f"{kind.KIND} {item.spec.name} exists with other content; "
                            f"{kind.KIND}s cannot change",
                            hint=f"give the new version another name (e.g. {item.spec.name}_v2)",
                        )
            secrets = {s.spec.name for s in req.secrets} | {s.spec.name for s in state.list(Secret)}
            configs = {c.spec.name for c in req.configs} | {c.spec.name for c in state.list(Config)}
            networks = {n.spec.name for n in req.networks} | {
                n.spec.name for n in state.list(Network)
            }
            check_ports(state, req.services)
            check_internal_networks(state, req.services, req.networks)
            for asked in req.services:
                _check_refs(asked, secrets, configs, networks)
                old = state.get_by_name(Service, asked.name)
                spec = autoscaled_replicas(asked, old.spec if old is not None else None)
                auth = req.registry_auth.get(spec.name)
                if old is None:
                    tx.create(Service(id=new_id(), spec=spec, registry_auth=auth))
                    created.append(spec.name)
                elif old.spec == spec:
                    if auth is not None and auth != old.registry_auth:
                        tx.update(_with_auth(old, auth))  # new credentials, same tasks
                    unchanged.append(spec.name)
                else:
                    if old.spec.stack != req.name:
                        raise AlreadyExists(
                            f"service {spec.name} exists and is not part of stack {req.name}"
                        )
                    tx.update(_with_auth(_with_update(old, spec, now, rollback=False), auth))
                    updated.append(spec.name)
            if req.prune:
                wanted = {s.name for s in req.services}
                for service in state.list(Service):
                    if service.spec.stack == req.name and service.spec.name not in wanted:
                        tx.delete(service)
                        removed.append(service.spec.name)
            reply = StackDeployReply(
                created=created, updated=updated, unchanged=unchanged, removed=removed
            )
            return tx

        await self.ctx.store.update(write)
        log.info(
            "stack deployed %s",
            kv(stack=req.name, created=len(reply.created), updated=len(reply.updated)),
        )
        return reply

    async def stack_ls(self, req: Empty, peer: Peer) -> StackList:
        stacks: dict[str, int] = {}
        for service in self.ctx.store.memory.list(Service):
            if service.spec.stack:
                stacks[service.spec.stack] = stacks.get(service.spec.stack, 0) + 1
        return StackList(stacks=[StackInfo(name=n, services=c) for n, c in sorted(stacks.items())])

    async def stack_rm(self, req: NameRef, peer: Peer) -> StackDeployReply:
        removed: list[str] = []
        kept: list[str] = []

        def write(state: ReadTx) -> Tx:
            removed.clear()
            kept.clear()
            tx = Tx()
            services = [s for s in state.list(Service) if s.spec.stack == req.ref]
            others: list[Network | Secret | Config] = [
                *state.list(Network),
                *state.list(Secret),
                *state.list(Config),
            ]
            mine = [o for o in others if o.spec.labels.get(STACK_LABEL) == req.ref]
            if not services and not mine:
                raise NotFound(f"nothing found in stack {req.ref}")
            leaving = {s.spec.name for s in services}
            for service in services:
                tx.delete(service)
                removed.append(service.spec.name)
            for obj in mine:
                # Another stack may use this one's network, secret or config as an external
                # one: it stays until that stack is gone too.
                staying = [u for u in _users(state, obj) if u not in leaving]
                if staying:
                    kept.append(f"{obj.KIND} {obj.spec.name}: in use by {', '.join(staying)}")
                    continue
                tx.delete(obj)
                removed.append(obj.spec.name)
            return tx

        await self.ctx.store.update(write)
        return StackDeployReply(removed=removed, kept=kept)

    # ------------------------------------------------------------------ services

    async def service_create(self, req: ServiceCreate, peer: Peer) -> ServiceView:
        """`service create`: one service outside any stack, checked like a stack's."""
        if req.spec.stack is not None:
            raise InvalidArgument(
                f"service {req.spec.name}: the label {STACK_LABEL} belongs to stacks",
                hint="deploy it with `swarmlite stack deploy`, or drop the label",
            )
        spec = req.spec if req.spec.name else _named(req.spec, self.ctx.store.memory)
        check_service(spec)
        spec = autoscaled_replicas(spec, None)
        if req.registry_auth is not None:
            check_auth(req.registry_auth, f"service {spec.name}")
        service = Service(id=new_id(), spec=spec, registry_auth=req.registry_auth)

        def write(state: ReadTx) -> Tx:
            if state.get_by_name(Service, spec.name) is not None:
                raise AlreadyExists(f"service {spec.name} already exists")
            _check_refs(spec, _names(state, Secret), _names(state, Config), _names(state, Network))
            check_ports(state, [spec])
            check_internal_networks(state, [spec])
            return Tx().create(service)

        await self.ctx.store.update(write)
        log.info("service created %s", kv(service=spec.name, id=service.id))
        return await self.service_inspect(NameRef(ref=service.id), peer)

    async def service_ls(self, req: ServiceFilter, peer: Peer) -> ServiceList:
        memory = self.ctx.store.memory
        services = [self.resolve(memory, ref) for ref in req.names] or memory.list(Service)
        if req.stack is not None:
            services = [s for s in services if s.spec.stack == req.stack]
        services = match_services(req.filters, services)
        nodes = memory.list(Node)
        views = [
            ServiceView(service=shown(s), running=r, desired=d)
            for s in sorted(services, key=lambda s: s.spec.name)
            for r, d in [counts(s, memory.tasks_of_service(s.id), nodes)]
        ]
        return ServiceList(services=views)

    async def service_inspect(self, req: NameRef, peer: Peer) -> ServiceView:
        service = self.resolve(self.ctx.store.memory, req.ref)
        memory = self.ctx.store.memory
        running, desired = counts(service, memory.tasks_of_service(service.id), memory.list(Node))
        return ServiceView(service=shown(service), running=running, desired=desired)

    async def service_update(self, req: ServiceUpdate, peer: Peer) -> ServiceView:
        check_service(req.spec)
        if req.registry_auth is not None:
            check_auth(req.registry_auth, f"service {req.spec.name}")

        def write(state: ReadTx) -> Tx | None:
            service = self.resolve(state, req.ref)
            if req.version and req.version != service.version:
                raise Conflict(
                    f"service {service.spec.name} changed since it was read",
                    hint="read it again and retry",
                )
            if req.spec.name != service.spec.name:
                raise InvalidArgument("a service cannot be renamed")
            if service.spec == req.spec:
                # Nothing to change: an update without changes resumes a paused one.
                paused = service.update_status is not None and service.update_status.state in (
                    UpdateState.PAUSED,
                    UpdateState.ROLLBACK_PAUSED,
                )
                kept = _with_auth(_resumed(service) if paused else service, req.registry_auth)
                return Tx().update(kept) if kept != service else None
            if req.spec.mode is not service.spec.mode:
                raise InvalidArgument(
                    f"service {service.spec.name} is {service.spec.mode.value}: "
                    "the mode of a service cannot change",
                    hint="remove the service and create it again",
                )
            check_scale(req.spec, service.spec)
            _check_refs(
                req.spec, _names(state, Secret), _names(state, Config), _names(state, Network)
            )
            check_ports(state, [req.spec])
            check_internal_networks(state, [req.spec])
            now = self.ctx.clock.wall()
            updated = _with_update(service, req.spec, now, rollback=False)
            return Tx().update(_with_auth(updated, req.registry_auth))

        await self.ctx.store.update(write)
        return await self.service_inspect(NameRef(ref=req.ref), peer)

    async def service_scale(self, req: ServiceScale, peer: Peer) -> ServiceView:
        if req.replicas < 0:
            raise InvalidArgument(f"replicas must be 0 or more, got {req.replicas}")
        found = self.resolve(self.ctx.store.memory, req.ref)

        def edit(service: Service) -> Service | None:
            # A merge (store.merge): applied to the service as it is when it commits.
            spec = _scaled(service.spec, req.replicas)
            if spec == service.spec:
                return None
            check_scale(spec, service.spec)
            return _with_update(service, spec, self.ctx.clock.wall(), rollback=False)

        await self.ctx.store.merge(Service, found.id, edit)
        return await self.service_inspect(NameRef(ref=found.id), peer)

    async def service_rollback(self, req: NameRef, peer: Peer) -> ServiceView:

        def write(state: ReadTx) -> Tx:
            service = self.resolve(state, req.ref)
            if service.previous_spec is None:
                raise FailedPrecondition(
                    f"service {service.spec.name} has no previous spec to roll back to"
                )
            now = self.ctx.clock.wall()
            return Tx().update(_with_update(service, service.previous_spec, now, rollback=True))

        await self.ctx.store.update(write)
        return await self.service_inspect(req, peer)

    async def service_rm(self, req: NameRef, peer: Peer) -> Empty:

        def write(state: ReadTx) -> Tx:
            return Tx().delete(self.resolve(state, req.ref))

        await self.ctx.store.update(write)
        return Empty()

    async def task_ls(self, req: TaskFilter, peer: Peer) -> TaskList:
        memory = self.ctx.store.memory
        tasks = memory.list(Task)
        if req.service is not None:
            service = self.resolve(memory, req.service)
            tasks = [t for t in tasks if t.service_id == service.id]
        if req.stack is not None:
            ids = {s.id for s in memory.list(Service) if s.spec.stack == req.stack}
            tasks = [t for t in tasks if t.service_id in ids]
        if req.node is not None:
            node = self.ctx.resolve_node(req.node)
            tasks = [t for t in tasks if t.node_id == node.id]
        if not req.all:
            tasks = [t for t in tasks if not t.desired_state.terminal]
        tasks = match_tasks(
            req.filters, tasks, services=memory.list(Service), nodes=memory.list(Node)
        )
        tasks.sort(key=lambda t: (t.service_name, t.slot, t.node_id, -t.status.timestamp))
        return TaskList(tasks=tasks)

    # ------------------------------------------------------------------ logs

    async def service_logs(self, req: LogsRequest, peer: Peer) -> AsyncIterator[LogLine]:
        memory = self.ctx.store.memory
        service = self.resolve(memory, req.service)
        by_node: dict[str, list[str]] = {}
        for task in memory.list(Task):
            if task.service_id == service.id and task.node_id:
                by_node.setdefault(task.node_id, []).append(task.id)
        async for line in self.logs.lines(
            by_node, follow=req.follow, tail=req.tail, since=req.since
        ):
            yield line


_ADJECTIVES = (
    "brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "nimble",
    "proud", "quiet", "steady", "swift", "tender", "upbeat", "vivid", "warm", "witty", "zesty",
)  # fmt: skip
_NOUNS = (
    "alder", "birch", "cedar", "elm", "fir", "hazel", "juniper", "larch", "maple", "oak",
    "pine", "rowan", "spruce", "willow", "yew", "aspen", "beech", "cherry", "holly", "laurel",
)  # fmt: skip


def _named(spec: ServiceSpec, state: ReadTx) -> ServiceSpec:
    """A service created without a name gets a free one (`adjective_tree`), as Docker makes
    one up for `docker service create` without `--name`."""
    rng = random.Random()
    for _ in range(100):
        name = f"{rng.choice(_ADJECTIVES)}_{rng.choice(_NOUNS)}"
        if state.get_by_name(Service, name) is None:
            return msgspec.structs.replace(spec, name=name)
    return msgspec.structs.replace(spec, name=f"service_{new_id()[:12]}")


def _names(state: ReadTx, kind: type[Network] | type[Secret] | type[Config]) -> set[str]:
    return {o.spec.name for o in state.list(kind)}


def _check_stack(req: StackDeploy) -> None:
    check_name("stack", req.name)
    names = [s.name for s in req.services]
    duplicate = {n for n in names if names.count(n) > 1}
    if duplicate:
        raise InvalidArgument(f"stack {req.name} names a service twice: {sorted(duplicate)}")
    for spec in req.services:
        if spec.stack != req.name:
            raise InvalidArgument(
                f"service {spec.name} does not carry the label {STACK_LABEL}={req.name}"
            )
        check_service(spec)
    for name, auth in req.registry_auth.items():
        if name not in names:
            raise InvalidArgument(
                f"stack {req.name}: registry credentials for service {name}, which the stack "
                "does not deploy"
            )
        check_auth(auth, f"service {name}")
    for kind, items in ((Secret, req.secrets), (Config, req.configs)):
        for item in items:  # the rules of `secret create`, for those a compose file makes
            check_create(kind, item.spec.name, item.spec.data)


def _users(state: ReadTx, obj: Network | Secret | Config) -> list[str]:
    """The services that use ``obj``, by name, sorted."""
    if isinstance(obj, Network):
        return users(state, obj)
    return blob_users(state, obj)


def _check_refs(spec: ServiceSpec, secrets: set[str], configs: set[str], nets: set[str]) -> None:
    for kind, refs, known in (
        ("secret", spec.task.container.secrets, secrets),
        ("config", spec.task.container.configs, configs),
    ):
        for ref in refs:
            if ref.name not in known:
                raise NotFound(
                    f"service {spec.name} uses {kind} {ref.name}, which does not exist",
                    hint=f"an external {kind} is made first: "
                    f"`swarmlite {kind} create {ref.name} FILE`",
                )
    for net in spec.task.networks:
        if net.target not in nets:
            raise NotFound(
                f"service {spec.name} uses network {net.target}, which does not exist",
                hint=f"an external network is made first: `swarmlite network create {net.target}`",
            )
