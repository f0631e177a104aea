"""The `swarmlite` command: its global options, its commands, and THE one error handler.

Owns what a failure looks like to a user and the exit codes: 0 success; 1 failure
(``error: <message>`` and ``hint: <hint>`` on stderr); 2 usage, ours or click's (an
unknown flag, a missing argument); 130 interrupted. With ``--format json`` the error is
written to stderr as one JSON object ``{code, message, hint, details}``; ``--debug`` adds
the traceback. Any exception that is not a SwarmliteError is a bug and is reported as an
internal error with its type. No other module of the CLI catches errors to print them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from swarmlite import log
from swarmlite.cli import render
from swarmlite.cli.client import CERT_DIR_ENV, HOST_ENV, SOCKET_ENV, Settings
from swarmlite.cli.commands.blobs import config, secret
from swarmlite.cli.commands.daemon import daemon
from swarmlite.cli.commands.dashboard import dashboard
from swarmlite.cli.commands.events import events
from swarmlite.cli.commands.lab import lab
from swarmlite.cli.commands.network import network
from swarmlite.cli.commands.node import node
from swarmlite.cli.commands.service import service
from swarmlite.cli.commands.stack import stack
from swarmlite.cli.commands.swarm import init, join, join_token, leave, swarm
from swarmlite.cli.commands.system import info, version
from swarmlite.errors import SwarmliteError, UsageError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_DEBUG_HINT = "this is a bug in swarmlite; rerun with --debug for the traceback and report it"


class SwarmliteGroup(click.Group):
    """A click group whose ``main`` renders every failure the same way and sets the exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> NoReturn:
        settings = Settings()
        try:
            code = super().main(
                args,
                prog_name or "swarmlite",
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                obj=settings,
                **extra,
            )
        except BaseException as exc:  # this is the one handler
            code = handle(exc, settings)
        raise SystemExit(code if isinstance(code, int) else EXIT_OK)


def handle(exc: BaseException, settings: Settings) -> int:
    """Print ``exc`` for a user (text or JSON, on stderr) and return the exit code."""
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.show()
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, click.Abort) and isinstance(exc.__cause__, KeyboardInterrupt)
    ):
        return EXIT_INTERRUPTED  # the user knows; click has already ended the line
    if isinstance(exc, click.UsageError):
        hint = None
        if exc.ctx is not None:
            hint = f"`{exc.ctx.command_path} --help` shows the usage"
        _show_error("usage", exc.format_message(), hint, settings, exc)
        return EXIT_USAGE
    if isinstance(exc, click.ClickException):  # a file click could not open, ...
        _show_error("invalid_argument", exc.format_message(), None, settings, exc)
        return exc.exit_code
    if isinstance(exc, SwarmliteError):
        if settings.json_errors:
            click.echo(render.swarmlite_error_json(exc, debug=settings.debug), err=True)
        else:
            click.echo(render.swarmlite_error_text(exc, debug=settings.debug), err=True)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILURE
    if isinstance(exc, click.Abort):  # end of input at a prompt
        _show_error("usage", "aborted", None, settings, exc)
        return EXIT_FAILURE
    message = f"internal error ({type(exc).__name__}): {exc}"
    hint = None if settings.debug else _DEBUG_HINT
    _show_error("internal", message, hint, settings, exc)
    return EXIT_FAILURE


def _show_error(
    code: str,
    message: str,
    hint: str | None,
    settings: Settings,
    exc: BaseException,
) -> None:
    trace = exc if settings.debug else None
    if settings.json_errors:
        click.echo(render.error_json(code, message, hint, traceback_of=trace), err=True)
    else:
        click.echo(render.error_text(message, hint, traceback_of=trace), err=True)


@click.group(
    "swarmlite",
    cls=SwarmliteGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-H",
    "--host",
    envvar=HOST_ENV,
    metavar="URL",
    help=f"Daemon to talk to: unix:///path or https://host:port (env {HOST_ENV}) "
    f"[default: the local socket, env {SOCKET_ENV}].",
)
@click.option(
    "--cert-dir",
    envvar=CERT_DIR_ENV,
    type=click.Path(file_okay=False),
    help=f"Directory with node.crt, node.key and ca.crt, for https hosts (env {CERT_DIR_ENV}).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, host: str | None, cert_dir: str | None, debug: bool) -> None:
    """swarmlite: Swarm-style clustering for compose stacks."""
    settings = ctx.ensure_object(Settings)
    settings.host, settings.cert_dir, settings.debug = host, cert_dir, debug
    if debug:
        log.setup(logging.DEBUG)


cli.add_command(swarm)
cli.add_command(init)  # the lifecycle of `swarm`, also at the top, as before
cli.add_command(join)
cli.add_command(join_token)
cli.add_command(leave)
cli.add_command(node)
cli.add_command(stack)
cli.add_command(service)
cli.add_command(network)
cli.add_command(secret)
cli.add_command(config)
cli.add_command(version)
cli.add_command(info)
cli.add_command(events)
cli.add_command(daemon)
cli.add_command(dashboard)
cli.add_command(lab)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script's entry point."""
    cli.main(argv, prog_name="swarmlite")
