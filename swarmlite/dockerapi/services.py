"""``/services``, ``/tasks`` and ``/distribution``: services and their tasks through the
Docker Engine API, as dockerd serves them.

Owns the handlers and what dockerd adds around swarmkit's calls: ``ServiceStatus`` (with
``?status=true``, counted as swarmkit's ``ListServiceStatuses`` counts), ``insertDefaults``,
the version check of an update (a stale ``?version=N`` is ``update out of sequence``, 500,
as dockerd answers swarmkit's plain error), ``rollback=previous`` (the previous spec comes
back; the body is not used, as in swarmkit), task lookup by full id, full name or unique
id prefix, and the answer of ``/distribution/{name}/json``. The spec itself is read by
``dockerapi.spec``; the JSON shapes are ``api.dockerjson``'s; logs are ``dockerapi.logs``.

A service created with the stack label (``com.docker.stack.namespace``, what ``docker
stack deploy`` sends) is made through STACK_DEPLOY, as a stack of that one service: the
control API keeps the label to stack deploys, and the docker CLI deploys a stack one
service at a time.

Decisions, where swarmlite differs from dockerd:
- ``X-Registry-Auth`` on a create or an update (what ``--with-registry-auth`` sends) is
  taken as dockerd takes it: its credentials are kept with the service, sent only to the
  nodes that run its tasks and used for their pulls; an update without one keeps the
  service's (as dockerd keeps its encoded auth); an absent or empty one (``e30=``, ``{}``:
  what the docker CLI sends without a login, and Portainer always) sets nothing. A header
  that is not base64url JSON is 400, never echoed. Like dockerd, no answer ever shows the
  credentials back. ``registryAuthFrom`` has nothing to choose from and is ignored.
- ``/distribution``: swarmlite does not query registries, so it answers as dockerd does
  when the registry cannot be reached: an error (500, naming the reason). The CLI then
  prints its "could not be accessed on a registry to record its digest" warning and goes
  on with the image as written; no digest is ever made up. An invalid reference is 400.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from swarmlite.api import Service, ServiceMode, Task, TaskState
from swarmlite.api.control import (
    ListRequest,
    NameRef,
    ServiceCreate,
    ServiceFilter,
    ServiceUpdate,
    StackDeploy,
    TaskFilter,
)
from swarmlite.api.dockerjson import Lookup, service_json, task_json
from swarmlite.api.reference import parse_image
from swarmlite.api.registryauth import HEADER, RegistryAuth, from_header
from swarmlite.api.routes import (
    CONFIG_LS,
    NETWORK_LS,
    SECRET_LS,
    SERVICE_CREATE,
    SERVICE_INSPECT,
    SERVICE_LS,
    SERVICE_RM,
    SERVICE_ROLLBACK,
    SERVICE_UPDATE,
    STACK_DEPLOY,
    TASK_LS,
)
from swarmlite.dockerapi.http import (
    Control,
    DockerError,
    add_route,
    control,
    empty_response,
    json_response,
    not_found_as,
    path_ref,
    query_bool,
    query_filters,
    query_version,
    read_json,
)
from swarmlite.dockerapi.logs import log_options, stream_logs
from swarmlite.dockerapi.spec import service_spec
from swarmlite.errors import AlreadyExists, Conflict, InvalidArgument, NotFound

AUTH_HEADER = HEADER
OUT_OF_SEQUENCE = "update out of sequence"


def add_routes(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/services", ls)
    add_route(router, "POST", "/services/create", create)
    add_route(router, "GET", "/services/{id}", inspect)
    add_route(router, "POST", "/services/{id}/update", update)
    add_route(router, "DELETE", "/services/{id}", remove)
    add_route(router, "GET", "/services/{id}/logs", service_logs)
    add_route(router, "GET", "/tasks", task_ls)
    add_route(router, "GET", "/tasks/{id}", task_inspect)
    add_route(router, "GET", "/tasks/{id}/logs", task_logs)
    add_route(router, "GET", r"/distribution/{name:.+}/json", distribution)


# --------------------------------------------------------------------------- lookups


async def lookup(
    api: Control,
    *,
    networks: bool = False,
    secrets: bool = False,
    configs: bool = False,
    services: Sequence[str] = (),
) -> Lookup:
    """The objects that Docker names by id where swarmlite names them: only those asked
    (``services`` by id)."""

    async def items(wanted: bool, kind: str) -> list[Any]:
        if not wanted:
            return []
        if kind == "networks":
            return [v.network for v in (await api.call(NETWORK_LS, ListRequest())).networks]
        if kind == "services":
            asked = ServiceFilter(filters={"id": sorted(set(services))})
            return [v.service for v in (await api.call(SERVICE_LS, asked)).services]
        route = SECRET_LS if kind == "secrets" else CONFIG_LS
        return [v.object for v in (await api.call(route, ListRequest())).items]

    found = await asyncio.gather(
        items(networks, "networks"),
        items(secrets, "secrets"),
        items(configs, "configs"),
        items(bool(services), "services"),
    )
    return Lookup(networks=found[0], secrets=found[1], configs=found[2], services=found[3])


async def lookup_for(api: Control, services: Iterable[Service]) -> Lookup:
    """What ``service_json`` needs to name these services' networks, secrets, configs."""
    specs = [s.spec for s in services] + [s.previous_spec for s in services if s.previous_spec]
    return await lookup(
        api,
        networks=any(spec.task.networks for spec in specs),
        secrets=any(spec.task.container.secrets for spec in specs),
        configs=any(spec.task.container.configs for spec in specs),
    )


def _registry_auth(request: web.Request) -> RegistryAuth | None:
    """The credentials of the request's X-Registry-Auth; None without any."""
    return from_header(request.headers.get(AUTH_HEADER, ""))


async def _spec_body(request: web.Request) -> dict[str, Any]:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidArgument(
            "invalid JSON: json: cannot unmarshal non-object into Go value of type "
            "swarm.ServiceSpec"
        )
    return data


# --------------------------------------------------------------------------- services


def service_status(service: Service, tasks: Sequence[Task]) -> tuple[int, int, int]:
    """(running, desired, completed) as swarmkit's ``ListServiceStatuses`` counts them:
    running tasks; the replicas (replicated), the concurrency (replicated job) or the
    tasks meant to run or complete (global modes); a job's completed tasks. A job counts
    the tasks of its current iteration only."""
    mode = service.spec.mode
    mine = [t for t in tasks if t.service_id == service.id]
    if mode.is_job:
        mine = [t for t in mine if t.job_iteration == service.job_iteration]
    running = sum(1 for t in mine if t.status.state is TaskState.RUNNING)
    completed = sum(1 for t in mine if t.status.state is TaskState.COMPLETE) if mode.is_job else 0
    if mode is ServiceMode.REPLICATED:
        desired = service.spec.replicas
    elif mode is ServiceMode.REPLICATED_JOB:
        desired = service.spec.job.max_concurrent
    else:
        desired = sum(
            1
            for t in mine
            if t.desired_state is TaskState.RUNNING
            or (t.desired_state is TaskState.COMPLETE and t.status.state is not TaskState.COMPLETE)
        )
    return running, desired, completed


async def ls(request: web.Request) -> web.Response:
    api = control(request)
    listed = await api.call(SERVICE_LS, ServiceFilter(filters=query_filters(request)))
    services = [view.service for view in listed.services]
    ids = await lookup_for(api, services)
    if not query_bool(request, "status"):
        return json_response([service_json(s, lookup=ids, insert_defaults=False) for s in services])
    tasks = (await api.call(TASK_LS, TaskFilter())).tasks if services else []
    shown = []
    for service in services:
        running, desired, completed = service_status(service, tasks)
        shown.append(
            service_json(
                service,
                lookup=ids,
                insert_defaults=False,
                running=running,
                desired=desired,
                completed=completed,
            )
        )
    return json_response(shown)


async def inspect(request: web.Request) -> web.Response:
    ref = path_ref(request)
    api = control(request)
    with not_found_as("service", ref):
        service = (await api.call(SERVICE_INSPECT, NameRef(ref=ref))).service
    ids = await lookup_for(api, [service])
    defaults = query_bool(request, "insertDefaults")
    return json_response(service_json(service, lookup=ids, insert_defaults=defaults))


async def create(request: web.Request) -> web.Response:
    auth = _registry_auth(request)
    data = await _spec_body(request)
    api = control(request)
    spec = service_spec(data, await lookup(api, networks=True, secrets=True, configs=True))
    if spec.stack is None:
        view = await api.call(SERVICE_CREATE, ServiceCreate(spec=spec, registry_auth=auth))
        return json_response({"ID": view.service.id, "Warnings": None}, status=201)
    # `docker stack deploy` makes a stack's services one by one, each with the stack's
    # label, which SERVICE_CREATE keeps to stack deploys: it goes through STACK_DEPLOY, a
    # stack of this one service that creates it (after the check that it is new, as a
    # create must be: a stack deploy would update one that exists).
    named = await api.call(SERVICE_LS, ServiceFilter(filters={"name": [spec.name]}))
    if any(view.service.spec.name == spec.name for view in named.services):
        raise AlreadyExists(f"service {spec.name} already exists")
    auths = {spec.name: auth} if auth is not None else {}
    await api.call(STACK_DEPLOY, StackDeploy(name=spec.stack, services=[spec], registry_auth=auths))
    created = (await api.call(SERVICE_INSPECT, NameRef(ref=spec.name))).service
    return json_response({"ID": created.id, "Warnings": None}, status=201)


async def update(request: web.Request) -> web.Response:
    ref = path_ref(request)
    version = query_version(request, "service")
    auth = _registry_auth(request)
    data = await _spec_body(request)
    api = control(request)
    with not_found_as("service", ref):
        current = (await api.call(SERVICE_INSPECT, NameRef(ref=ref))).service
    if version != current.version:
        raise Conflict(OUT_OF_SEQUENCE)
    if request.query.get("rollback") == "previous":
        # swarmkit swaps in the previous spec and ignores the one sent. The version was
        # checked just above: a write between the two is not seen (SERVICE_ROLLBACK
        # takes no version).
        await api.call(SERVICE_ROLLBACK, NameRef(ref=current.id))
    else:
        spec = service_spec(data, await lookup(api, networks=True, secrets=True, configs=True))
        update = ServiceUpdate(ref=current.id, spec=spec, version=version, registry_auth=auth)
        await api.call(SERVICE_UPDATE, update)
    return json_response({"Warnings": None})


async def remove(request: web.Request) -> web.Response:
    ref = path_ref(request)
    with not_found_as("service", ref):
        await control(request).call(SERVICE_RM, NameRef(ref=ref))
    return empty_response()


async def service_logs(request: web.Request) -> web.StreamResponse:
    ref = path_ref(request)
    options = log_options(request)
    with not_found_as("service", ref):
        service = (await control(request).call(SERVICE_INSPECT, NameRef(ref=ref))).service
    return await stream_logs(
        request, options, service_id=service.id, tty=service.spec.task.container.tty
    )


# --------------------------------------------------------------------------- tasks


async def _tasks_json(api: Control, tasks: list[Task]) -> list[dict[str, Any]]:
    # A job's task shows its JobIteration even at 0, which only its service tells.
    ids = await lookup(
        api,
        networks=any(t.networks or t.spec.networks for t in tasks),
        services=[t.service_id for t in tasks if t.service_id],
    )
    return [task_json(task, lookup=ids) for task in tasks]


async def task_ls(request: web.Request) -> web.Response:
    api = control(request)
    tasks = (await api.call(TASK_LS, TaskFilter(filters=query_filters(request)))).tasks
    return json_response(await _tasks_json(api, tasks))


async def find_task(api: Control, ref: str) -> Task:
    """dockerd's ``getTask``: a full id, else a full name (``web.1.<id>``), else a
    unique id prefix."""
    by_id = (await api.call(TASK_LS, TaskFilter(filters={"id": [ref]}))).tasks
    exact = [t for t in by_id if t.id == ref]
    if exact:
        return exact[0]
    by_name = (await api.call(TASK_LS, TaskFilter(filters={"name": [ref]}))).tasks
    named = [t for t in by_name if f"{t.name}.{t.id}" == ref]
    if len(named) == 1:
        return named[0]
    if not by_id:
        raise NotFound(f"task {ref} not found")
    if len(by_id) > 1:
        raise InvalidArgument(f"task {ref} is ambiguous ({len(by_id)} matches found)")
    return by_id[0]


async def task_inspect(request: web.Request) -> web.Response:
    api = control(request)
    task = await find_task(api, path_ref(request))
    return json_response((await _tasks_json(api, [task]))[0])


async def task_logs(request: web.Request) -> web.StreamResponse:
    options = log_options(request)
    task = await find_task(control(request), path_ref(request))
    return await stream_logs(
        request,
        options,
        service_id=task.service_id,
        tty=task.spec.container.tty,
        task_id=task.id,
    )


# --------------------------------------------------------------------------- registries


async def distribution(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    parse_image(name)  # an invalid reference is the client's mistake: 400
    raise DockerError(
        500,
        f"swarmlite does not query registries: no digest or platforms for {name} "
        "(each node pulls the image as written)",
    )
