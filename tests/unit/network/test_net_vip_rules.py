"""The routing mesh's pure parts: what units and dispatch entries a node wants, the rule text,
reading nft's JSON listing back (counters included), and the minimal transaction between
the two."""

from __future__ import annotations

from typing import Any

from swarmlite.api.control import EndpointInfo, PublishedPort
from swarmlite.network.vip import (
    MARK_REFUSE,
    Current,
    PortCount,
    Unit,
    Wanted,
    base_script,
    parse_table,
    plan,
    port_counter_name,
    port_counts,
    requests_by_service,
    wanted_state,
)

BASE = base_script(any_local_address=True)


def vip(
    addr: str, backends: list[str], *, ports: list[int] | None = None, mode: str = "vip"
) -> EndpointInfo:
    return EndpointInfo(
        network_id="net1",
        service_id=f"svc-{addr}",
        names=["web"],
        mode=mode,
        vip=addr,
        backends=backends,
        ports=ports or [],
    )


def port(
    published: int,
    backends: list[str],
    *,
    mode: str = "ingress",
    proto: str = "tcp",
    service: str = "svcweb",
) -> PublishedPort:
    return PublishedPort(
        published=published,
        protocol=proto,
        target=80,
        mode=mode,
        backends=backends,
        service_id=service,
    )


def applied(wanted: Wanted, packets: int = 0) -> Current:
    """What the kernel would list after `plan` from nothing: nft's JSON objects, parsed.
    Every counter shows `packets`."""
    objects: list[dict[str, Any]] = [
        {"table": {"family": "ip", "name": "swarmlite", "handle": 7}},
        {"chain": {"family": "ip", "table": "swarmlite", "name": "nat_prerouting"}},
        {"rule": {"chain": "nat_prerouting", "comment": BASE.tag, "expr": []}},
        {"rule": {"chain": "nat_prerouting", "expr": []}},
    ]

    def dispatch(name: str, entries: dict[Any, str]) -> dict[str, Any]:
        elems = [
            [{"concat": list(key)} if isinstance(key, tuple) else key, {"goto": {"target": t}}]
            for key, t in entries.items()
        ]
        return {"map": {"name": name, "type": "x", "map": "verdict", "elem": elems}}

    objects += [
        dispatch("to_vip_port", wanted.to_vip_port),
        dispatch("to_vip", wanted.to_vip),
        dispatch("to_published", wanted.to_published),
        {"set": {"name": "ingress_addrs", "elem": sorted(wanted.ingress_addrs)}},
        {"set": {"name": "ingress_ifaces", "elem": sorted(wanted.ingress_ifaces)}},
    ]
    for unit in wanted.units.values():
        objects += [
            {"chain": {"name": unit.name, "handle": 1}},
            {"rule": {"chain": unit.name, "comment": unit.comment, "expr": []}},
            {"map": {"name": unit.name, "type": "integer", "map": "ipv4_addr",
                     "elem": [[i, a] for i, a in enumerate(unit.backends)]}},
        ]  # fmt: skip
        if unit.counter is not None:
            objects.append(
                {"counter": {"name": unit.counter, "packets": packets, "bytes": 60 * packets}}
            )
    return parse_table(objects)


# --------------------------------------------------------------------------- wanted_state


def test_a_vip_with_ports_is_reached_on_those_ports_only() -> None:
    wanted = wanted_state([vip("10.0.1.2", ["10.0.1.5", "10.0.1.4"], ports=[80, 443])], [])

    assert wanted.to_vip_port == {
        ("10.0.1.2", 80): "vip_10_0_1_2",
        ("10.0.1.2", 443): "vip_10_0_1_2",
    }
    assert wanted.to_vip == {}
    unit = wanted.units["vip_10_0_1_2"]
    assert unit.backends == ("10.0.1.4", "10.0.1.5")  # sorted, so the order is stable
    assert unit.port is None and unit.proto is None


def test_a_vip_without_ports_is_reached_on_every_port() -> None:
    wanted = wanted_state([vip("10.0.1.2", ["10.0.1.4"])], [])
    assert wanted.to_vip == {"10.0.1.2": "vip_10_0_1_2"}
    assert wanted.to_vip_port == {}


def test_dnsrr_endpoints_and_endpoints_without_a_vip_have_no_unit() -> None:
    wanted = wanted_state([vip("", ["10.0.1.4"]), vip("10.0.1.3", ["10.0.1.4"], mode="dnsrr")], [])
    assert wanted.units == {}


def test_backends_are_deduplicated_and_prefixes_dropped() -> None:
    wanted = wanted_state([vip("10.0.1.2/24", ["10.0.1.4/24", "10.0.1.4", "10.0.1.10"])], [])
    assert wanted.units["vip_10_0_1_2"].backends == ("10.0.1.4", "10.0.1.10")


def test_malformed_entries_are_skipped_and_the_others_served() -> None:
    wanted = wanted_state(
        [vip("10.0.1.2", ["not-an-address"]), vip("fd00::1", ["10.0.1.4"]), vip("10.0.1.3", [])],
        [port(8080, ["10.0.0.5"], proto="sctp"), port(0, ["10.0.0.5"]), port(8081, ["10.0.0.5"])],
    )
    assert sorted(wanted.units) == ["pp_tcp_8081", "vip_10_0_1_3"]


def test_the_first_claim_on_a_vip_or_a_port_wins() -> None:
    wanted = wanted_state(
        [vip("10.0.1.2", ["10.0.1.4"]), vip("10.0.1.2", ["10.0.1.9"])],
        [port(8080, ["10.0.0.5"]), port(8080, ["10.0.0.6"])],
    )
    assert wanted.units["vip_10_0_1_2"].backends == ("10.0.1.4",)
    assert wanted.units["pp_tcp_8080"].backends == ("10.0.0.5",)


def test_ingress_ports_dnat_to_the_target_port_and_host_ports_need_a_local_task() -> None:
    wanted = wanted_state(
        [],
        [
            port(8080, ["10.255.0.5", "10.255.0.6"]),
            port(53, ["10.255.0.7"], proto="udp"),
            port(9090, ["10.0.1.4"], mode="host"),
            port(9091, [], mode="host"),
            port(9092, []),
        ],
    )
    assert wanted.to_published == {
        ("tcp", 8080): "pp_tcp_8080",
        ("udp", 53): "pp_udp_53",
        ("tcp", 9090): "pp_tcp_9090",
        ("tcp", 9092): "pp_tcp_9092",  # ingress without tasks: refused, not left open
    }
    assert wanted.units["pp_udp_53"].proto == "udp"


# --------------------------------------------------------------------------- rule text


def test_a_unit_rule_spreads_round_robin_over_its_map() -> None:
    vip_unit = Unit(name="vip_10_0_1_2", backends=("10.0.1.4", "10.0.1.5"))
    port_unit = Unit(name="pp_tcp_8080", backends=("10.255.0.5",), proto="tcp", port=80)

    assert vip_unit.rule() == (
        'dnat to numgen inc mod 2 map @vip_10_0_1_2 comment "backends=2 port=same"'
    )
    assert port_unit.rule() == (
        "meta l4proto tcp dnat to numgen inc mod 1 map @pp_tcp_8080 : 80"
        ' comment "backends=1 port=80"'
    )
    assert vip_unit.elements() == {0: "10.0.1.4", 1: "10.0.1.5"}


def test_a_unit_without_backends_marks_connections_for_refusal() -> None:
    rule = Unit(name="vip_10_0_1_2", backends=()).rule()
    assert rule.startswith(f"meta mark set meta mark or {MARK_REFUSE:#010x} ")
    assert "dnat" not in rule


def test_the_base_layout_depends_on_how_local_addresses_are_matched() -> None:
    restricted = base_script(any_local_address=False)
    assert restricted.tag != BASE.tag
    assert any("ip daddr @ingress_addrs" in c for c in restricted.commands)
    assert any("fib daddr type local" in c for c in BASE.commands)
    tagged = [c for c in BASE.commands if BASE.tag in c]
    assert len(tagged) == 1 and " nat_prerouting " in tagged[0]


# --------------------------------------------------------------------------- plan


def test_a_first_apply_creates_the_table_then_the_units() -> None:
    wanted = wanted_state([vip("10.0.1.2", ["10.0.1.4"])], [port(8080, ["10.255.0.5"])])
    cmds = plan(None, wanted, BASE)

    assert cmds[: len(BASE.commands)] == list(BASE.commands)
    rest = cmds[len(BASE.commands) :]
    assert "add chain ip swarmlite vip_10_0_1_2" in rest
    assert "add element ip swarmlite vip_10_0_1_2 { 0 : 10.0.1.4 }" in rest
    assert "add element ip swarmlite to_vip { 10.0.1.2 : goto vip_10_0_1_2 }" in rest
    assert "add element ip swarmlite to_published { tcp . 8080 : goto pp_tcp_8080 }" in rest
    # A chain exists before the dispatch entry that jumps to it.
    assert rest.index("add chain ip swarmlite pp_tcp_8080") < rest.index(
        "add element ip swarmlite to_published { tcp . 8080 : goto pp_tcp_8080 }"
    )
    assert not any(c.startswith("delete") for c in cmds)


def test_the_same_state_again_changes_nothing() -> None:
    wanted = wanted_state(
        [vip("10.0.1.2", ["10.0.1.4", "10.0.1.5"], ports=[80]), vip("10.0.1.3", [])],
        [port(8080, ["10.255.0.5"]), port(53, ["10.255.0.5"], proto="udp")],
        ingress_addrs=["198.18.0.1"],
        ingress_bridge="swlbr4096",
    )
    assert plan(applied(wanted), wanted, BASE) == []


def test_a_new_backend_touches_only_its_service_map_and_rule() -> None:
    before = wanted_state(
        [vip("10.0.1.2", ["10.0.1.4"]), vip("10.0.1.3", ["10.0.1.8"])], [port(8080, ["10.255.0.5"])]
    )
    after = wanted_state(
        [vip("10.0.1.2", ["10.0.1.4", "10.0.1.5"]), vip("10.0.1.3", ["10.0.1.8"])],
        [port(8080, ["10.255.0.5"])],
    )
    cmds = plan(applied(before), after, BASE)

    assert cmds == [
        "flush chain ip swarmlite vip_10_0_1_2",
        "add rule ip swarmlite vip_10_0_1_2 " + after.units["vip_10_0_1_2"].rule(),
        "add element ip swarmlite vip_10_0_1_2 { 1 : 10.0.1.5 }",
    ]


def test_a_replaced_backend_swaps_one_element_and_keeps_the_rule() -> None:
    before = wanted_state([vip("10.0.1.2", ["10.0.1.4", "10.0.1.5"])], [])
    after = wanted_state([vip("10.0.1.2", ["10.0.1.4", "10.0.1.6"])], [])
    assert plan(applied(before), after, BASE) == [
        "delete element ip swarmlite vip_10_0_1_2 { 1 }",
        "add element ip swarmlite vip_10_0_1_2 { 1 : 10.0.1.6 }",
    ]


def test_a_removed_service_loses_its_dispatch_entry_before_its_chain() -> None:
    before = wanted_state([vip("10.0.1.2", ["10.0.1.4"], ports=[80])], [port(8080, ["10.0.0.5"])])
    cmds = plan(applied(before), wanted_state([], []), BASE)

    assert cmds == [
        "delete element ip swarmlite to_vip_port { 10.0.1.2 . 80 }",
        "delete element ip swarmlite to_published { tcp . 8080 }",
        "flush chain ip swarmlite pp_tcp_8080",
        "delete chain ip swarmlite pp_tcp_8080",
        "delete map ip swarmlite pp_tcp_8080",
        "flush chain ip swarmlite vip_10_0_1_2",
        "delete chain ip swarmlite vip_10_0_1_2",
        "delete map ip swarmlite vip_10_0_1_2",
        "delete counter ip swarmlite pp_tcp_8080_svcweb",
    ]


def test_changed_vip_ports_and_ingress_sets_are_updated_element_by_element() -> None:
    before = wanted_state(
        [vip("10.0.1.2", ["10.0.1.4"], ports=[80])], [], ingress_addrs=["198.18.0.1"]
    )
    after = wanted_state(
        [vip("10.0.1.2", ["10.0.1.4"], ports=[443])],
        [],
        ingress_addrs=["198.18.0.2"],
        ingress_bridge="swlbr4096",
    )
    assert plan(applied(before), after, BASE) == [
        "delete element ip swarmlite to_vip_port { 10.0.1.2 . 80 }",
        "add element ip swarmlite to_vip_port { 10.0.1.2 . 443 : goto vip_10_0_1_2 }",
        "delete element ip swarmlite ingress_addrs { 198.18.0.1 }",
        "add element ip swarmlite ingress_addrs { 198.18.0.2 }",
        'add element ip swarmlite ingress_ifaces { "swlbr4096" }',
    ]


def test_a_table_of_another_layout_is_rebuilt_in_the_same_transaction() -> None:
    wanted = wanted_state([vip("10.0.1.2", ["10.0.1.4"])], [])
    stale = applied(wanted)
    stale.layout = "swarmlite layout=0000000000000000"

    cmds = plan(stale, wanted, BASE)

    assert cmds[0] == "delete table ip swarmlite"
    assert cmds[1 : 1 + len(BASE.commands)] == list(BASE.commands)
    assert "add chain ip swarmlite vip_10_0_1_2" in cmds


def test_parse_table_reads_elements_with_options_and_protocol_numbers() -> None:
    cur = parse_table(
        [
            {"table": {"name": "swarmlite", "handle": 3}},
            {"map": {"name": "to_published", "elem": [
                [{"concat": [6, 8080]}, {"goto": {"target": "pp_tcp_8080"}}],
                [{"elem": {"val": {"concat": ["udp", 53]}, "comment": "x"}},
                 {"goto": {"target": "pp_udp_53"}}],
            ]}},
            {"set": {"name": "ingress_ifaces", "elem": ["swlbr4096"]}},
        ]
    )  # fmt: skip
    assert cur.handle == 3
    assert cur.maps["to_published"] == {("tcp", 8080): "pp_tcp_8080", ("udp", 53): "pp_udp_53"}
    assert cur.sets["ingress_ifaces"] == {"swlbr4096"}


# --------------------------------------------------------------------------- counters


def test_a_published_port_counts_its_connections_in_a_counter_named_for_its_service() -> None:
    wanted = wanted_state([vip("10.0.1.2", ["10.0.1.4"])], [port(8080, ["10.255.0.5"])])
    unit = wanted.units["pp_tcp_8080"]

    assert unit.counter == "pp_tcp_8080_svcweb"
    assert unit.rule() == (
        'meta l4proto tcp counter name "pp_tcp_8080_svcweb"'
        " dnat to numgen inc mod 1 map @pp_tcp_8080 : 80"
        ' comment "backends=1 port=80 counter=pp_tcp_8080_svcweb"'
    )
    assert wanted.units["vip_10_0_1_2"].counter is None  # VIPs are not counted


def test_a_port_without_a_fit_service_id_is_counted_under_its_own_name() -> None:
    assert port_counter_name("udp", 53, "") == "pp_udp_53"
    assert port_counter_name("udp", 53, 'x" accept') == "pp_udp_53"
    assert port_counter_name("tcp", 80, "3k9x0c1m7q2w8e5r4t6y1u0io") == (
        "pp_tcp_80_3k9x0c1m7q2w8e5r4t6y1u0io"
    )


def test_a_refusing_port_keeps_its_counter_but_counts_nothing() -> None:
    unit = wanted_state([], [port(8080, [])]).units["pp_tcp_8080"]
    assert unit.counter == "pp_tcp_8080_svcweb"
    assert "counter" not in unit.rule()


def test_a_first_apply_makes_the_counter_before_the_rule_that_names_it() -> None:
    wanted = wanted_state([], [port(8080, ["10.255.0.5"])])
    cmds = plan(None, wanted, BASE)
    assert cmds.index("add counter ip swarmlite pp_tcp_8080_svcweb") < cmds.index(
        "add rule ip swarmlite pp_tcp_8080 " + wanted.units["pp_tcp_8080"].rule()
    )


def test_counted_connections_never_make_an_apply_rewrite_anything() -> None:
    wanted = wanted_state([], [port(8080, ["10.255.0.5"]), port(53, ["10.255.0.5"], proto="udp")])
    assert plan(applied(wanted, packets=12345), wanted, BASE) == []


def test_new_backends_rewrite_the_rule_but_keep_the_counter() -> None:
    before = wanted_state([], [port(8080, ["10.255.0.5"])])
    after = wanted_state([], [port(8080, ["10.255.0.5", "10.255.0.6"])])
    assert plan(applied(before, packets=7), after, BASE) == [
        "flush chain ip swarmlite pp_tcp_8080",
        "add rule ip swarmlite pp_tcp_8080 " + after.units["pp_tcp_8080"].rule(),
        "add element ip swarmlite pp_tcp_8080 { 1 : 10.255.0.6 }",
    ]


def test_a_port_taken_by_another_service_starts_a_new_counter() -> None:
    before = wanted_state([], [port(8080, ["10.255.0.5"], service="svcold")])
    after = wanted_state([], [port(8080, ["10.255.0.5"], service="svcnew")])
    assert plan(applied(before, packets=7), after, BASE) == [
        "add counter ip swarmlite pp_tcp_8080_svcnew",
        "flush chain ip swarmlite pp_tcp_8080",
        "add rule ip swarmlite pp_tcp_8080 " + after.units["pp_tcp_8080"].rule(),
        "delete counter ip swarmlite pp_tcp_8080_svcold",  # once no rule names it
    ]


def test_a_removed_port_loses_its_counter_after_its_chain() -> None:
    before = wanted_state([], [port(8080, ["10.0.0.5"])])
    cmds = plan(applied(before), wanted_state([], []), BASE)
    assert cmds[-2:] == [
        "delete map ip swarmlite pp_tcp_8080",
        "delete counter ip swarmlite pp_tcp_8080_svcweb",
    ]


def test_a_rule_made_before_counters_is_rewritten_once_and_nothing_else() -> None:
    wanted = wanted_state([vip("10.0.1.2", ["10.0.1.4"])], [port(8080, ["10.255.0.5"])])
    old = applied(wanted)
    old.unit_rules["pp_tcp_8080"] = ["backends=1 port=80"]  # what the code before wrote
    del old.counters["pp_tcp_8080_svcweb"]

    assert plan(old, wanted, BASE) == [
        "add counter ip swarmlite pp_tcp_8080_svcweb",
        "flush chain ip swarmlite pp_tcp_8080",
        "add rule ip swarmlite pp_tcp_8080 " + wanted.units["pp_tcp_8080"].rule(),
    ]


def test_counters_read_back_by_port_and_service() -> None:
    cur = parse_table(
        [
            {"table": {"name": "swarmlite", "handle": 3}},
            {"counter": {"name": "pp_tcp_8080_svcweb", "packets": 41, "bytes": 2460}},
            {"counter": {"name": "pp_udp_53_svcdns", "packets": 2, "bytes": 120}},
            {"counter": {"name": "pp_tcp_9090", "packets": 5, "bytes": 300}},  # no service
            {"counter": {"name": "somebody_elses", "packets": 9, "bytes": 540}},
            {"rule": {"chain": "pp_tcp_8080", "comment": "x",
                      "expr": [{"counter": "pp_tcp_8080_svcweb"}]}},
        ]
    )  # fmt: skip

    assert cur.counters["pp_tcp_8080_svcweb"] == 41
    counts = port_counts(cur)
    assert counts == {
        ("tcp", 8080): PortCount(service_id="svcweb", connections=41),
        ("udp", 53): PortCount(service_id="svcdns", connections=2),
        ("tcp", 9090): PortCount(service_id="", connections=5),
    }
    assert requests_by_service(counts.values()) == {"svcweb": 41, "svcdns": 2}


def test_a_service_publishing_several_ports_gets_their_sum() -> None:
    wanted = wanted_state(
        [],
        [
            port(8080, ["10.255.0.5"]),
            port(8443, ["10.255.0.5"]),
            port(9090, ["10.0.1.4"], mode="host", service="svcapi"),
        ],
    )
    counts = port_counts(applied(wanted, packets=3))
    assert set(counts) == {("tcp", 8080), ("tcp", 8443), ("tcp", 9090)}
    assert requests_by_service(counts.values()) == {"svcweb": 6, "svcapi": 3}
