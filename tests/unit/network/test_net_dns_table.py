"""What the node's DNS answers, without sockets: tables from endpoints, answers, upstreams."""

from __future__ import annotations

import random
from pathlib import Path

from dnslib import QTYPE, RCODE, DNSRecord

from swarmlite.api.control import EndpointInfo, NetworkInfo
from swarmlite.network.dns import (
    TASK_TTL,
    VIP_TTL,
    Table,
    answer,
    build_tables,
    read_upstreams,
)

FRONT = NetworkInfo(
    network_id="nf", name="shop_front", vni=1, subnet="198.19.1.0/24", gateway="198.19.1.1"
)
BACK = NetworkInfo(
    network_id="nb", name="shop_back", vni=2, subnet="198.19.2.0/24", gateway="198.19.2.1"
)


def endpoint(
    network: str,
    names: list[str],
    mode: str = "vip",
    *,
    vip: str = "",
    backends: tuple[str, ...] | list[str] = (),
    tasks: tuple[str, ...] | list[str] = (),
) -> EndpointInfo:
    return EndpointInfo(
        network_id=network,
        service_id=names[0],
        names=names,
        mode=mode,
        vip=vip,
        backends=list(backends),
        tasks=list(tasks),
    )


def ask(table: Table, name: str, qtype: str = "A") -> DNSRecord | None:
    return answer(table, DNSRecord.question(name, qtype), random.Random(1))


def a_records(reply: DNSRecord | None) -> list[str]:
    assert reply is not None
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


def test_each_network_sees_only_its_own_services() -> None:
    tables = build_tables(
        [
            endpoint("nf", ["web", "shop_web"], vip="198.19.1.2"),
            endpoint("nb", ["db", "shop_db"], vip="198.19.2.2"),
            endpoint("elsewhere", ["ghost"], vip="198.19.9.2"),
        ],
        [FRONT, BACK],
    )
    assert set(tables) == {"nf", "nb"}
    assert a_records(ask(tables["nf"], "shop_web")) == ["198.19.1.2"]
    assert ask(tables["nf"], "db") is None, "not ours on this network: forwarded"
    assert a_records(ask(tables["nb"], "db")) == ["198.19.2.2"]


def test_a_service_attached_to_two_networks_answers_each_networks_vip() -> None:
    tables = build_tables(
        [
            endpoint("nf", ["api"], vip="198.19.1.3"),
            endpoint("nb", ["api"], vip="198.19.2.3"),
        ],
        [FRONT, BACK],
    )
    assert a_records(ask(tables["nf"], "api")) == ["198.19.1.3"]
    assert a_records(ask(tables["nb"], "api")) == ["198.19.2.3"]


def test_vip_answers_carry_the_vip_ttl_and_tasks_answers_are_not_cached() -> None:
    tables = build_tables(
        [endpoint("nf", ["web"], vip="198.19.1.2", tasks=["198.19.1.11/24", "198.19.1.10"])],
        [FRONT],
    )
    vip = ask(tables["nf"], "web.")
    assert vip is not None and [rr.ttl for rr in vip.rr] == [VIP_TTL]
    tasks = ask(tables["nf"], "TASKS.WEB")
    assert sorted(a_records(tasks)) == ["198.19.1.10", "198.19.1.11"]
    assert tasks is not None and {rr.ttl for rr in tasks.rr} == {TASK_TTL}


def test_dnsrr_answers_the_tasks_in_rotation_in_a_shuffled_order() -> None:
    backends = [f"198.19.1.{i}" for i in range(10, 20)]
    tables = build_tables([endpoint("nf", ["cache"], "dnsrr", backends=backends)], [FRONT])
    rng = random.Random(7)
    orders = {
        tuple(a_records(answer(tables["nf"], DNSRecord.question("cache"), rng))) for _ in range(5)
    }
    assert all(sorted(o) == sorted(backends) for o in orders)
    assert len(orders) > 1, "clients spread over the tasks"


def test_a_known_name_without_an_a_question_or_without_tasks_answers_empty() -> None:
    tables = build_tables([endpoint("nf", ["web"], vip="198.19.1.2")], [FRONT])
    aaaa = ask(tables["nf"], "web", "AAAA")
    assert aaaa is not None and aaaa.header.rcode == RCODE.NOERROR and aaaa.rr == []
    empty = ask(tables["nf"], "tasks.web")
    assert empty is not None and empty.header.rcode == RCODE.NOERROR and empty.rr == []
    assert empty.header.aa == 1


def test_a_query_without_a_question_is_a_format_error() -> None:
    reply = answer({}, DNSRecord(), random.Random(1))
    assert reply is not None and reply.header.rcode == RCODE.FORMERR


def test_upstreams_come_from_resolv_conf_without_overlay_addresses(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# generated\nsearch example.com\noptions ndots:2\n"
        "nameserver 198.19.1.1\n"  # an overlay gateway: would loop back to us
        "nameserver 192.0.2.53 # comment\n"
        "nameserver fe80::1%eth0\n"
        "nameserver 192.0.2.53\n"
        "nameserver 127.0.0.53\n"
        "nameserver 198.51.100.1\n"
        "nameserver 203.0.113.9\n"
        "nameserver bogus\n"
    )
    assert read_upstreams(conf, [FRONT.subnet]) == ["192.0.2.53", "127.0.0.53", "198.51.100.1"]


def test_a_missing_resolv_conf_means_no_upstream(tmp_path: Path) -> None:
    assert read_upstreams(tmp_path / "absent", []) == []
