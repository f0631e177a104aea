"""The metrics listener: its address checks, and `GET /metrics` over loopback."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from swarmlite.errors import FailedPrecondition, InvalidArgument
from swarmlite.metrics import MetricsServer, NodeMetrics, check_addr, parse_addr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:9323", ("127.0.0.1", 9323)),
        ("0.0.0.0:1", ("0.0.0.0", 1)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:9323", ("::1", 9323)),
    ],
)
def test_an_address_is_addr_colon_port(addr: str, expected: tuple[str, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize(
    "addr",
    [
        "9323",
        ":9323",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:x",
        "h:0",
        "h:65536",
        "::1:9323",
        "[::1:9323",
        "[nope]:9323",
    ],
)
def test_a_malformed_address_is_refused_saying_what_to_write(addr: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_addr(addr)
    assert "ADDR:PORT" in (caught.value.hint or "")


def test_a_held_port_is_refused_up_front() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(FailedPrecondition, match="already in use"):
            check_addr(f"127.0.0.1:{port}")
    assert check_addr(f"127.0.0.1:{port}") == ("127.0.0.1", port)


def test_an_address_not_of_this_host_is_refused() -> None:
    with pytest.raises(FailedPrecondition, match="cannot listen"):
        check_addr("192.0.2.1:9323")  # TEST-NET-1: never an address of this host


async def test_metrics_are_served_in_the_text_format() -> None:
    metrics = NodeMetrics(node_id="n1", hostname="h1", role="worker", version="0.1.0")
    server = MetricsServer(metrics.registry, f"127.0.0.1:{free_port()}")
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{server.port}"
            async with session.get(f"{url}/metrics") as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                text = await response.text()
            async with session.get(f"{url}/other") as response:
                assert response.status == 404
    finally:
        await server.stop()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "swarmlite_node_info" in names


async def test_a_port_taken_meanwhile_stops_the_start_with_a_clear_error() -> None:
    metrics = NodeMetrics(node_id="n1", hostname="h1", role="worker", version="0.1.0")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = MetricsServer(metrics.registry, f"127.0.0.1:{holder.getsockname()[1]}")
        with pytest.raises(FailedPrecondition, match="for metrics"):
            await server.start()
