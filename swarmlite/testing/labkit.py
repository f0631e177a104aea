"""The lab tests' harness: the `swarmlite` CLI run as a user runs it, and a lab brought up
with `swarmlite lab up` and torn down whatever happens.

Owns `swarmlite` (one CLI call, whatever its exit status), `ok` (one that must succeed: its
stdout), `lab_up` (a context manager around one lab in a fresh short directory) and `Lab`
(that lab: its directory, its state, and the CLI on one of its hosts). The CLI runs as
``python -m swarmlite`` with this interpreter and without the caller's ``SWARMLITE_*`` and
``DOCKER_*`` settings (a test names what it wants in ``env``), on an empty stdin unless it
is given one. Does not own the lab itself (`swarmlite.lab`) nor anything a test runs in it.

Invariant: when the block of `lab_up` ends, however it ends, the lab is down (the library's
`down`, which finds a lab even when its record is lost) and its directory deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from swarmlite.lab import LabState, load
from swarmlite.lab import down as lab_down
from swarmlite.rpc import ControlClient

CLI_TIMEOUT = 300.0  # one CLI call: `lab up`, or a deploy that waits until converged
_DROPPED = ("SWARMLITE_", "DOCKER_")  # the caller's CLI settings are never the test's

L = TypeVar("L", bound="Lab")


def swarmlite(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """`swarmlite args...`, with ``env`` added to a clean environment and ``stdin`` on its
    standard input; never raises on a failed command."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    return subprocess.run(
        [sys.executable, "-m", "swarmlite", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        check=False,
    )


def ok(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = CLI_TIMEOUT,
) -> str:
    """Like `swarmlite`, but the command must succeed (AssertionError with its output
    otherwise); returns its stdout."""
    done = swarmlite(*args, env=env, stdin=stdin, timeout=timeout)
    assert done.returncode == 0, (
        f"`swarmlite {' '.join(args)}` exited {done.returncode}\n"
        f"stdout: {done.stdout}\nstderr: {done.stderr}"
    )
    return done.stdout


@dataclass
class Lab:
    """One lab that `lab_up` brought up."""

    dir: Path
    state: LabState
    shown: str  # what `swarmlite lab up` printed

    def cli_result(
        self,
        *args: str,
        on: str = "h1",
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`swarmlite -H <host on's socket> args...`, whatever its exit status; REGISTRY names
        the lab's registry (compose files name their images ``${REGISTRY}/...``)."""
        host = self.state.host(on).swarmlite_host
        env = {"REGISTRY": self.state.registry, **(env or {})}
        return swarmlite("-H", host, *args, env=env, stdin=stdin)

    def cli(
        self,
        *args: str,
        on: str = "h1",
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> str:
        """Like `cli_result`, but the command must succeed; its stdout."""
        host = self.state.host(on).swarmlite_host
        env = {"REGISTRY": self.state.registry, **(env or {})}
        return ok("-H", host, *args, env=env, stdin=stdin)

    def exec(self, host: str, *command: str, env: Mapping[str, str] | None = None) -> str:
        """`swarmlite lab exec HOST -- command...` (SWARMLITE_HOST and DOCKER_HOST are the
        host's there), which must succeed; its stdout."""
        return ok("lab", "exec", "--dir", str(self.dir), host, "--", *command, env=env)

    def control(self, on: str = "h1") -> ControlClient:
        """The CLI's own client on host ``on``'s unix socket."""
        return ControlClient.unix(self.state.host(on).swarmlite_socket, timeout=CLI_TIMEOUT)


def short_dir(prefix: str = "swl-lab-") -> Path:
    """A fresh directory under /tmp: pytest's tmp_path is too long for the unix sockets of
    the lab's daemons under it."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def force_down(directory: Path) -> None:
    """The library's `down` for the lab of ``directory`` (whatever is left of it), then the
    directory; never raises."""
    with contextlib.suppress(Exception):
        lab_down(directory)
    shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def lab_up(*flags: str, prefix: str = "swl-lab-", kind: type[L] = Lab) -> Iterator[L]:  # type: ignore[assignment]
    """`swarmlite lab up FLAGS --dir <a new short dir>` as ``kind``; down on exit whatever
    happened. AssertionError, with what `lab up` said, if it fails."""
    directory = short_dir(prefix)
    try:
        done = swarmlite("lab", "up", *flags, "--dir", str(directory))
        if done.returncode != 0:
            raise AssertionError(
                f"`swarmlite lab up {' '.join(flags)}` failed:\n{done.stderr}\n"
                "(scripts/setup installs what the lab needs)"
            )
        state = load(directory)
        assert state is not None, f"`swarmlite lab up` left no lab.json in {directory}"
        yield kind(dir=directory, state=state, shown=done.stdout)
    finally:
        force_down(directory)
