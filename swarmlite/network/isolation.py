"""Networks do not reach each other through the node: one forward rule per overlay bridge.

Owns the table ``ip swarmlite_isolation`` of a node. A container's default route is its
node's bridge on its first network, and the node routes between all of its bridges, so
without this table a task of one stack could reach another stack's tasks (and VIPs,
which the node answers). Each non-ingress bridge may forward only to itself and to the
ingress network's bridge (the routing mesh's published ports are public by design); the
underlay and the mesh are not overlay bridges and are not affected.

The table is small and rewritten whole, in one nftables transaction (never absent while
it is replaced). Errors come from nft.py as NetworkSetupFailure.
"""

from __future__ import annotations

import asyncio

from swarmlite.network.ip import BRIDGE_PREFIX, bridge_name
from swarmlite.network.nft import Nft

TABLE = "swarmlite_isolation"


def isolation_script(vnis: list[int], ingress_vni: int | None) -> str:
    """The whole table for bridges of `vnis` (one of them maybe the ingress network's)."""
    rules = []
    for vni in sorted(vnis):
        if vni == ingress_vni:
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
    return (
        f"table ip {TABLE}\n"
        f"delete table ip {TABLE}\n"
        f"table ip {TABLE} {{\n"
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter - 5; policy accept;\n"
        f"{body}\n"
        "\t}\n"
        "}\n"
    )


async def apply_isolation(
    vnis: list[int], ingress_vni: int | None, netns: str | None = None
) -> None:
    script = isolation_script(vnis, ingress_vni)
    nft = Nft(netns)
    await asyncio.to_thread(nft.run, script, what=f"table ip {TABLE}")


async def remove_isolation(netns: str | None = None) -> None:
    nft = Nft(netns)
    await asyncio.to_thread(nft.delete_table, "ip", TABLE)
