"""Network namespaces as hosts on one underlay bridge, for the network/ component tests.

`underlay` is a "switch" namespace holding the bridge br0 (kept out of the root namespace,
where Docker's FORWARD policy would drop bridged frames). `netns_factory(label)` makes a
host namespace with eth0 (a veth whose other end is a port of br0) at 198.18.77.<n>/24, lo
up and IPv6 off (quiet captures). A host can run code inside itself three ways:

* `host.run(fn)`: fn on a fresh thread that entered the namespace (setns), blocking;
* `await host.call(coro)`: a coroutine on the host's own event loop, a thread that stays
  in the namespace for the whole test (so child processes it starts live there too);
* `host.popen(argv)` / `host.sh(argv)`: a command under `nsenter --net=`.

Everything is removed at teardown, also when the test fails: the hosts' loops are stopped,
processes started with popen are killed by pid, veths and namespaces deleted. Names carry
a random tag, so that tests running side by side on one machine never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

UNDERLAY_NET = "198.18.77"
BRIDGE = "br0"
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _sysctl(path: str, key: str, value: str) -> None:
    def write() -> None:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)

    run_in(path, write)


def run_in(path: str, fn: Callable[[], T]) -> T:
    """fn() on a fresh thread inside the namespace at `path`."""
    box: list[tuple[bool, Any]] = []

    def body() -> None:
        try:
            _enter(path)
            box.append((True, fn()))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    result: T = value
    return result


class NsLoop:
    """An asyncio loop on a thread that lives in one network namespace."""

    def __init__(self, path: str) -> None:
        self.loop = asyncio.new_event_loop()
        ready: Future[None] = Future()

        def body() -> None:
            try:
                _enter(path)
            except OSError as exc:
                ready.set_exception(exc)
                return
            asyncio.set_event_loop(self.loop)
            ready.set_result(None)
            self.loop.run_forever()
            # Let anything still pending finish its cancellation, then close.
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

        self.thread = threading.Thread(target=body, daemon=True, name=f"nsloop:{path}")
        self.thread.start()
        ready.result(timeout=10)

    async def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@dataclass
class Netns:
    """A host: a network namespace with eth0 on the underlay bridge."""

    name: str
    label: str
    address: str  # underlay address, no prefix
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _loop: NsLoop | None = None

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def run(self, fn: Callable[[], T]) -> T:
        return run_in(self.path, fn)

    @property
    def loop(self) -> NsLoop:
        if self._loop is None:
            self._loop = NsLoop(self.path)
        return self._loop

    async def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return await self.loop.call(coro, timeout)

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["nsenter", f"--net={self.path}", *argv], **kwargs)
        self.procs.append(proc)
        return proc

    def sh(self, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--net={self.path}", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def close(self) -> None:
        if self._loop is not None:
            self._loop.stop()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@dataclass
class Underlay:
    """The switch namespace and its bridge."""

    name: str
    hosts: list[Netns] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["nsenter", f"--net={self.path}", *argv], **kwargs)


@pytest.fixture
def underlay() -> Iterator[Underlay]:
    tag = secrets.token_hex(3)
    switch = Underlay(name=f"swlt{tag}-sw")
    _ip("netns", "add", switch.name)
    try:
        _sysctl(switch.path, "net.ipv6.conf.default.disable_ipv6", "1")
        _sysctl(switch.path, "net.ipv6.conf.all.disable_ipv6", "1")
        _ip("-n", switch.name, "link", "set", "lo", "up")
        _ip("-n", switch.name, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", switch.name, "link", "set", BRIDGE, "up")
        yield switch
    finally:
        for host in switch.hosts:
            with contextlib.suppress(Exception):
                host.close()
        for host in switch.hosts:
            # Bridge-side ends first: `ip netns del` is asynchronous.
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("-n", switch.name, "link", "del", f"v-{host.label}")
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", host.name)
        _ip("netns", "del", switch.name)


NetnsFactory = Callable[[str], Netns]


@pytest.fixture
def netns_factory(underlay: Underlay) -> NetnsFactory:
    """make(label) -> a new host on the underlay, 198.18.77.<n>/24 for the n-th host."""

    def make(label: str) -> Netns:
        if len(label) > 12 or not label.isalnum():
            raise ValueError(f"label {label!r}: up to 12 letters and digits")
        index = len(underlay.hosts) + 1
        tag = underlay.name.removesuffix("-sw")
        host = Netns(name=f"{tag}-{label}", label=label, address=f"{UNDERLAY_NET}.{index}")
        _ip("netns", "add", host.name)
        underlay.hosts.append(host)
        _sysctl(host.path, "net.ipv6.conf.default.disable_ipv6", "1")
        _sysctl(host.path, "net.ipv6.conf.all.disable_ipv6", "1")
        _ip("-n", host.name, "link", "set", "lo", "up")
        port = f"v-{label}"
        _ip("-n", underlay.name, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", host.name)  # fmt: skip
        _ip("-n", underlay.name, "link", "set", port, "master", BRIDGE, "up")
        _ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.name, "link", "set", "eth0", "up")
        return host

    return make
