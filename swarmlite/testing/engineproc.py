"""A private Engine API daemon as our child, for tests and the lab: what dockerd and Podman share.

Owns `EngineProcess`, the life of one daemon that serves the Docker Engine API on a unix
socket under a directory of its own: start it (as root, under an optional command prefix
such as ``nsenter --net=...``), wait until ``/_ping`` answers, and stop it (remove its
containers, SIGTERM, then SIGKILL), then unmount and delete that directory. `testing.dockerd`
and `testing.podman` say which binary runs with which arguments and what else to clean
up (hooks `_binary`, `_argv`, `_terminate`, `_release_cgroups`). Also owns
`engine_request` and `engine_json`, a tiny synchronous Engine API client over a unix socket
for test helpers (the runtime driver itself uses aiodocker).

Invariant: after `stop()`, the process is gone, nothing stays mounted under its directory,
and the directory is deleted; a failed `start()` has stopped it already. Foreign errors
(OSError, subprocess) become FailedPrecondition / RuntimeUnavailable.
"""

from __future__ import annotations

import abc
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import quote

from swarmlite.errors import FailedPrecondition, RuntimeFailure, RuntimeUnavailable
from swarmlite.log import kv
from swarmlite.testing.cleanup import unmount_under

log = logging.getLogger(__name__)

SOCKET_DIR = "/tmp"  # short on purpose: a unix socket path must stay under ~100 bytes


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def engine_request(
    socket_path: str | Path,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[int, bytes]:
    """One Engine API call (unversioned path like ``/containers/json``): status and body.

    RuntimeUnavailable when the socket does not answer.
    """
    conn = _UnixHTTPConnection(str(socket_path), timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError as exc:
        raise RuntimeUnavailable(f"dockerd at {socket_path} does not answer: {exc}") from exc
    finally:
        conn.close()


def engine_json(socket_path: str | Path, method: str, path: str, body: Any = None) -> Any:
    """An Engine API call with a JSON body and answer; RuntimeFailure on a 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    status, raw = engine_request(
        socket_path, method, path, data, headers={"Content-Type": "application/json"}
    )
    if status >= 400:
        raise RuntimeFailure(f"{method} {path}: {status} {raw.decode(errors='replace')}")
    return json.loads(raw) if raw.strip() else None


class EngineProcess(abc.ABC):
    """``Subclass(root).start()`` ... ``stop()``; also a context manager.

    ``command_prefix`` runs the daemon under a command that execs it (in a network
    namespace: ``["nsenter", "--net=/run/netns/h1"]``, never ``ip netns exec``).
    """

    name: ClassVar[str]  # in messages and logs: "dockerd", "podman system service"
    install_hint: ClassVar[str]
    socket_name: ClassVar[str]  # the API socket, under root
    log_name: ClassVar[str]  # the daemon's stdout and stderr, under root
    temp_prefix: ClassVar[str]  # of `in_temp_dir`'s directory

    def __init__(
        self,
        root: Path,
        *,
        command_prefix: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.root = root
        self.socket = root / self.socket_name
        self.logfile = root / self.log_name
        self.env: Mapping[str, str] = {}  # added to ours for the daemon's process
        self._prefix = list(command_prefix)
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def in_temp_dir(cls, **kwargs: Any) -> Self:
        """A daemon under a fresh short directory ``/tmp/<temp_prefix>XXXX`` (removed by
        `stop`)."""
        return cls(Path(tempfile.mkdtemp(prefix=cls.temp_prefix, dir=SOCKET_DIR)), **kwargs)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ what differs

    @abc.abstractmethod
    def _binary(self) -> str:
        """The daemon's executable; FailedPrecondition if it (or what it needs) is missing."""

    @abc.abstractmethod
    def _argv(self, binary: str) -> list[str]:
        """The daemon's command line (without the prefix); may write its configuration under
        root (which exists) and set `env`."""

    def _terminate(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored SIGTERM, killing it %s", self.name, kv(pid=proc.pid))
            proc.kill()
            proc.wait()

    def _release_cgroups(self) -> None:  # noqa: B027 - an optional hook: nothing by default
        """Remove the cgroups the daemon's containers had (before root is deleted)."""

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        """Start the daemon and wait until ``/_ping`` answers; FailedPrecondition if it
        cannot."""
        binary = self._binary()
        if os.geteuid() != 0:
            raise FailedPrecondition(f"a private {self.name} needs root", hint=self.install_hint)
        if len(str(self.socket)) > 100:
            raise FailedPrecondition(f"socket path too long for a unix socket: {self.socket}")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [*self._prefix, *self._argv(binary)]
        with self.logfile.open("ab") as out:
            self._proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
            )
        log.info("%s starting %s", self.name, kv(pid=self._proc.pid, root=self.root))
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._log_tail()
                self.stop()
                raise FailedPrecondition(
                    f"{self.name} exited with {self._proc.returncode} at start-up:\n{tail}",
                    hint=self.install_hint,
                )
            if self._ping():
                log.info("%s ready %s", self.name, kv(pid=self._proc.pid, socket=self.socket))
                return
            time.sleep(0.1)
        tail = self._log_tail()
        self.stop()
        raise FailedPrecondition(
            f"{self.name} did not answer within {self._startup_timeout} s:\n{tail}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """Remove its containers, stop it (SIGTERM, then SIGKILL), remove its containers'
        cgroups, unmount, delete."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._remove_containers()
            self._terminate(proc, timeout)
        self._release_cgroups()
        unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        self._proc = None

    def _ping(self) -> bool:
        try:
            status, body = engine_request(self.socket, "GET", "/_ping", timeout=2.0)
        except RuntimeUnavailable:
            return False
        return status == 200 and body == b"OK"

    def _remove_containers(self) -> None:
        try:
            containers = engine_json(self.socket, "GET", "/containers/json?all=1")
        except (RuntimeUnavailable, RuntimeFailure) as exc:
            log.warning("could not list containers before stopping %s", kv(error=exc))
            return
        for container in containers or []:
            cid = quote(container["Id"])
            try:
                engine_request(self.socket, "DELETE", f"/containers/{cid}?force=1&v=1")
            except RuntimeUnavailable as exc:
                log.warning("could not remove container %s", kv(id=cid, error=exc))

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
