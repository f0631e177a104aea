"""The isolation table: each overlay bridge forwards only to itself and to ingress."""

from __future__ import annotations

from swarmlite.network.isolation import isolation_script


def test_each_network_may_reach_only_itself_and_the_ingress_network() -> None:
    script = isolation_script([4097, 4096, 4098], ingress_vni=4096)
    rules = [line.strip() for line in script.splitlines() if line.strip().endswith("drop")]
    assert rules == [
        'iifname "swlbr4097" oifname "swlbr*" oifname != { "swlbr4096", "swlbr4097" } drop',
        'iifname "swlbr4098" oifname "swlbr*" oifname != { "swlbr4096", "swlbr4098" } drop',
    ]
    # Replaced whole in one transaction: declared, deleted and written again.
    assert script.startswith("table ip swarmlite_isolation\ndelete table ip swarmlite_isolation\n")


def test_without_ingress_a_network_reaches_only_itself() -> None:
    script = isolation_script([4100], ingress_vni=None)
    assert 'oifname != { "swlbr4100" } drop' in script
