"""Networks do not reach each other through the node: one forward rule per overlay bridge.

Owns the table ``ip swarmlite_isolation`` of a node. A container's default route is its
node's bridge on its first network, and the node routes between all of its bridges, so
without this table a task of one stack could reach another stack's tasks (and VIPs,
which the node answers). Each non-ingress bridge may forward only to itself and to the
ingress network's bridge (the routing mesh's published ports are public by design); the
underlay and the mesh are not overlay bridges and are not affected.

An *internal* network (``internal: true``, as Docker's) reaches nothing outside itself:
its bridge forwards only to itself, in both directions (not to the underlay, the mesh,
other networks or ingress; nothing from them into it), and the node itself answers it
only DNS on its gateway (and replies to what the node opened): its own addresses (the
underlay's among them) are as far away as any other host. Its containers get no default
route (attach.py) and its DNS server forwards no outside names (dns.py): the table is the
part that holds even against a container that adds a route of its own.

Tasks of the other (non-ingress) networks reach outside the cluster as Docker's tasks do
through docker_gwbridge: what leaves the node from one of their subnets, out of anything
but an overlay bridge, is masqueraded to the node's address there, so that replies find
their way back without the outside knowing the overlays' subnets.

The table is small and rewritten whole, in one nftables transaction (never absent while
it is replaced). Errors come from nft.py as NetworkSetupFailure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from swarmlite.api.control import NetworkInfo
from swarmlite.network.ip import BRIDGE_PREFIX, bare, bridge_name
from swarmlite.network.nft import Nft

TABLE = "swarmlite_isolation"
DNS_PORT = 53


def isolation_script(
    vnis: list[int],
    ingress_vni: int | None,
    *,
    internal: Mapping[int, str] | None = None,
    egress: Sequence[str] = (),
) -> str:
    """The whole table for bridges of `vnis` (one of them maybe the ingress network's).

    `internal` maps the VNI of each internal network to its gateway address (where DNS
    answers); `egress` lists the subnets whose traffic out of the overlays is masqueraded.
    """
    closed = dict(internal or {})
    rules = []
    inputs = []
    for vni in sorted(vnis):
        if vni == ingress_vni:
            continue
        bridge = bridge_name(vni)
        if vni in closed:
            rules.append(f'\t\tiifname "{bridge}" oifname != "{bridge}" drop')
            rules.append(f'\t\toifname "{bridge}" iifname != "{bridge}" drop')
            inputs.append(f'\t\tiifname "{bridge}" ct state established,related accept')
            inputs.append(
                f'\t\tiifname "{bridge}" ip daddr {closed[vni]} meta l4proto {{ tcp, udp }} '
                f"th dport {DNS_PORT} accept"
            )
            inputs.append(f'\t\tiifname "{bridge}" drop')
            continue
        allowed = {bridge_name(vni)}
        if ingress_vni is not None:
            allowed.add(bridge_name(ingress_vni))
        names = ", ".join(f'"{name}"' for name in sorted(allowed))
        rules.append(
            f'\t\tiifname "{bridge_name(vni)}" oifname "{BRIDGE_PREFIX}*" '
            f"oifname != {{ {names} }} drop"
        )
    body = "\n".join(rules)
    chains = [
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter - 5; policy accept;\n"
        f"{body}\n"
        "\t}\n"
    ]
    if inputs:
        chains.append(
            "\tchain input {\n"
            "\t\ttype filter hook input priority filter - 5; policy accept;\n"
            + "".join(f"{line}\n" for line in inputs)
            + "\t}\n"
        )
    if egress:
        subnets = ", ".join(sorted(set(egress)))
        chains.append(
            "\tchain egress {\n"
            "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
            f'\t\tip saddr {{ {subnets} }} oifname != "{BRIDGE_PREFIX}*" masquerade\n'
            "\t}\n"
        )
    return (
        f"table ip {TABLE}\n"
        f"delete table ip {TABLE}\n"
        f"table ip {TABLE} {{\n" + "".join(chains) + "}\n"
    )


async def apply_isolation(
    vnis: list[int],
    ingress_vni: int | None,
    netns: str | None = None,
    *,
    internal: Mapping[int, str] | None = None,
    egress: Sequence[str] = (),
) -> None:
    script = isolation_script(vnis, ingress_vni, internal=internal, egress=egress)
    nft = Nft(netns)
    await asyncio.to_thread(nft.run, script, what=f"table ip {TABLE}")


async def isolate(networks: Sequence[NetworkInfo], netns: str | None = None) -> None:
    """The table for exactly these overlays of a node (what node.py applies)."""
    await apply_isolation(
        [n.vni for n in networks],
        next((n.vni for n in networks if n.ingress), None),
        netns,
        internal={n.vni: bare(n.gateway) for n in networks if n.internal},
        egress=[n.subnet for n in networks if not n.ingress and not n.internal],
    )


async def remove_isolation(netns: str | None = None) -> None:
    nft = Nft(netns)
    await asyncio.to_thread(nft.delete_table, "ip", TABLE)
