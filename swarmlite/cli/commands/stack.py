"""`swarmlite stack`: deploy, config, ls, ps, services, rm, as `docker stack` has them.

Owns the stack commands' flags and output, and the order of a deploy: compose's
``depends_on`` is honoured (swarm mode never did), by deploying in waves. A wave holds the
services whose dependencies are all in earlier waves; before it is sent, the command waits
for each dependency's condition (started, healthy, completed successfully). Every deploy
call carries the whole stack deployed so far, so services of earlier waves are sent
unchanged; only the last call, which names every service, carries ``--prune`` (a partial
call with prune would remove the services of later waves). Reading compose files is
``swarmlite.compose``'s; waiting for services is ``cli.converge.Waiter``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec

from swarmlite.api import ServiceSpec
from swarmlite.api.control import (
    Empty,
    NameRef,
    ServiceFilter,
    StackDeployReply,
    TaskFilter,
)
from swarmlite.api.routes import SERVICE_LS, STACK_DEPLOY, STACK_LS, STACK_RM, TASK_LS
from swarmlite.cli import format, listing, render
from swarmlite.cli.commands import client, each, filter_option, format_option, task_list_options
from swarmlite.cli.commands.node import show_node_tasks
from swarmlite.cli.commands.service import (
    registry_auth,
    show_services,
    with_registry_auth_option,
)
from swarmlite.cli.converge import Display, Waiter, timeout_option
from swarmlite.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from swarmlite.compose import LoadedStack

Wave = list[ServiceSpec]


def full_name(stack: str, service: str) -> str:
    """A compose service's name in the cluster: ``shop`` + ``web`` -> ``shop_web``."""
    return f"{stack}_{service}"


def plan_waves(
    stack: str, services: list[ServiceSpec], dependencies: Mapping[str, Mapping[str, str]]
) -> tuple[list[Wave], dict[str, dict[str, str]]]:
    """The deploy waves (each in the order of ``services``) and, by cluster name, what each
    service waits for: ``{"shop_api": {"shop_db": "service_healthy"}}``.

    A dependency on a service this deploy leaves out is skipped (compose has refused it, or
    warned that it is ignored, already); a cycle raises InvalidArgument.
    """
    names = {spec.name for spec in services}
    needs: dict[str, dict[str, str]] = {}
    for service, deps in dependencies.items():
        for dep, condition in deps.items():
            if full_name(stack, dep) in names:
                needs.setdefault(full_name(stack, service), {})[full_name(stack, dep)] = condition
    waves: list[Wave] = []
    placed: set[str] = set()
    left = list(services)
    while left:
        wave = [spec for spec in left if set(needs.get(spec.name, {})) <= placed]
        if not wave:
            cycle = ", ".join(sorted(spec.name.removeprefix(f"{stack}_") for spec in left))
            raise InvalidArgument(
                f"depends_on forms a cycle among: {cycle}",
                hint="remove one of the dependencies of the cycle",
            )
        waves.append(wave)
        placed |= {spec.name for spec in wave}
        left = [spec for spec in left if spec.name not in placed]
    return waves, needs


def _load(files: tuple[Path, ...], profiles: tuple[str, ...]) -> LoadedStack:
    """Read the compose files (a ComposeError says file:line) and print their warnings."""
    # Imported here: only the stack commands need the compose parser.
    from swarmlite.compose import MAX_FILE_BYTES, load_stack

    # Read no more than the loader accepts (it refuses the one character too many).
    stdin = click.get_text_stream("stdin").read(MAX_FILE_BYTES + 1) if Path("-") in files else None
    loaded = load_stack(list(files), profiles=profiles, stdin=stdin)
    for warning in loaded.warnings:
        click.echo(
            render.compose_warning(warning.path, warning.line, warning.key, warning.message),
            err=True,
        )
    return loaded


@click.group("stack")
def stack() -> None:
    """Manage stacks: groups of services from compose files."""


compose_files_option = click.option(
    "-c",
    "--compose-file",
    "files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Path to a compose file, or - for standard input (repeat to merge several, later "
    "ones override).",
)
profile_option = click.option(
    "--profile", "profiles", multiple=True, help="Also deploy the services of this profile."
)


@stack.command("deploy")
@compose_files_option
@click.option("--prune", is_flag=True, help="Remove the services that are no longer referenced.")
@click.option(
    "-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the services."
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@profile_option
@with_registry_auth_option
@timeout_option()
@click.argument("name", metavar="STACK")
def deploy(
    files: tuple[Path, ...],
    prune: bool,
    detach: bool,
    quiet: bool,
    profiles: tuple[str, ...],
    with_registry_auth: bool,
    timeout: float,
    name: str,
) -> None:
    """Deploy a new stack or update an existing one."""
    from swarmlite.compose import to_stack_deploy  # lazily, as in _load

    loaded = _load(files, profiles)
    request = msgspec.structs.replace(to_stack_deploy(loaded, name), prune=prune)
    if with_registry_auth:
        images = {spec.name: spec.image for spec in request.services}
        request = msgspec.structs.replace(request, registry_auth=registry_auth(images))
    waves, needs = plan_waves(name, request.services, loaded.dependencies())
    rpc = client()
    display = Display(quiet=quiet)
    if detach:
        if len(waves) > 1:
            click.echo(
                "warning: depends_on orders a deploy only when it waits; with --detach every "
                "service is deployed at once",
                err=True,
            )
        reply = rpc.call(STACK_DEPLOY, request)
        for line in render.deploy_lines(reply):
            click.echo(line)
        return
    waiter = Waiter(
        rpc,
        display,
        stack=name,
        timeout=timeout,
        hint=f"the cluster keeps trying; `swarmlite stack ps {name}` shows the tasks",
    )
    waiter.baseline()
    sent: list[str] = []
    with display.running():
        for number, wave in enumerate(waves):
            if number:
                conditions = {
                    (dep, condition)
                    for spec in wave
                    for dep, condition in needs.get(spec.name, {}).items()
                }
                waiter.satisfy(sorted(conditions), sent)
            sent += [spec.name for spec in wave]
            last = number == len(waves) - 1
            call = (
                request
                if last
                else msgspec.structs.replace(
                    request,
                    services=[spec for spec in request.services if spec.name in sent],
                    prune=False,
                    registry_auth={k: v for k, v in request.registry_auth.items() if k in sent},
                )
            )
            for line in render.deploy_lines(rpc.call(STACK_DEPLOY, call)):
                display.echo(line)
        waiter.converge(sent)
    if not quiet:
        click.echo(f"verify: Stack {name} converged")


@stack.command("config")
@compose_files_option
@profile_option
def config(files: tuple[Path, ...], profiles: tuple[str, ...]) -> None:
    """Print the stack the compose files describe, merged and interpolated (offline)."""
    loaded = _load(files, profiles)
    click.echo(loaded.to_yaml(), nl=False)


@stack.command("ls")
@format_option()
def ls(output: str) -> None:
    """List stacks."""
    stacks = client().call(STACK_LS, Empty()).stacks
    text = format.render_rows(output, listing.stack_rows(stacks), listing.STACK_TABLE)
    click.echo(text, nl=False)


@stack.command("ps")
@task_list_options()
@click.argument("name", metavar="STACK")
def ps(
    filters: dict[str, list[str]],
    output: str,
    no_resolve: bool,
    no_trunc: bool,
    quiet: bool,
    name: str,
) -> None:
    """List the tasks in the stack."""
    rpc = client()
    tasks = rpc.call(TASK_LS, TaskFilter(stack=name, filters=filters)).tasks
    if not tasks:
        raise NotFound(
            f"nothing found in stack: {name}",
            hint="`swarmlite stack ls` lists the stacks of this cluster",
        )
    show_node_tasks(
        rpc, tasks, output=output, quiet=quiet, no_trunc=no_trunc, no_resolve=no_resolve
    )


@stack.command("services")
@filter_option()
@format_option()
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.argument("name", metavar="STACK")
def services(filters: dict[str, list[str]], output: str, quiet: bool, name: str) -> None:
    """List the services in the stack."""
    rpc = client()
    views = rpc.call(SERVICE_LS, ServiceFilter(stack=name, filters=filters)).services
    if not views:  # as docker, whatever the format
        click.echo(f"Nothing found in stack: {name}", err=True)
        return
    show_services(rpc, views, quiet=quiet, output=output)


@stack.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="STACK...")
def rm(names: tuple[str, ...]) -> None:
    """Remove one or more stacks."""
    rpc = client()

    def one(name: str) -> None:
        views = rpc.call(SERVICE_LS, ServiceFilter(stack=name)).services
        reply = StackDeployReply()
        try:
            reply = rpc.call(STACK_RM, NameRef(ref=name))
        except NotFound:
            if views:
                raise
        if not views:  # as docker: not an error, there is just nothing to remove
            click.echo(f"Nothing found in stack: {name}", err=True)
        for view in render.sort_services(views):
            click.echo(f"Removing service {view.service.spec.name}")
        for kept in reply.kept:  # shared with another stack, which still uses it
            click.echo(f"Keeping {kept}", err=True)

    each(names, one)
