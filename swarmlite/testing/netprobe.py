"""One TCP connection attempt, said in words a test can compare: what reaches what.

Owns `dial`, which network tests (component and lab alike) use to check that a container
reaches an address, or that it does not and how the kernel refused it, and `http_bodies`,
what a web service (the test image ``swl/web``) answers on fresh connections. Both run in
the calling thread's network namespace; ``swarmlite.network.ip.run_in_netns`` (or
`dial_from`) puts them in another. Neither raises for a failed connection: the failure is
the answer.
"""

from __future__ import annotations

import contextlib
import errno
import socket

from swarmlite.network.ip import run_in_netns


def dial(addr: str, port: int, timeout: float) -> str:
    """``"ok"`` once a TCP connection to ``addr:port`` is made (then closed), else ``"error:
    timeout"`` or ``"error: <errno name>"`` (ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ...)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect((addr, port))
        except TimeoutError:
            return "error: timeout"
        except OSError as exc:
            return f"error: {errno.errorcode.get(exc.errno or 0, str(exc))}"
    return "ok"


def dial_from(netns: str, addr: str, port: int, timeout: float) -> str:
    """`dial` from inside network namespace ``netns`` (a name under /run/netns or a path
    such as ``/proc/<pid>/ns/net``)."""
    return run_in_netns(netns, lambda: dial(addr, port, timeout))


def http_bodies(addr: str, port: int, count: int, timeout: float = 2.0) -> list[str]:
    """``count`` HTTP/1.0 GETs of ``/``, each on a fresh connection to ``addr:port``: the
    bodies (stripped) of those answered 200; a refused, failed or other answer is left out."""
    bodies = []
    for _ in range(count):
        with (
            contextlib.suppress(OSError),
            socket.create_connection((addr, port), timeout) as conn,
        ):
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0]:
                bodies.append(body.decode(errors="replace").strip())
    return bodies
