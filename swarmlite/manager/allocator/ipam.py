"""Address arithmetic for the allocator: pools, free subnets, free addresses, free numbers.

Owns the cluster's default pools and how a cluster's labels override them, and the pure
choices "the first free subnet of this size in this pool", "the lowest free address of
this subnet", "the lowest free number in this range". Does not read or write the store
(``plan`` decides what is taken). IPv4 only. Invariant: a choice never returns anything
that overlaps what it was told is taken, and the same inputs give the same answer.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Collection, Container, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from swarmlite.errors import InvalidArgument
from swarmlite.log import kv

log = logging.getLogger(__name__)

DEFAULT_POOL = "10.0.0.0/8"  # overlay subnets are cut from here ...
DEFAULT_SUBNET_SIZE = 24  # ... in blocks of this prefix length
# Node mesh addresses. Not a benchmarking range (198.18.0.0/15): that one is for labs.
MESH_POOL = "100.96.0.0/16"

POOL_LABEL = "swarmlite.default-addr-pool"
SIZE_LABEL = "swarmlite.default-addr-size"
MESH_LABEL = "swarmlite.mesh-pool"

VNI_FIRST = 4096  # below are left to hand-made VXLAN segments
VNI_LAST = (1 << 24) - 1
PORT_FIRST = 30000  # ingress ports published as 0 get one of these
PORT_LAST = 32767

_DEFAULT_POOL = IPv4Network(DEFAULT_POOL)
_MESH_POOL = IPv4Network(MESH_POOL)


@dataclass(frozen=True, slots=True)
class Pools:
    """Where overlay subnets and mesh addresses come from."""

    default_pool: IPv4Network = _DEFAULT_POOL
    subnet_size: int = DEFAULT_SUBNET_SIZE
    mesh_pool: IPv4Network = _MESH_POOL

    def __post_init__(self) -> None:
        if not self.default_pool.prefixlen <= self.subnet_size <= 30:
            raise InvalidArgument(
                f"subnet size /{self.subnet_size} does not fit pool {self.default_pool}",
                hint="use a prefix length between the pool's and 30",
            )

    def with_labels(self, labels: Mapping[str, str]) -> Pools:
        """These pools overridden by the cluster's labels; a bad label is logged and ignored."""
        changes: dict[str, object] = {}
        try:
            if POOL_LABEL in labels:
                changes["default_pool"] = parse_network(labels[POOL_LABEL])
            if SIZE_LABEL in labels:
                changes["subnet_size"] = parse_size(labels[SIZE_LABEL])
            if MESH_LABEL in labels:
                changes["mesh_pool"] = parse_network(labels[MESH_LABEL])
            return replace(self, **changes)  # type: ignore[arg-type]
        except InvalidArgument as exc:
            log.warning("ignoring the cluster's address pool labels %s", kv(error=exc.message))
            return self


def parse_network(text: str) -> IPv4Network:
    """``"10.0.1.0/24"`` (host bits are dropped); InvalidArgument if it is not IPv4 CIDR."""
    try:
        return IPv4Network(text.strip(), strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"{text!r} is not an IPv4 subnet (like 10.0.1.0/24)") from exc


def parse_size(text: str) -> int:
    """``"24"`` or ``"/24"``: a prefix length."""
    try:
        size = int(text.strip().lstrip("/"))
    except ValueError as exc:
        raise InvalidArgument(f"{text!r} is not a prefix length (like 24)") from exc
    if not 1 <= size <= 30:
        raise InvalidArgument(f"prefix length {size} is out of range 1..30")
    return size


def parse_interface(text: str) -> IPv4Interface | None:
    """``"10.0.1.5/24"`` as an interface; None when it is empty or malformed."""
    if not text:
        return None
    try:
        return IPv4Interface(text)
    except ValueError:
        return None


def parse_address(text: str) -> IPv4Address | None:
    """A bare IPv4 address (or the address of ``host:port``); None otherwise."""
    host = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    try:
        return IPv4Address(host.strip("[]"))
    except ValueError:
        return None


def free_subnet(pool: IPv4Network, size: int, taken: Collection[IPv4Network]) -> IPv4Network | None:
    """The lowest /``size`` block of ``pool`` that overlaps nothing in ``taken``."""
    if size < pool.prefixlen:
        return None
    block = 1 << (32 - size)
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in taken)
    last = int(pool.broadcast_address)
    start = int(pool.network_address)
    while start + block - 1 <= last:
        end = start + block - 1
        hit = max((hi for lo, hi in spans if lo <= end and hi >= start), default=None)
        if hit is None:
            return IPv4Network((start, size))
        start = (hit // block + 1) * block  # the next block past what was hit
    return None


def free_address(subnet: IPv4Network, taken: Collection[IPv4Address]) -> IPv4Address | None:
    """The lowest host address of ``subnet`` not in ``taken`` (never network or broadcast)."""
    first, last = int(subnet.network_address) + 1, int(subnet.broadcast_address) - 1
    if subnet.prefixlen >= 31:
        first, last = int(subnet.network_address), int(subnet.broadcast_address)
    # Compare integers: building an IPv4Address per candidate made each choice cost
    # microseconds per address already taken (1,000 nodes' ingress addresses: seconds).
    held = {int(a) for a in taken}
    for value in range(first, last + 1):
        if value not in held:
            return IPv4Address(value)
    return None


def host_range(subnet: IPv4Network) -> tuple[int, int]:
    """The first and last address of ``subnet`` a holder may get (as integers): never the
    network or broadcast address, except in a /31 or /32, which have none."""
    if subnet.prefixlen >= 31:
        return int(subnet.network_address), int(subnet.broadcast_address)
    return int(subnet.network_address) + 1, int(subnet.broadcast_address) - 1


class AddressPool:
    """The addresses of one subnet that something holds, with how many are free, in O(1).

    Kept by the allocator across rounds (``holdings``): ``hold``/``release`` count holders
    per address (a broken state may have two), ``free`` is the number of host addresses no
    one holds, and ``lowest_free`` the lowest of them. ``subnet`` may be unknown (None)
    while the network is not allocated: holds are counted, nothing is free.
    """

    def __init__(self, subnet: IPv4Network | None = None) -> None:
        self.held: Counter[int] = Counter()
        self.subnet: IPv4Network | None = None
        self.first, self.last = 1, 0
        self._inside = 0  # distinct held addresses within first..last
        self._low = 1  # no address in first..low-1 is free
        self.set_subnet(subnet)

    def set_subnet(self, subnet: IPv4Network | None) -> None:
        if subnet == self.subnet:
            return
        self.subnet = subnet
        self.first, self.last = host_range(subnet) if subnet is not None else (1, 0)
        self._inside = sum(1 for value in self.held if self.first <= value <= self.last)
        self._low = self.first

    @property
    def free(self) -> int:
        return max(0, self.last - self.first + 1 - self._inside)

    def hold(self, value: int) -> None:
        self.held[value] += 1
        if self.held[value] == 1 and self.first <= value <= self.last:
            self._inside += 1

    def release(self, value: int) -> None:
        count = self.held.get(value, 0)
        if count > 1:
            self.held[value] = count - 1
            return
        if count == 1:
            del self.held[value]
            if self.first <= value <= self.last:
                self._inside -= 1
                self._low = min(self._low, value)

    def lowest_free(self, skip: Container[int] = (), start: int = 0) -> int | None:
        """The lowest free address not in ``skip`` and not below ``start``; None when there
        is none. Callers check ``free`` first: a full pool is never searched."""
        held = self.held
        value = max(self.first, self._low)
        while value <= self.last and value in held:  # held from the start: never again
            value += 1
        self._low = value
        value = max(value, start)
        while value <= self.last:
            if value not in held and value not in skip:
                return value
            value += 1
        return None


def free_number(first: int, last: int, taken: Collection[int]) -> int | None:
    """The lowest number in ``first..last`` not in ``taken``."""
    for value in range(first, last + 1):
        if value not in taken:
            return value
    return None


def first_host(subnet: IPv4Network) -> IPv4Address:
    """The gateway a subnet gets by default: its first address."""
    return IPv4Address(int(subnet.network_address) + 1)


def interface(address: IPv4Address, subnet: IPv4Network) -> str:
    """``"10.0.1.5/24"``: an address with its subnet's prefix, as objects store it."""
    return str(ipaddress.IPv4Interface((address, subnet.prefixlen)))
