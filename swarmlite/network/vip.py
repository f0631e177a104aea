"""VIPs and the routing mesh: spread new connections over a service's tasks with nftables.

Owns the table ``ip swarmlite`` of one node (one network namespace): what a connection to a
service's VIP, or to a published port on any of this node's addresses, is rewritten to.
Does not own addresses, bridges or routes (overlay.py and attach.py), nor which tasks are in
rotation (the manager sends that, healthy tasks only, in EndpointInfo and PublishedPort).

Invariant: the table is changed in place, one nft transaction per `apply`, and only where the
wanted state differs from what the kernel holds (read back before each apply): a change of
one service's backends touches only that service's map elements (and its one rule when the
number of backends changes). Only the first packet of a connection passes NAT chains, so a
change spreads new connections only; established ones keep their backend through conntrack.
The table is deleted and rebuilt in one transaction only when its base layout (below) is not
the one this code writes (first start, or an upgrade).

Layout of ``table ip swarmlite`` (nft syntax; N = number of backends)::

  map to_vip_port   ipv4_addr . inet_service : verdict   VIP . port -> goto vip_<VIP>
  map to_vip        ipv4_addr : verdict                  VIP (every port) -> goto vip_<VIP>
  map to_published  inet_proto . inet_service : verdict  tcp . 8080 -> goto pp_tcp_8080
  set ingress_addrs ipv4_addr      the addresses published ports answer on (if restricted)
  set ingress_ifaces ifname        the ingress network's bridge

  chain nat_prerouting (nat, prerouting, -100)  and  nat_output (nat, output, -100):
    meta l4proto {tcp, udp} ip daddr . th dport vmap @to_vip_port
    meta l4proto {tcp, udp} ip daddr vmap @to_vip
    meta l4proto {tcp, udp} <local address> meta l4proto . th dport vmap @to_published
      where <local address> is "fib daddr type local ip daddr != 127.0.0.0/8" (every
      address of this node but loopback) or "ip daddr @ingress_addrs" (when given)
  chain vip_<a_b_c_d> + map vip_<a_b_c_d> (typeof numgen : ip daddr, 0..N-1 -> task address)
    dnat to numgen inc mod N map @vip_<a_b_c_d>
  chain pp_<proto>_<port> + map pp_<proto>_<port> (0..N-1 -> task address)
    + counter pp_<proto>_<port>_<service id> (pp_<proto>_<port> when the port names none)
    meta l4proto <proto> counter name "<that counter>" dnat to numgen inc mod N map
      @pp_<proto>_<port> : <target port>
  a unit (vip_ or pp_ chain) without backends instead sets the REFUSE mark:
    meta mark set meta mark | REFUSE
  chain nat_postrouting (nat, postrouting, 100):
    oifname @ingress_ifaces ct status dnat masquerade   routing mesh: replies come back here
  chains filter_input/forward/output (filter, 0): meta mark & REFUSE == REFUSE goto refuse
  chain refuse: reject with tcp reset (tcp), icmp port-unreachable (udp): clients fail fast

Round robin is ``numgen inc``: each unit's rule keeps its own position. Host-mode ports are
units like ingress ones; their task answers through this node (its gateway), and they are
absent when no task of theirs runs here. The first rule of nat_prerouting carries a comment
``swarmlite layout=<digest>`` naming the base layout; each unit's rule carries a comment
saying what it was built for, so a later apply knows whether to rewrite it.

Requests: each published port's counter counts the connections its DNAT rule sent to the
port's tasks. Only the first packet of a connection passes NAT chains, so it counts new
connections (for UDP, new conntrack flows), not requests: keep-alive requests on one
connection count once, and a refused connection (no backends) not at all. A counter is a
named object, not part of the rule, so rewriting the rule (backends added or removed) keeps
the count; it starts again from 0 when the port's unit is removed and made again (a host-mode
port whose last local task left), when another service takes the port (its name carries the
service id, so one service's count never passes to another), and when the table is rebuilt.
Readers treat a count that went down as one that started again. The counters' values never
enter the comparison that decides what to rewrite (the rules' comments do), so reading them
changes nothing.

VIP connections are not masqueraded: every node's bridge of a network carries the same
gateway address, so a task on another node would answer the gateway of its own node. The
client and the task share the network's segment, and the task's reply, bridged through the
client's node, meets that node's conntrack there (br_netfilter: net.bridge.bridge-nf-call-
iptables=1, which RoutingMesh turns on in its namespace) and is rewritten back to the VIP.

The packet mark bit REFUSE (0x00200000) is set only on the first packet of a connection, in
our own chains. Foreign errors come from nft.py as NetworkSetupFailure; a malformed endpoint
or port is logged and skipped, so one bad entry does not stop the others from being served.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from swarmlite.api.control import EndpointInfo, PublishedPort
from swarmlite.errors import NetworkSetupFailure
from swarmlite.log import kv
from swarmlite.network.ip import run_in_netns
from swarmlite.network.nft import Backend, Nft

log = logging.getLogger(__name__)

FAMILY = "ip"
TABLE = "swarmlite"
MARK_REFUSE = 0x00200000
LAYOUT_VERSION = 1

_T = f"{FAMILY} {TABLE}"
_PROTOCOLS = ("tcp", "udp")
_PROTO_NUMBERS = {6: "tcp", 17: "udp"}
_UNIT_PREFIXES = ("vip_", "pp_")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_SERVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_COUNTER = re.compile(r"^pp_(tcp|udp)_([0-9]{1,5})(?:_(.+))?$")


# --------------------------------------------------------------------------- what we want


@dataclass(frozen=True)
class Unit:
    """One service's spreading: a chain named `name` and a map of the same name."""

    name: str
    backends: tuple[str, ...]
    proto: str | None = None  # published ports: the protocol matched before the port rewrite
    port: int | None = None  # the port to DNAT to; None keeps the destination port (VIPs)
    counter: str | None = None  # published ports: the named counter of the connections sent

    @property
    def comment(self) -> str:
        """What the unit's rule was built for: a later apply rewrites it when this differs.

        Names the counter the rule feeds, so that a rule made before counters, or for
        another service, is rewritten; never the counter's value.
        """
        port = self.port if self.port is not None else "same"
        comment = f"backends={len(self.backends)} port={port}"
        if self.counter is not None and self.backends:
            comment += f" counter={self.counter}"
        return comment

    def rule(self) -> str:
        """The body of the unit's one rule (after ``add rule ip swarmlite <name>``)."""
        comment = f'comment "{self.comment}"'
        if not self.backends:
            return f"meta mark set meta mark or {MARK_REFUSE:#010x} {comment}"
        parts: list[str] = []
        if self.proto is not None:
            parts.append(f"meta l4proto {self.proto}")
        if self.counter is not None:
            parts.append(f'counter name "{self.counter}"')
        target = f"dnat to numgen inc mod {len(self.backends)} map @{self.name}"
        if self.port is not None:
            target += f" : {self.port}"
        parts += [target, comment]
        return " ".join(parts)

    def elements(self) -> dict[int, str]:
        return dict(enumerate(self.backends))


@dataclass(frozen=True)
class Wanted:
    """The table's content (besides its base layout) for one set of endpoints and ports."""

    units: dict[str, Unit] = field(default_factory=dict)
    to_vip_port: dict[tuple[str, int], str] = field(default_factory=dict)
    to_vip: dict[str, str] = field(default_factory=dict)
    to_published: dict[tuple[str, int], str] = field(default_factory=dict)
    ingress_addrs: frozenset[str] = frozenset()
    ingress_ifaces: frozenset[str] = frozenset()


def vip_unit_name(vip: str) -> str:
    """The chain and map of a VIP: "vip_10_0_1_2"."""
    return "vip_" + vip.replace(".", "_")


def port_unit_name(proto: str, published: int) -> str:
    """The chain and map of a published port: "pp_tcp_8080"."""
    return f"pp_{proto}_{published}"


def port_counter_name(proto: str, published: int, service_id: str) -> str:
    """The counter of a published port's connections: "pp_tcp_8080_<service id>", or
    "pp_tcp_8080" when the service id is unknown (from an older manager) or unfit for a
    name (then its connections are counted but go to no service)."""
    name = port_unit_name(proto, published)
    return f"{name}_{service_id}" if _SERVICE_ID.match(service_id) else name


def _ipv4(text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text.split("/", 1)[0]))
    except ValueError:
        return None


def _backends(addresses: Iterable[str]) -> tuple[str, ...] | None:
    """The sorted, distinct IPv4 addresses; None if any of them is not one."""
    found = {_ipv4(a) for a in addresses}
    if None in found:
        return None
    return tuple(sorted((a for a in found if a is not None), key=ipaddress.IPv4Address))


def wanted_state(
    endpoints: Iterable[EndpointInfo],
    ports: Iterable[PublishedPort],
    *,
    ingress_addrs: Iterable[str] = (),
    ingress_bridge: str = "",
) -> Wanted:
    """The units and dispatch entries for these endpoints and published ports (pure).

    Endpoints in dnsrr mode or without a VIP have no unit. A published port in host mode
    without a local task is not published here. Malformed entries are logged and skipped;
    the first of two claims on one VIP or one published port wins.
    """
    wanted = Wanted(
        ingress_addrs=frozenset(a for a in (_ipv4(x) for x in ingress_addrs) if a),
        ingress_ifaces=frozenset([ingress_bridge]) if ingress_bridge else frozenset(),
    )
    for ep in endpoints:
        if ep.mode != "vip" or not ep.vip:
            continue
        vip = _ipv4(ep.vip)
        backends = _backends(ep.backends)
        bad_ports = [p for p in ep.ports if not 0 < p < 65536]
        if vip is None or backends is None or bad_ports:
            log.warning(
                "skipping malformed endpoint %s",
                kv(service=ep.service_id, network=ep.network_id, vip=ep.vip),
            )
            continue
        name = vip_unit_name(vip)
        if name in wanted.units:
            log.warning(
                "skipping endpoint: VIP already served %s", kv(service=ep.service_id, vip=vip)
            )
            continue
        wanted.units[name] = Unit(name=name, backends=backends)
        if ep.ports:
            for port in sorted(set(ep.ports)):
                wanted.to_vip_port[(vip, port)] = name
        else:
            wanted.to_vip[vip] = name
    for pp in ports:
        backends = _backends(pp.backends)
        valid = (
            pp.protocol in _PROTOCOLS
            and pp.mode in ("ingress", "host")
            and 0 < pp.published < 65536
            and 0 < pp.target < 65536
            and backends is not None
        )
        if not valid or backends is None:
            log.warning(
                "skipping malformed published port %s",
                kv(published=pp.published, protocol=pp.protocol, mode=pp.mode),
            )
            continue
        if pp.mode == "host" and not backends:
            continue
        name = port_unit_name(pp.protocol, pp.published)
        if name in wanted.units:
            log.warning("skipping published port: already published %s", kv(port=name))
            continue
        if pp.service_id and not _SERVICE_ID.match(pp.service_id):
            log.warning(
                "published port's service id unfit for a counter name %s",
                kv(port=name, service=pp.service_id[:80]),
            )
        counter = port_counter_name(pp.protocol, pp.published, pp.service_id)
        wanted.units[name] = Unit(
            name=name, backends=backends, proto=pp.protocol, port=pp.target, counter=counter
        )
        wanted.to_published[(pp.protocol, pp.published)] = name
    return wanted


# --------------------------------------------------------------------------- base layout


@dataclass(frozen=True)
class Base:
    """The table's fixed part: the commands that create it, and the tag that names it."""

    commands: tuple[str, ...]
    tag: str


def base_script(*, any_local_address: bool) -> Base:
    """The table's fixed part for this node's choice of addresses (pure)."""
    local = (
        "fib daddr type local ip daddr != 127.0.0.0/8"
        if any_local_address
        else "ip daddr @ingress_addrs"
    )
    l4 = "meta l4proto { tcp, udp }"
    lines = [
        f"add table {_T}",
        f"add map {_T} to_vip_port {{ type ipv4_addr . inet_service : verdict; }}",
        f"add map {_T} to_vip {{ type ipv4_addr : verdict; }}",
        f"add map {_T} to_published {{ type inet_proto . inet_service : verdict; }}",
        f"add set {_T} ingress_addrs {{ type ipv4_addr; }}",
        f"add set {_T} ingress_ifaces {{ type ifname; }}",
        f"add chain {_T} refuse",
        f"add rule {_T} refuse meta l4proto tcp reject with tcp reset",
        f"add rule {_T} refuse reject",
    ]
    for chain, hook in (("nat_prerouting", "prerouting"), ("nat_output", "output")):
        lines += [
            f"add chain {_T} {chain} {{ type nat hook {hook} priority -100; policy accept; }}",
            f"add rule {_T} {chain} {l4} ip daddr . th dport vmap @to_vip_port",
            f"add rule {_T} {chain} {l4} ip daddr vmap @to_vip",
            f"add rule {_T} {chain} {l4} {local} meta l4proto . th dport vmap @to_published",
        ]
    lines += [
        f"add chain {_T} nat_postrouting"
        " { type nat hook postrouting priority 100; policy accept; }",
        f"add rule {_T} nat_postrouting oifname @ingress_ifaces ct status dnat masquerade",
    ]
    for chain, hook in (
        ("filter_input", "input"),
        ("filter_forward", "forward"),
        ("filter_output", "output"),
    ):
        lines += [
            f"add chain {_T} {chain} {{ type filter hook {hook} priority 0; policy accept; }}",
            f"add rule {_T} {chain} meta mark & {MARK_REFUSE:#010x} == {MARK_REFUSE:#010x}"
            " goto refuse",
        ]
    digest = hashlib.sha256("\n".join([str(LAYOUT_VERSION), *lines]).encode()).hexdigest()
    tag = f"swarmlite layout={digest[:16]}"
    # The tag goes on nat_prerouting's first rule, where parse_table looks for it.
    first = f"add rule {_T} nat_prerouting {l4} ip daddr . th dport vmap @to_vip_port"
    return Base(
        commands=tuple(f'{line} comment "{tag}"' if line == first else line for line in lines),
        tag=tag,
    )


# --------------------------------------------------------------------------- what there is


@dataclass
class Current:
    """What the kernel holds in the table, as far as `plan` needs it."""

    handle: int = 0
    layout: str = ""  # the comment on nat_prerouting's first rule
    chains: set[str] = field(default_factory=set)
    unit_rules: dict[str, list[str]] = field(default_factory=dict)  # chain -> its rules' comments
    maps: dict[str, dict[Any, Any]] = field(default_factory=dict)  # map or set -> elements
    sets: dict[str, set[str]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)  # named counter -> its packets


def parse_table(objects: list[dict[str, Any]]) -> Current:
    """Read `nft -j list table ip swarmlite` objects into a Current (pure)."""
    cur = Current()
    first_rule_seen: set[str] = set()
    for obj in objects:
        if "table" in obj:
            cur.handle = int(obj["table"].get("handle", 0))
        elif "chain" in obj:
            name = obj["chain"]["name"]
            cur.chains.add(name)
            if name.startswith(_UNIT_PREFIXES):
                cur.unit_rules.setdefault(name, [])
        elif "rule" in obj:
            rule = obj["rule"]
            chain, comment = rule["chain"], str(rule.get("comment", ""))
            if chain == "nat_prerouting" and chain not in first_rule_seen:
                cur.layout = comment
            first_rule_seen.add(chain)
            if chain.startswith(_UNIT_PREFIXES):
                cur.unit_rules.setdefault(chain, []).append(comment)
        elif "map" in obj:
            m = obj["map"]
            cur.maps[m["name"]] = {
                _key(_plain(k)): _data(_plain(v)) for k, v in (m.get("elem") or [])
            }
        elif "set" in obj:
            s = obj["set"]
            cur.sets[s["name"]] = {str(_plain(e)) for e in (s.get("elem") or [])}
        elif "counter" in obj:
            c = obj["counter"]
            cur.counters[c["name"]] = int(c.get("packets", 0))
    return cur


def _plain(value: Any) -> Any:
    """An element without its options ({"elem": {"val": ...}} when it has a comment...)."""
    if isinstance(value, dict) and "elem" in value:
        return value["elem"].get("val")
    return value


def _key(value: Any) -> Any:
    if isinstance(value, dict) and "concat" in value:
        parts = value["concat"]
        return tuple(
            _PROTO_NUMBERS.get(p, p) if isinstance(p, int) and i == 0 else p
            for i, p in enumerate(parts)
        )
    return value


def _data(value: Any) -> Any:
    if isinstance(value, dict):
        for verdict in ("goto", "jump"):
            if verdict in value:
                return value[verdict]["target"]
    return value


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class PortCount:
    """What one published port's counter says (see the module's note on requests)."""

    service_id: str  # the service the port was published for; "" when it named none
    connections: int  # new connections sent to its tasks since the counter was made


def port_counts(current: Current) -> dict[tuple[str, int], PortCount]:
    """The counters of published ports by (protocol, published port) (pure)."""
    counts: dict[tuple[str, int], PortCount] = {}
    for name, packets in sorted(current.counters.items()):
        found = _COUNTER.match(name)
        if found is None:
            continue
        proto, port, service_id = found.group(1), int(found.group(2)), found.group(3) or ""
        # plan leaves one counter per port; of a stray one made by hand, the first name wins.
        counts.setdefault((proto, port), PortCount(service_id=service_id, connections=packets))
    return counts


def requests_by_service(counts: Iterable[PortCount]) -> dict[str, int]:
    """The connections of every port of a service, added up, by service id (pure).

    Ports that named no service are left out.
    """
    totals: dict[str, int] = {}
    for count in counts:
        if count.service_id:
            totals[count.service_id] = totals.get(count.service_id, 0) + count.connections
    return totals


# --------------------------------------------------------------------------- the change


def plan(current: Current | None, wanted: Wanted, base: Base) -> list[str]:
    """The commands (one transaction) that turn `current` into `wanted` (pure).

    `current` None means there is no table. Returns [] when nothing differs.
    """
    cmds: list[str] = []
    if current is None or current.layout != base.tag:
        if current is not None:
            cmds.append(f"delete table {_T}")
        cmds += base.commands
        current = Current(layout=base.tag)

    dispatch: tuple[tuple[str, dict[Any, str]], ...] = (
        ("to_vip_port", dict(wanted.to_vip_port)),
        ("to_vip", dict(wanted.to_vip)),
        ("to_published", dict(wanted.to_published)),
    )
    additions: list[str] = []
    for map_name, want in dispatch:
        have: dict[Any, Any] = current.maps.get(map_name, {})
        for key, target in sorted(have.items(), key=lambda kv_: str(kv_[0])):
            if want.get(key) != target:
                cmds.append(f"delete element {_T} {map_name} {{ {_render_key(key)} }}")
        for key, target in sorted(want.items(), key=lambda kv_: str(kv_[0])):
            if have.get(key) != target:
                additions.append(
                    f"add element {_T} {map_name} {{ {_render_key(key)} : goto {target} }}"
                )

    unit_maps = {name for name in current.maps if name.startswith(_UNIT_PREFIXES)}
    for name in sorted((set(current.unit_rules) | unit_maps) - set(wanted.units)):
        if name in current.unit_rules:
            cmds += [f"flush chain {_T} {name}", f"delete chain {_T} {name}"]
        if name in current.maps:
            cmds.append(f"delete map {_T} {name}")
    for _, unit in sorted(wanted.units.items()):
        cmds += _unit_commands(unit, current)
    # Last of the units' commands: a counter can go only once no rule names it.
    counters = {u.counter for u in wanted.units.values() if u.counter is not None}
    for name in sorted(current.counters):
        if name.startswith(_UNIT_PREFIXES) and name not in counters:
            cmds.append(f"delete counter {_T} {name}")

    cmds += additions
    for set_name, want_set in (
        ("ingress_addrs", wanted.ingress_addrs),
        ("ingress_ifaces", wanted.ingress_ifaces),
    ):
        have_set = current.sets.get(set_name, set())
        quote = set_name == "ingress_ifaces"
        for item in sorted(have_set - want_set):
            cmds.append(f"delete element {_T} {set_name} {{ {_q(item, quote)} }}")
        for item in sorted(want_set - have_set):
            cmds.append(f"add element {_T} {set_name} {{ {_q(item, quote)} }}")
    return cmds


def _unit_commands(unit: Unit, current: Current) -> list[str]:
    cmds: list[str] = []
    name = unit.name
    if name not in current.unit_rules:
        cmds.append(f"add chain {_T} {name}")
    if name not in current.maps:
        cmds.append(f"add map {_T} {name} {{ typeof numgen inc mod 1 : ip daddr; }}")
    if unit.counter is not None and unit.counter not in current.counters:
        cmds.append(f"add counter {_T} {unit.counter}")
    if current.unit_rules.get(name) != [unit.comment]:
        if name in current.unit_rules:
            cmds.append(f"flush chain {_T} {name}")
        cmds.append(f"add rule {_T} {name} {unit.rule()}")
    have = current.maps.get(name, {})
    want = unit.elements()
    for index in sorted(set(have) | set(want), key=lambda i: int(i)):
        if have.get(index) == want.get(index):
            continue
        if index in have:
            cmds.append(f"delete element {_T} {name} {{ {index} }}")
        if index in want:
            cmds.append(f"add element {_T} {name} {{ {index} : {want[index]} }}")
    return cmds


def _render_key(key: Any) -> str:
    """A map key in nft syntax: ("10.0.1.2", 80) -> "10.0.1.2 . 80"."""
    return " . ".join(str(p) for p in key) if isinstance(key, tuple) else str(key)


def _q(item: str, quote: bool) -> str:
    return f'"{item}"' if quote else item


# --------------------------------------------------------------------------- the node


class RoutingMesh:
    """The VIPs and published ports of one node, in the table ``ip swarmlite`` of `netns`.

    `ingress_addrs`: the addresses published ports answer on; [] means every address of the
    node but loopback. `ingress_bridge`: the ingress network's bridge on this node ("" while
    there is none), out of which DNATed traffic is masqueraded: that bridge must carry this
    node's own ingress address, not the gateway every node shares. Also turns on
    net.ipv4.ip_forward (without it nothing reaches a task on another node) and
    net.bridge.bridge-nf-call-iptables (see the module's note on VIPs) in `netns`.
    """

    def __init__(
        self,
        netns: str | None = None,
        *,
        ingress_addrs: list[str],
        ingress_bridge: str,
        backend: Backend = "auto",
    ) -> None:
        if ingress_bridge and not _IFNAME.match(ingress_bridge):
            raise NetworkSetupFailure(f"invalid ingress bridge name {ingress_bridge!r}")
        bad = [a for a in ingress_addrs if _ipv4(a) is None]
        if bad:
            raise NetworkSetupFailure(f"invalid ingress addresses {bad}: IPv4 expected")
        self.netns = netns
        self.ingress_addrs = list(ingress_addrs)
        self.ingress_bridge = ingress_bridge
        self._nft = Nft(netns, backend=backend)
        self._base = base_script(any_local_address=not ingress_addrs)
        self._lock = asyncio.Lock()
        self._forwarding = False

    async def apply(self, endpoints: list[EndpointInfo], ports: list[PublishedPort]) -> None:
        """Make the table serve exactly these endpoints and published ports."""
        wanted = wanted_state(
            endpoints,
            ports,
            ingress_addrs=self.ingress_addrs,
            ingress_bridge=self.ingress_bridge,
        )
        async with self._lock:
            await asyncio.to_thread(self._apply, wanted)

    async def port_counts(self) -> dict[tuple[str, int], PortCount]:
        """The counters of the published ports this table serves, by (protocol, port), read
        in one listing; {} before the first apply. NetworkSetupFailure if nft cannot list."""
        async with self._lock:
            objects = await asyncio.to_thread(self._nft.list_table, FAMILY, TABLE)
        return port_counts(parse_table(objects)) if objects is not None else {}

    async def remove(self) -> None:
        """Delete the table (the node leaves the cluster); nothing is spread any more."""
        async with self._lock:
            if await asyncio.to_thread(self._nft.delete_table, FAMILY, TABLE):
                log.info("routing mesh removed %s", kv(netns=self.netns))

    def _apply(self, wanted: Wanted) -> None:
        if not self._forwarding:
            self._enable_forwarding()
        objects = self._nft.list_table(FAMILY, TABLE)
        current = parse_table(objects) if objects is not None else None
        cmds = plan(current, wanted, self._base)
        if not cmds:
            return
        self._nft.run("\n".join(cmds) + "\n", what=f"table {_T}")
        rebuilt = current is None or current.layout != self._base.tag
        log.info(
            "routing mesh applied %s",
            kv(
                netns=self.netns,
                units=len(wanted.units),
                commands=len(cmds),
                rebuilt=rebuilt,
            ),
        )

    def _enable_forwarding(self) -> None:
        """ip_forward (required) and bridged IPv4 through conntrack (VIP replies; optional)."""
        missing: list[str] = []

        def write() -> None:
            for key, required in (
                ("net/ipv4/ip_forward", True),
                ("net/bridge/bridge-nf-call-iptables", False),
            ):
                try:
                    with open(f"/proc/sys/{key}", "r+") as f:
                        if f.read().strip() != "1":
                            f.seek(0)
                            f.write("1")
                except FileNotFoundError:
                    if required:
                        raise
                    missing.append(key)

        try:
            run_in_netns(self.netns, write)
        except OSError as exc:
            raise NetworkSetupFailure(
                f"cannot turn on forwarding for the routing mesh: {exc}",
                details={"netns": self.netns},
            ) from exc
        if missing:
            log.warning(
                "br_netfilter is not loaded: replies of VIP connections bypass conntrack %s",
                kv(netns=self.netns, hint="modprobe br_netfilter"),
            )
        self._forwarding = True


__all__ = [
    "FAMILY",
    "MARK_REFUSE",
    "TABLE",
    "Base",
    "Current",
    "PortCount",
    "RoutingMesh",
    "Unit",
    "Wanted",
    "base_script",
    "parse_table",
    "plan",
    "port_counter_name",
    "port_counts",
    "port_unit_name",
    "requests_by_service",
    "vip_unit_name",
    "wanted_state",
]
