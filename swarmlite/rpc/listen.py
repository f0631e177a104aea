"""Listener addresses from the command line: ``ADDR:PORT`` parsed, and checked free.

Owns what every listener flag shares: the syntax of ``--metrics-addr`` and
``--dashboard-addr`` (host and port both required, an IPv6 address in brackets, a port
1-65535) and the up-front probe that binds a port for a moment, so that a held port or an
address this host lacks is refused before a daemon starts rather than in its log
(``--listen-addr`` uses the probe too; its port is optional: ``bootstrap.split_addr``).

Errors name the flag: InvalidArgument for a malformed address, FailedPrecondition for one
that cannot be listened on.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from swarmlite.errors import FailedPrecondition, InvalidArgument


def parse_listen_addr(addr: str, flag: str, example: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[v6]:PORT``) as (host, port); ``example`` goes into the hint."""
    usage = f"{flag} must be ADDR:PORT, e.g. {example}"
    host, sep, port_text = addr.rpartition(":")
    if not sep or not host or not port_text:
        raise InvalidArgument(f"{flag} {addr!r} is not ADDR:PORT", hint=usage)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidArgument(f"{flag} {addr!r}: the port must be 1 to 65535", hint=usage)
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidArgument(f"{flag} {addr!r} is not ADDR:PORT", hint=usage)
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise InvalidArgument(f"{flag} {addr!r}: {exc}", hint=usage) from exc
    elif ":" in host:
        raise InvalidArgument(
            f"{flag} {addr!r}: write an IPv6 address in brackets, [ADDR]:PORT", hint=usage
        )
    if any(c.isspace() or c in "/?#@" for c in host):
        raise InvalidArgument(f"{flag} {addr!r}: {host!r} is not a host", hint=usage)
    return host, int(port_text)


def probe_listen(host: str, port: int, *, flag: str, what: str) -> None:
    """Bind ``host:port`` for a moment: FailedPrecondition, naming ``flag``, if this host
    cannot listen there now (``what`` says for what: "metrics", "the dashboard"...)."""
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidArgument(f"{flag} {addr!r}: unknown host {host!r}") from exc
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise FailedPrecondition(
                    f"{addr} is already in use: {what} cannot listen there",
                    hint=f"another program listens there; choose another {flag}",
                ) from exc
            raise FailedPrecondition(
                f"cannot listen on {addr} for {what}: {exc.strerror or exc}",
                hint=f"give {flag} an address of this host",
            ) from exc


def check_listen_addr(addr: str, flag: str, what: str, example: str) -> tuple[str, int]:
    """``parse_listen_addr``, then ``probe_listen``."""
    host, port = parse_listen_addr(addr, flag, example)
    probe_listen(host, port, flag=flag, what=what)
    return host, port
