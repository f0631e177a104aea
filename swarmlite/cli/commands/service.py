"""`swarmlite service`: create, ls, ps, inspect, logs, scale, update, rollback, rm, as
`docker service` has them.

Owns the commands and their output. A command that changes a spec reads the service,
edits what it read and writes it back naming the version it read (re-reading on a stale
version), so a concurrent change is never overwritten. The flags are ``cli.specflags``'s
and what they do to a spec ``cli.specedit``'s (create and update share both); waiting for
services to converge is ``cli.converge``'s; the look of every line ``cli.render``'s and
``cli.format``'s. ``Display``, ``Waiter`` and ``timeout_option`` are re-exported here for
``stack``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import click
import msgspec

from swarmlite.api import Config, Secret, Service, ServiceMode, ServiceSpec, Task
from swarmlite.api.control import (
    ListRequest,
    LogLine,
    LogsRequest,
    NameRef,
    ServiceCreate,
    ServiceFilter,
    ServiceScale,
    ServiceUpdate,
    ServiceView,
    TaskFilter,
)
from swarmlite.api.dockerjson import Lookup, service_json
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.api.routes import (
    CONFIG_LS,
    NETWORK_INSPECT,
    NETWORK_LS,
    NODE_LS,
    SECRET_LS,
    SERVICE_CREATE,
    SERVICE_INSPECT,
    SERVICE_LOGS,
    SERVICE_LS,
    SERVICE_RM,
    SERVICE_ROLLBACK,
    SERVICE_SCALE,
    SERVICE_UPDATE,
    TASK_LS,
)
from swarmlite.cli import format, render
from swarmlite.cli.client import Client
from swarmlite.cli.commands import client, each, filter_option, format_option, task_list_options
from swarmlite.cli.converge import Display, Waiter, job_counts, timeout_option
from swarmlite.cli.flagtypes import Since, read_env_file
from swarmlite.cli.specedit import SpecFlags, created_mode, empty_spec, updated_mode
from swarmlite.cli.specflags import DockerCommand, create_options, update_options
from swarmlite.errors import Conflict, InvalidArgument, SwarmliteError, UsageError

__all__ = ["Display", "Waiter", "service", "show_services", "show_tasks", "timeout_option"]

UPDATE_ATTEMPTS = 3  # read-edit-write rounds when someone else changed the service meanwhile


# --------------------------------------------------------------------------- helpers


def read(rpc: Client, ref: str) -> Service:
    return rpc.call(SERVICE_INSPECT, NameRef(ref=ref)).service


def hostnames(rpc: Client) -> dict[str, str]:
    """Node id -> hostname, for the NODE column and log prefixes."""
    nodes = rpc.call(NODE_LS, ListRequest()).nodes
    return {view.node.id: view.node.status.hostname for view in nodes}


def update_spec(
    rpc: Client,
    ref: str,
    edit: Callable[[Service], ServiceSpec],
    before: Callable[[Service], None] | None = None,
    *,
    with_registry_auth: bool = False,
) -> Service:
    """Read, edit and write back a service's spec (with ``with_registry_auth``, the user's
    credentials for the image's registry too); retried on a stale version."""
    for attempt in range(1, UPDATE_ATTEMPTS + 1):
        service = read(rpc, ref)
        spec = edit(service)
        if before is not None:
            before(service)
        auth = registry_auth({spec.name: spec.image}) if with_registry_auth else {}
        request = ServiceUpdate(
            ref=service.id, spec=spec, version=service.version, registry_auth=auth.get(spec.name)
        )
        try:
            rpc.call(SERVICE_UPDATE, request)
        except Conflict:
            if attempt == UPDATE_ATTEMPTS:
                raise
            continue
        return service
    raise AssertionError("unreachable: the last attempt returns or raises")


with_registry_auth_option = click.option(
    "--with-registry-auth",
    is_flag=True,
    help="Send registry authentication details to swarm agents (from the docker CLI's "
    "config: $DOCKER_CONFIG or ~/.docker).",
)


def registry_auth(images: Mapping[str, str]) -> dict[str, RegistryAuth]:
    """``--with-registry-auth``: by name, the user's credentials for each image's
    registry; a warning for each registry it has none for."""
    from swarmlite.cli.registryauth import config_path, credentials_for

    found, missing = credentials_for(dict(images))
    for registry in missing:
        click.echo(
            f"warning: no credentials for registry {registry} in {config_path()}; "
            "its images are pulled without",
            err=True,
        )
    return found


def _waiter(
    rpc: Client, display: Display, service: Service, *, timeout: float, rollback: bool = False
) -> Waiter:
    return Waiter(
        rpc,
        display,
        service=service.id,
        timeout=timeout,
        expect_rollback=rollback,
        hint=f"`swarmlite service ps {service.spec.name}` shows its tasks",
    )


def _converge(waiter: Waiter, display: Display, name: str, *, quiet: bool) -> None:
    with display.running():
        waiter.converge([name])
    if not quiet:
        click.echo(f"verify: Service {name} converged")


# --------------------------------------------------------------------------- listings


@click.group("service")
def service() -> None:
    """Manage the services of the cluster."""


@service.command("ls")
@filter_option()
@format_option()
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
def ls(filters: dict[str, list[str]], output: str, no_trunc: bool, quiet: bool) -> None:
    """List services."""
    rpc = client()
    views = rpc.call(SERVICE_LS, ServiceFilter(filters=filters)).services
    show_services(rpc, views, quiet=quiet, output=output, no_trunc=no_trunc)


def show_services(
    rpc: Client, views: list[ServiceView], *, quiet: bool, output: str, no_trunc: bool = False
) -> None:
    """What ``service ls`` and ``stack services`` print."""
    ids_only = quiet and format.is_table(output)  # with -q, a --format still wins
    jobs = {} if ids_only else job_counts(rpc, views)
    rows = render.service_fields(views, jobs, no_trunc=no_trunc)
    click.echo(format.render_rows(output, rows, render.SERVICE_TABLE, quiet=quiet), nl=False)


def show_tasks(
    rpc: Client,
    tasks: list[Task],
    views: list[ServiceView],
    *,
    quiet: bool,
    no_trunc: bool,
    output: str,
    no_resolve: bool = False,
) -> None:
    """What ``service ps`` and ``stack ps`` print; ``views`` give the host-mode ports."""
    table = format.is_table(output)
    names = None if no_resolve or (quiet and table) else hostnames(rpc)
    ports = {view.service.id: render.service_ports(view.service, mode="host") for view in views}
    rows = render.service_task_fields(
        tasks,
        hostnames=names,
        ports=ports,
        now=time.time(),
        no_trunc=no_trunc or quiet,  # docker's -q prints whole ids
        indent=table,
    )
    click.echo(format.render_rows(output, rows, render.SERVICE_TASK_TABLE, quiet=quiet), nl=False)


@service.command("ps")
@task_list_options()
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
def ps(
    filters: dict[str, list[str]],
    output: str,
    no_resolve: bool,
    no_trunc: bool,
    quiet: bool,
    services: tuple[str, ...],
) -> None:
    """List the tasks of one or more services."""
    rpc = client()
    tasks: list[Task] = []

    def one(ref: str) -> None:
        tasks.extend(rpc.call(TASK_LS, TaskFilter(service=ref, filters=filters)).tasks)

    failure: SwarmliteError | None = None
    try:
        each(services, one)
    except SwarmliteError as exc:  # the tasks that were found are shown all the same
        failure = exc
    if tasks or failure is None:
        views: list[ServiceView] = []
        if not (quiet and format.is_table(output)):  # for the PORTS column
            views = rpc.call(SERVICE_LS, ServiceFilter(names=list(services))).services
        show_tasks(
            rpc,
            tasks,
            views,
            quiet=quiet,
            no_trunc=no_trunc,
            output=output,
            no_resolve=no_resolve,
        )
        if not quiet and output == format.TABLE:  # a note for people, not for scripts
            now = time.time()
            for view in views:
                note = render.autoscale_note(view.service, now)
                if note is not None:
                    click.echo(note)
    if failure is not None:
        raise failure


def _lookup(rpc: Client, services: Collection[Service]) -> Lookup:
    """The networks, secrets and configs ``services`` name, for their ids in Docker's JSON
    (asked for only when some service uses that kind)."""
    containers = [s.spec.task.container for s in services]
    networks = secrets = configs = None
    if any(s.spec.task.networks for s in services):
        networks = [view.network for view in rpc.call(NETWORK_LS, ListRequest()).networks]
    if any(c.secrets for c in containers):
        items = rpc.call(SECRET_LS, ListRequest()).items
        secrets = [item.object for item in items if isinstance(item.object, Secret)]
    if any(c.configs for c in containers):
        items = rpc.call(CONFIG_LS, ListRequest()).items
        configs = [item.object for item in items if isinstance(item.object, Config)]
    return Lookup(networks=networks or (), secrets=secrets or (), configs=configs or ())


@service.command("inspect")
@format_option(default=None)
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format.")
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
def inspect(output: str | None, pretty: bool, services: tuple[str, ...]) -> None:
    """Display detailed information on one or more services."""
    if pretty and output:
        raise UsageError("--format is incompatible with human friendly format")
    rpc = client()
    found: list[Service] = []

    def one(ref: str) -> None:
        found.append(read(rpc, ref))

    try:
        each(services, one)
    finally:  # the services that were found are shown even when another one was not
        if pretty and found:
            click.echo("\n\n".join(render.service_pretty(one) for one in found))
        elif found or not pretty:
            lookup = _lookup(rpc, found) if found else Lookup()
            documents = [service_json(one, lookup=lookup) for one in found]
            click.echo(format.render_inspect(output, documents), nl=False)


# --------------------------------------------------------------------------- create


def _resolved_networks(rpc: Client, flags: SpecFlags) -> SpecFlags:
    """The networks the flags name, by name (a user may give an id or an id prefix, as
    docker takes them); an unknown one fails here with the daemon's words."""
    if not flags.network_add and not flags.network_rm:
        return flags

    def name(ref: str) -> str:
        return rpc.call(NETWORK_INSPECT, NameRef(ref=ref)).network.spec.name

    return dataclasses.replace(
        flags,
        network_add=tuple(
            msgspec.structs.replace(net, target=name(net.target)) for net in flags.network_add
        ),
        network_rm=tuple(name(ref) for ref in flags.network_rm),
    )


def _env_files(paths: tuple[str, ...]) -> tuple[str, ...]:
    entries: list[str] = []
    for path in paths:
        try:
            entries += read_env_file(path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidArgument(f"--env-file {path}: {exc}") from exc
    return tuple(entries)


@service.command("create", cls=DockerCommand, context_settings={"allow_interspersed_args": False})
@create_options
@with_registry_auth_option
@timeout_option()
@click.argument("image")
@click.argument("command", nargs=-1)
def create(
    image: str,
    command: tuple[str, ...],
    detach: bool,
    quiet: bool,
    timeout: float,
    no_resolve_image: bool,  # accepted; swarmlite never asks a registry
    name: str | None,
    mode: str,
    env_file: tuple[str, ...],
    replicas: int | None,
    max_concurrent: int | None,
    with_registry_auth: bool,
    **spec_flags: Any,
) -> None:
    """Create a new service (IMAGE [COMMAND] [ARG...]); prints its id."""
    flags = SpecFlags(**spec_flags)
    if env_file:  # the files first, then -e, the last setting of a variable winning
        flags = dataclasses.replace(flags, env_add=(*_env_files(env_file), *flags.env_add))
    rpc = client()
    flags = _resolved_networks(rpc, flags)
    spec = flags.apply(empty_spec(name or "", image, command))
    spec = created_mode(spec, ServiceMode(mode), replicas=replicas, max_concurrent=max_concurrent)
    auth = registry_auth({"": spec.image}).get("") if with_registry_auth else None
    created = rpc.call(SERVICE_CREATE, ServiceCreate(spec=spec, registry_auth=auth)).service
    click.echo(created.id)
    if not detach:
        display = Display(quiet=quiet)
        waiter = _waiter(rpc, display, created, timeout=timeout)
        _converge(waiter, display, created.spec.name, quiet=quiet)


# --------------------------------------------------------------------------- changes


def parse_scale(text: str) -> tuple[str, int]:
    name, sep, number = text.rpartition("=")
    if not sep or not name or not number.isdigit():
        raise UsageError(
            f"invalid scale specifier {text!r}",
            hint="write SERVICE=REPLICAS, such as shop_web=3",
        )
    return name, int(number)


def _scaled(service: Service, replicas: int) -> ServiceSpec:
    """``service scale``: a replicated service's replicas, a replicated job's completions."""
    spec = service.spec
    if spec.mode is ServiceMode.REPLICATED:
        return msgspec.structs.replace(spec, replicas=replicas)
    if spec.mode is ServiceMode.REPLICATED_JOB:
        job = msgspec.structs.replace(spec.job, total_completions=replicas)
        return msgspec.structs.replace(spec, job=job)
    raise InvalidArgument(
        f"{spec.name}: scale can only be used with replicated or replicated-job mode",
        details={"service": spec.name, "mode": spec.mode.value},
    )


def scale_service(
    rpc: Client, ref: str, replicas: int, before: Callable[[Service], None] | None = None
) -> Service:
    """``service scale``: one merge on the manager (SERVICE_SCALE), applied to the service
    as it is then, so a concurrent change never makes it fail with a stale version."""
    service = read(rpc, ref)
    _scaled(service, replicas)  # a global service is refused before anything is written
    if before is not None:
        before(service)
    rpc.call(SERVICE_SCALE, ServiceScale(ref=service.id, replicas=replicas))
    return service


def change_and_wait(
    rpc: Client,
    ref: str,
    edit: Callable[[Service], ServiceSpec] | None,
    *,
    detach: bool,
    quiet: bool,
    timeout: float,
    announce: Callable[[Service], str],
    replicas: int | None = None,
    with_registry_auth: bool = False,
) -> None:
    """Edit the service (``edit``, or scale it to ``replicas``), print
    ``announce(service)``, then wait unless ``detach``."""
    display = Display(quiet=quiet)
    waiters: list[Waiter] = []

    def before(service: Service) -> None:
        if not detach and not waiters:
            waiter = _waiter(rpc, display, service, timeout=timeout)
            waiter.baseline()
            waiters.append(waiter)

    if edit is not None:
        service = update_spec(rpc, ref, edit, before, with_registry_auth=with_registry_auth)
    else:
        assert replicas is not None, "change_and_wait needs an edit or replicas"
        service = scale_service(rpc, ref, replicas, before)
    click.echo(announce(service))
    if waiters:
        _converge(waiters[0], display, service.spec.name, quiet=quiet)


def _detach_option() -> Callable[[Any], Any]:
    return click.option(
        "-d",
        "--detach",
        is_flag=True,
        help="Exit immediately instead of waiting for the service to converge.",
    )


def _quiet_option() -> Callable[[Any], Any]:
    return click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")


@service.command("scale")
@_detach_option()
@_quiet_option()
@timeout_option()
@click.argument("scales", nargs=-1, required=True, metavar="SERVICE=REPLICAS...")
def scale(detach: bool, quiet: bool, timeout: float, scales: tuple[str, ...]) -> None:
    """Scale one or more replicated services."""
    wanted = dict(parse_scale(text) for text in scales)
    rpc = client()

    def one(ref: str) -> None:
        change_and_wait(
            rpc,
            ref,
            None,
            replicas=wanted[ref],
            detach=detach,
            quiet=quiet,
            timeout=timeout,
            announce=lambda service: f"{ref} scaled to {wanted[ref]}",
        )

    each(wanted, one)


@service.command("update", cls=DockerCommand)
@update_options
@with_registry_auth_option
@timeout_option()
@click.argument("ref", metavar="SERVICE")
def update(
    ref: str,
    detach: bool,
    quiet: bool,
    timeout: float,
    no_resolve_image: bool,  # accepted; swarmlite never asks a registry
    image: str | None,
    args: list[str] | None,
    force: bool,
    rollback: bool,
    replicas: int | None,
    max_concurrent: int | None,
    with_registry_auth: bool,
    **spec_flags: Any,
) -> None:
    """Update a service (a rolling update of its tasks)."""
    flags = SpecFlags(**spec_flags)
    rpc = client()
    if rollback:
        others = flags.given() + [
            name
            for name, value in (("image", image), ("args", args), ("replicas", replicas))
            if value is not None
        ]
        if others or force or max_concurrent is not None or with_registry_auth:
            raise UsageError("other flags may not be combined with --rollback")
        _rollback(rpc, ref, detach=detach, quiet=quiet, timeout=timeout)
        return
    flags = _resolved_networks(rpc, flags)

    def edit(service: Service) -> ServiceSpec:
        spec = updated_mode(
            flags.apply(service.spec), replicas=replicas, max_concurrent=max_concurrent
        )
        task, container = spec.task, spec.task.container
        if image is not None:
            container = msgspec.structs.replace(container, image=image)
        if args is not None:
            container = msgspec.structs.replace(container, command=args or None)
        task = msgspec.structs.replace(
            task, container=container, force_update=task.force_update + (1 if force else 0)
        )
        return msgspec.structs.replace(spec, task=task)

    change_and_wait(
        rpc,
        ref,
        edit,
        detach=detach,
        quiet=quiet,
        timeout=timeout,
        announce=lambda service: ref,
        with_registry_auth=with_registry_auth,
    )


def _rollback(rpc: Client, ref: str, *, detach: bool, quiet: bool, timeout: float) -> None:
    """``service rollback`` and ``service update --rollback``."""
    service = read(rpc, ref)
    display = Display(quiet=quiet)
    waiter = None if detach else _waiter(rpc, display, service, timeout=timeout, rollback=True)
    if waiter is not None:
        waiter.baseline()
    rpc.call(SERVICE_ROLLBACK, NameRef(ref=service.id))
    click.echo(service.spec.name)
    click.echo("rollback: manually requested rollback")
    if waiter is not None:
        _converge(waiter, display, service.spec.name, quiet=quiet)


@service.command("rollback")
@_detach_option()
@_quiet_option()
@timeout_option()
@click.argument("ref", metavar="SERVICE")
def rollback(detach: bool, quiet: bool, timeout: float, ref: str) -> None:
    """Revert a service to its previous spec."""
    _rollback(client(), ref, detach=detach, quiet=quiet, timeout=timeout)


@service.command("rm")
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
def rm(services: tuple[str, ...]) -> None:
    """Remove one or more services."""
    rpc = client()

    def one(ref: str) -> None:
        rpc.call(SERVICE_RM, NameRef(ref=ref))
        click.echo(ref)

    each(services, one)


# --------------------------------------------------------------------------- logs


@dataclasses.dataclass(frozen=True)
class _LogPrefix:
    """How ``service logs`` names the task of each line: ``web.1.<task id>@<node>``."""

    service: Service
    hostnames: Mapping[str, str] | None  # None: --no-resolve (ids, not names)
    task_ids: bool
    no_trunc: bool

    def __call__(self, line: LogLine) -> str:
        task = line.task_name
        if self.hostnames is None:  # docker's --no-resolve names the service by its id
            task = self.service.id + task.removeprefix(self.service.spec.name)
        if self.task_ids:
            task += "." + render.short_id(line.task_id, no_trunc=self.no_trunc)
        node = line.node_id if self.hostnames is None else self.hostnames.get(line.node_id, "")
        return f"{task}@{node or line.node_id}{' ' * self._padding(line)}"

    def _padding(self, line: LogLine) -> int:
        """Docker pads the node so that the bars line up for up to ``replicas`` slots."""
        slot = line.task_name.rpartition(".")[2]
        if self.service.spec.mode is not ServiceMode.REPLICATED or not slot.isdigit():
            return 0
        return max(len(str(self.service.spec.replicas)) - len(slot), 0)


def _details(line: LogLine, service: Service) -> str:
    """docker's ``--details`` for a swarm task: the ids of its node, service and task."""
    return (
        f"com.docker.swarm.node.id={line.node_id},"
        f"com.docker.swarm.service.id={service.id},"
        f"com.docker.swarm.task.id={line.task_id}"
    )


@service.command("logs")
@click.option("--details", is_flag=True, help="Show extra details provided to logs.")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names in output.")
@click.option("--no-task-ids", is_flag=True, help="Do not include task IDs in output.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--raw", is_flag=True, help="Do not neatly format logs.")
@click.option(
    "--since",
    type=Since(),
    help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative '
    '(e.g. "42m" for 42 minutes).',
)
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("ref", metavar="SERVICE")
def logs(
    details: bool,
    follow: bool,
    no_resolve: bool,
    no_task_ids: bool,
    no_trunc: bool,
    raw: bool,
    since: float | None,
    tail: str,
    timestamps: bool,
    ref: str,
) -> None:
    """Fetch the logs of a service's tasks."""
    if tail == "all":
        lines = -1
    elif tail.isdigit():
        lines = int(tail)
    else:
        raise UsageError(f"--tail {tail}: expected a number of lines or 'all'")
    rpc = client()
    found = read(rpc, ref)
    names = None if no_resolve or raw else hostnames(rpc)
    prefix = _LogPrefix(found, names, task_ids=not no_task_ids, no_trunc=no_trunc)

    def show(line: LogLine) -> None:
        text = render.log_line(
            line,
            None if raw else prefix(line),
            timestamps=timestamps,
            details=_details(line, found) if details else "",
        )
        click.echo(text, err=line.stream == "stderr")

    request = LogsRequest(
        service=found.id, follow=follow, tail=lines, timestamps=timestamps, since=since or 0.0
    )
    rpc.each(SERVICE_LOGS, request, show)
