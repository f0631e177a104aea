"""`swarmlite swarm backup FILE`, and the reading side of `swarmlite init --restore FILE`.

Owns the passphrase (``--passphrase-file``, else stdin when it is not a terminal, else a
prompt: twice when a backup is written) and the backup file on this machine: written
whole or not at all, readable by its owner only. Does not own the file's format
(``ca.backup``), what a backup holds (the leader's ``SWARM_BACKUP``) nor how a cluster
starts from one (``bootstrap.restored_objects``).
"""

from __future__ import annotations

import collections
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from swarmlite.api.control import Backup, Empty
from swarmlite.api.routes import SWARM_BACKUP
from swarmlite.ca import seal_backup, unseal_backup
from swarmlite.cli.commands import client
from swarmlite.errors import InvalidArgument, UsageError

F = TypeVar("F", bound=Callable[..., Any])

PASSPHRASE_FILE_HELP = (
    "Read the backup's passphrase from this file (its first line) [default: stdin when it "
    "is not a terminal, else a prompt]."
)


def passphrase_file_option() -> Callable[[F], F]:
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=PASSPHRASE_FILE_HELP,
    )


def read_passphrase(passphrase_file: Path | None, *, confirm: bool) -> bytes:
    """The passphrase from the file, stdin or a prompt (see the module docstring)."""
    if passphrase_file is not None:
        text = passphrase_file.read_text().splitlines()
        value = text[0] if text else ""
    elif not sys.stdin.isatty():
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = click.prompt(
            "Backup passphrase", hide_input=True, confirmation_prompt=confirm, err=True
        )
    if not value:
        raise UsageError(
            "the backup passphrase is empty",
            hint="give it on stdin, in --passphrase-file PATH, or at the prompt",
        )
    return value.encode()


def load_backup(path: Path, passphrase_file: Path | None) -> Backup:
    """The Backup sealed in ``path``; raises a clear error for a wrong passphrase, a damaged
    file or a format this swarmlite does not read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the backup {path}: {exc.strerror}") from exc
    return unseal_backup(data, read_passphrase(passphrase_file, confirm=False), source=str(path))


def summary(backup: Backup) -> str:
    """`3 services, 2 networks, 4 secrets, 1 config`: what a restore keeps of a backup."""
    counts = collections.Counter(obj.KIND for obj in backup.objects)
    parts = [
        f"{counts[kind]} {kind}{'' if counts[kind] == 1 else 's'}"
        for kind in ("service", "network", "secret", "config")
    ]
    return ", ".join(parts)


def _write_private(path: Path, data: bytes) -> None:
    """``data`` into ``path`` (mode 0600) whole or not at all: a temporary file beside it,
    fsynced, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidArgument(f"cannot write the backup {path}: {exc.strerror}") from exc


@click.command("backup")
@passphrase_file_option()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(passphrase_file: Path | None, file: Path) -> None:
    """Write an encrypted backup of the cluster's state to FILE (restore it with
    `swarmlite init --restore FILE` on a new server)."""
    if not file.parent.is_dir():
        raise UsageError(f"cannot write the backup {file}: {file.parent} is not a directory")
    passphrase = read_passphrase(passphrase_file, confirm=True)
    taken = client().call(SWARM_BACKUP, Empty())
    _write_private(file, seal_backup(taken, passphrase))
    click.echo(
        f"Backup of cluster {taken.cluster_id} at raft index {taken.index} written to {file}"
    )
    click.echo(f"It holds {summary(taken)}. Keep it and its passphrase apart.")
