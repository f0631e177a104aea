"""The flags of ``service create`` and ``service update``, declared once.

Owns each flag's name, help and value type, as docker 28.2.2 has them (``--env`` on create
is ``--env-add``/``--env-rm`` on update; a flag both commands have is declared once for
both), and ``DockerCommand``: options listed by name in ``--help`` and a boolean flag read
with an attached value (``--read-only=false``) as docker's pflag reads it. The flags that
edit a spec land in ``cli.specedit.SpecFlags`` under the same names; the others
(``--detach``, ``--mode``, ``--replicas``, ``--image``, ...) are read by the commands.
Does not own the value syntaxes (``cli.flagtypes``) nor what a flag does to a spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from swarmlite.api import FailureAction, RestartCondition, ServiceMode, UpdateOrder
from swarmlite.cli import flagtypes as types

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]

_ORDERS = [order.value for order in UpdateOrder]
_CONDITIONS = [condition.value for condition in RestartCondition]
_MODES = [mode.value for mode in ServiceMode]


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Flag:
    """One flag as ``create`` and ``update`` declare it (None or (): not on that command)."""

    create: Decorator[Any] | None
    update: tuple[Decorator[Any], ...]


def _both(*names: str, default_is: str = "", **kwargs: Any) -> Flag:
    """The same option on both commands; ``default_is`` is said on create only (on update,
    a flag not given keeps what the service has)."""
    create = dict(kwargs)
    if default_is:
        create["help"] = f"{kwargs['help']} (default {default_is})"
    return Flag(click.option(*names, **create), (click.option(*names, **kwargs),))


def _create(*names: str, **kwargs: Any) -> Flag:
    return Flag(click.option(*names, **kwargs), ())


def _update(*names: str, **kwargs: Any) -> Flag:
    return Flag(None, (click.option(*names, **kwargs),))


def _toggle(name: str, short: str | None, help: str) -> Flag:
    """A boolean field: ``--tty`` on create; ``--tty/--no-tty`` on update (docker writes
    ``--tty=false``, which ``DockerCommand`` reads as ``--no-tty``)."""
    dest = name.replace("-", "_")
    names = [*([short] if short else []), f"--{name}"]
    create = click.option(*names, dest, is_flag=True, default=None, help=help)
    update = click.option(*names[:-1], f"--{name}/--no-{name}", dest, default=None, help=help)
    return Flag(create, (update,))


def _pair(
    name: str,
    *,
    help: str,
    add_help: str,
    rm_help: str,
    type: click.ParamType[Any] | None = None,
    rm_type: click.ParamType[Any] | None = None,
    short: str | None = None,
) -> Flag:
    """A list: ``--NAME`` on create; ``--NAME-add`` and ``--NAME-rm`` on update."""
    dest = name.replace("-", "_")
    create = click.option(
        *([short] if short else []),
        f"--{name}",
        f"{dest}_add",
        multiple=True,
        type=type,
        help=help,
    )
    add = click.option(f"--{name}-add", f"{dest}_add", multiple=True, type=type, help=add_help)
    rm = click.option(f"--{name}-rm", f"{dest}_rm", multiple=True, type=rm_type, help=rm_help)
    return Flag(create, (add, rm))


def _update_config_flags(
    prefix: str, words: Mapping[str, str], actions: Sequence[FailureAction]
) -> list[Flag]:
    """``--update-*`` (``prefix="update"``) or ``--rollback-*``: docker's six settings;
    ``words`` are docker's for the help (``updated``, ``update all``, ``updates``, ``an``)."""
    choices = [action.value for action in actions]
    quoted = ", ".join(f'"{choice}"' for choice in choices)
    return [
        _both(
            f"--{prefix}-parallelism",
            type=click.IntRange(min=0),
            help=f"Maximum number of tasks {words['done']} simultaneously "
            f"(0 to {words['all']} at once)",
            default_is="1",
        ),
        _both(
            f"--{prefix}-delay",
            type=types.GoDuration(),
            help=f"Delay between {words['plural']} (ns|us|ms|s|m|h)",
            default_is="0s",
        ),
        _both(
            f"--{prefix}-monitor",
            type=types.GoDuration(),
            help=f"Duration after each task {prefix} to monitor for failure (ns|us|ms|s|m|h)",
            default_is="5s",
        ),
        _both(
            f"--{prefix}-failure-action",
            type=click.Choice(choices),
            help=f"Action on {prefix} failure ({quoted})",
            default_is='"pause"',
        ),
        _both(
            f"--{prefix}-max-failure-ratio",
            type=click.FloatRange(min=0, max=1),
            help=f"Failure rate to tolerate during {words['a']} {prefix}",
            default_is="0",
        ),
        _both(
            f"--{prefix}-order",
            type=click.Choice(_ORDERS),
            help=f'{prefix.title()} order ("start-first", "stop-first")',
            default_is='"stop-first"',
        ),
    ]


FLAGS: tuple[Flag, ...] = (
    # what the commands read themselves
    _both(
        "-d",
        "--detach",
        is_flag=True,
        help="Exit immediately instead of waiting for the service to converge",
    ),
    _both("-q", "--quiet", is_flag=True, help="Suppress progress output"),
    _both(
        "--no-resolve-image",
        is_flag=True,
        help="Accepted for docker's scripts; changes nothing: swarmlite never asks a "
        "registry for an image's digest or platforms",
    ),
    _create("--name", help="Service name"),
    _create(
        "--mode",
        type=click.Choice(_MODES),
        default=ServiceMode.REPLICATED.value,
        help='Service mode ("replicated", "global", "replicated-job", "global-job") '
        '(default "replicated")',
    ),
    _create(
        "--env-file",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False),
        help="Read in a file of environment variables",
    ),
    _both("--replicas", type=click.IntRange(min=0), help="Number of tasks"),
    _both(
        "--max-concurrent",
        type=click.IntRange(min=0),
        help="Number of job tasks to run concurrently (default equal to --replicas)",
    ),
    _update("--image", help="Service image tag"),
    _update("--args", type=types.Shlex(), help="Service command args"),
    _update("--force", is_flag=True, help="Force update even if no changes require it"),
    _update("--rollback", is_flag=True, help="Rollback to previous specification"),
    # the service
    _pair(
        "label",
        short="-l",
        type=types.KeyValue(),
        help="Service labels",
        add_help="Add or update a service label",
        rm_help="Remove a label by its key",
    ),
    _both(
        "--endpoint-mode",
        type=click.Choice(["vip", "dnsrr"], case_sensitive=False),
        help="Endpoint mode (vip or dnsrr)",
        default_is='"vip"',
    ),
    _pair(
        "publish",
        short="-p",
        type=types.Ports(),
        rm_type=types.Ports(),
        help="Publish a port as a node port",
        add_help="Add or update a published port",
        rm_help="Remove a published port by its target port",
    ),
    *_update_config_flags(
        "update",
        {"done": "updated", "all": "update all", "plural": "updates", "a": "an"},
        (FailureAction.PAUSE, FailureAction.CONTINUE, FailureAction.ROLLBACK),
    ),
    *_update_config_flags(
        "rollback",
        {"done": "rolled back", "all": "roll back all", "plural": "task rollbacks", "a": "a"},
        (FailureAction.PAUSE, FailureAction.CONTINUE),
    ),
    # placement, networks, resources, restarts
    _pair(
        "constraint",
        help="Placement constraints",
        add_help="Add or update a placement constraint",
        rm_help="Remove a constraint",
    ),
    _pair(
        "placement-pref",
        type=types.PlacementPref(),
        rm_type=types.PlacementPref(),
        help="Add a placement preference",
        add_help="Add a placement preference",
        rm_help="Remove a placement preference",
    ),
    _both(
        "--replicas-max-per-node",
        type=click.IntRange(min=0),
        help="Maximum number of tasks per node (default 0 = unlimited)",
    ),
    _pair(
        "network",
        type=types.NetworkType(),
        help="Network attachments",
        add_help="Add a network",
        rm_help="Remove a network",
    ),
    _both("--limit-cpu", type=types.NanoCpus(), help="Limit CPUs"),
    _both("--limit-memory", type=types.Bytes(), help="Limit Memory"),
    _both(
        "--limit-pids",
        type=click.IntRange(min=0),
        help="Limit maximum number of processes (default 0 = unlimited)",
    ),
    _both("--reserve-cpu", type=types.NanoCpus(), help="Reserve CPUs"),
    _both("--reserve-memory", type=types.Bytes(), help="Reserve Memory"),
    _pair(
        "generic-resource",
        type=types.GenericResourceType(),
        help="User defined resources",
        add_help="Add a Generic resource",
        rm_help="Remove a Generic resource",
    ),
    _both(
        "--restart-condition",
        type=click.Choice(_CONDITIONS),
        help='Restart when condition is met ("none", "on-failure", "any")',
        default_is='"any"',
    ),
    _both(
        "--restart-delay",
        type=types.GoDuration(),
        help="Delay between restart attempts (ns|us|ms|s|m|h)",
        default_is="5s",
    ),
    _both(
        "--restart-max-attempts",
        type=click.IntRange(min=0),
        help="Maximum number of restarts before giving up",
    ),
    _both(
        "--restart-window",
        type=types.GoDuration(),
        help="Window used to evaluate the restart policy (ns|us|ms|s|m|h)",
    ),
    # the container
    _both("--entrypoint", type=types.Shlex(), help="Overwrite the default ENTRYPOINT of the image"),
    _pair(
        "env",
        short="-e",
        type=types.EnvVar(),
        help="Set environment variables",
        add_help="Add or update an environment variable",
        rm_help="Remove an environment variable",
    ),
    _pair(
        "container-label",
        type=types.KeyValue(),
        help="Container labels",
        add_help="Add or update a container label",
        rm_help="Remove a container label by its key",
    ),
    _both("-w", "--workdir", help="Working directory inside the container"),
    _both("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    _pair(
        "group",
        help="Set one or more supplementary user groups for the container",
        add_help="Add an additional supplementary user group to the container",
        rm_help="Remove a previously added supplementary user group from the container",
    ),
    _both("--hostname", help="Container hostname"),
    _toggle(
        "init",
        None,
        "Use an init inside each service container to forward signals and reap processes",
    ),
    _toggle("read-only", None, "Mount the container's root filesystem as read only"),
    _toggle("tty", "-t", "Allocate a pseudo-TTY"),
    _both("--stop-signal", help="Signal to stop the container"),
    _both(
        "--stop-grace-period",
        type=types.GoDuration(),
        help="Time to wait before force killing a container (ns|us|ms|s|m|h)",
        default_is="10s",
    ),
    _both("--cap-add", multiple=True, help="Add Linux capabilities"),
    _both("--cap-drop", multiple=True, help="Drop Linux capabilities"),
    _pair(
        "sysctl",
        type=types.KeyValue(),
        help="Sysctl options",
        add_help="Add or update a Sysctl option",
        rm_help="Remove a Sysctl option",
    ),
    _pair(
        "ulimit",
        type=types.UlimitType(),
        help="Ulimit options",
        add_help="Add or update a ulimit option",
        rm_help="Remove a ulimit option",
    ),
    _both(
        "--oom-score-adj",
        type=click.IntRange(min=-1000, max=1000),
        help="Tune host's OOM preferences (-1000 to 1000)",
    ),
    _pair(
        "mount",
        type=types.MountType(),
        help="Attach a filesystem mount to the service",
        add_help="Add or update a mount on a service",
        rm_help="Remove a mount by its target path",
    ),
    _pair(
        "secret",
        type=types.FileRefType("secret"),
        help="Specify secrets to expose to the service",
        add_help="Add or update a secret on a service",
        rm_help="Remove a secret",
    ),
    _pair(
        "config",
        type=types.FileRefType("config"),
        help="Specify configurations to expose to the service",
        add_help="Add or update a config file on a service",
        rm_help="Remove a configuration file",
    ),
    _pair(
        "dns",
        type=types.IPAddress(),
        help="Set custom DNS servers",
        add_help="Add or update a custom DNS server",
        rm_help="Remove a custom DNS server",
    ),
    _pair(
        "dns-option",
        help="Set DNS options",
        add_help="Add or update a DNS option",
        rm_help="Remove a DNS option",
    ),
    _pair(
        "dns-search",
        type=types.DnsSearch(),
        help="Set custom DNS search domains",
        add_help="Add or update a custom DNS search domain",
        rm_help="Remove a DNS search domain",
    ),
    _pair(
        "host",
        type=types.HostMapping(),
        help="Set one or more custom host-to-IP mappings (host:ip)",
        add_help='Add a custom host-to-IP mapping ("host:ip")',
        rm_help='Remove a custom host-to-IP mapping ("host:ip")',
    ),
    # logging
    _both("--log-driver", help="Logging driver for service (default json-file, rotated)"),
    _both(
        "--log-opt",
        multiple=True,
        type=types.LogOpt(),
        help="Logging driver options (with --log-driver, which they go with)",
    ),
    # healthcheck
    _both("--health-cmd", help="Command to run to check health"),
    _both(
        "--health-interval",
        type=types.GoDuration(),
        help="Time between running the check (ms|s|m|h)",
    ),
    _both(
        "--health-timeout",
        type=types.GoDuration(),
        help="Maximum time to allow one check to run (ms|s|m|h)",
    ),
    _both(
        "--health-retries",
        type=click.IntRange(min=0),
        help="Consecutive failures needed to report unhealthy",
    ),
    _both(
        "--health-start-period",
        type=types.GoDuration(),
        help="Start period for the container to initialize before counting retries towards "
        "unstable (ms|s|m|h)",
    ),
    _both(
        "--health-start-interval",
        type=types.GoDuration(),
        help="Time between running the check during the start period (ms|s|m|h)",
    ),
    _both("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"),
)


def _long_name(param: click.Parameter) -> str:
    names = [name for name in param.opts if name.startswith("--")]
    return (names or param.opts)[0].lstrip("-")


def _declare(command: F, decorators: Iterable[Decorator[Any]]) -> F:
    for decorator in reversed(list(decorators)):
        command = decorator(command)
    return command


def create_options(command: F) -> F:
    """Every flag of ``service create``, listed by name in ``--help`` as docker lists them."""
    return _declare(command, [flag.create for flag in FLAGS if flag.create is not None])


def update_options(command: F) -> F:
    """Every flag of ``service update``."""
    return _declare(command, [option for flag in FLAGS for option in flag.update])


class DockerCommand(click.Command):
    """A command whose options read as docker's: listed by name, and a boolean flag with an
    attached value (``--read-only=false``, ``--detach=true``) as pflag reads it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = sorted((p for p in self.params if isinstance(p, click.Option)), key=_long_name)
        self.params = [*options, *(p for p in self.params if not isinstance(p, click.Option))]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._bool_values(args))

    def _bool_values(self, args: list[str]) -> list[str]:
        """Rewrite ``--flag=<bool>`` of boolean flags before click parses the options; stops
        at the first argument (``service create IMAGE --flag=x`` passes it to the image)."""
        takes_value: set[str] = set()
        flags: dict[str, click.Option] = {}
        for param in self.params:
            if isinstance(param, click.Option):
                for name in param.opts:
                    if param.is_flag:
                        flags[name] = param
                    else:
                        takes_value.add(name)
        out: list[str] = []
        rest = iter(args)
        for arg in rest:
            if arg == "--" or not arg.startswith("-") or arg == "-":
                return [*out, arg, *rest]
            name, sep, value = arg.partition("=")
            option = flags.get(name) if sep and name.startswith("--") else None
            truth = types.go_bool(value) if option is not None else None
            if option is not None and truth is not None:
                out += _bool_flag(option, name, truth)
                continue
            out.append(arg)
            if _value_follows(arg, takes_value):
                out.append(next(rest, ""))
        return out


def _bool_flag(option: click.Option, name: str, truth: bool) -> list[str]:
    """The plain flags that say what ``--name=<truth>`` says."""
    if truth:
        return [name]
    return [option.secondary_opts[0]] if option.secondary_opts else []


def _value_follows(arg: str, takes_value: set[str]) -> bool:
    """Whether the next argument is this option's value (``--name web``, ``-qe A=1``)."""
    if arg.startswith("--"):
        return "=" not in arg and arg in takes_value
    for i, letter in enumerate(arg[1:], start=1):
        if f"-{letter}" in takes_value:
            return i == len(arg) - 1  # the rest of the argument is the value, if any
    return False
