"""Unary calls over real mutual TLS: answers, the caller's identity, errors as their class."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from swarmlite.errors import Conflict, InternalError, NotFound
from swarmlite.rpc import Peer, RpcServer


class Echo(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    count: int = 0


class EchoReply(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    node: str | None
    role: str | None


async def echo(request: Echo, peer: Peer) -> EchoReply:
    identity = peer.identity
    return EchoReply(
        text=request.text.upper() * max(request.count, 1),
        node=identity.node_id if identity else None,
        role=identity.role if identity else None,
    )


async def missing(request: Echo, peer: Peer) -> None:
    raise NotFound(
        f"service {request.text!r} not found",
        hint="`swarmlite service ls` lists the services of this cluster",
        details={"service": request.text, "tried": [1, 2]},
    )


async def stale(request: Echo, peer: Peer) -> None:
    raise Conflict("node n1 changed since version 7", details={"version": 9})


async def buggy(request: Echo, peer: Peer) -> None:
    raise ZeroDivisionError("oops")


async def nothing(request: Echo, peer: Peer) -> None:
    return None


def make_server(cluster: Any) -> RpcServer:
    server = RpcServer(cluster.server_context(), cluster_id=cluster.cluster_id)
    server.add_unary("/echo", Echo, echo)
    server.add_unary("/missing", Echo, missing)
    server.add_unary("/stale", Echo, stale)
    server.add_unary("/buggy", Echo, buggy)
    server.add_unary("/nothing", Echo, nothing)
    return server


async def test_unary_round_trip_names_the_caller(cluster, start_server, open_client) -> None:
    url = await start_server(make_server(cluster))
    client = open_client(url, cluster.client_context("worker-7", "worker"))

    reply = await client.call("/echo", Echo(text="hi", count=2), EchoReply)

    assert reply == EchoReply(text="HIHI", node="worker-7", role="worker")
    # the connection is reused for the next call
    assert (await client.call("/echo", Echo(text="x"), EchoReply)).text == "X"


async def test_handler_errors_arrive_as_their_class(cluster, start_server, open_client) -> None:
    url = await start_server(make_server(cluster))
    client = open_client(url, cluster.client_context())

    with pytest.raises(NotFound) as not_found:
        await client.call("/missing", Echo(text="shop_api"), EchoReply)
    assert not_found.value.message == "service 'shop_api' not found"
    assert not_found.value.hint == "`swarmlite service ls` lists the services of this cluster"
    assert not_found.value.details == {"service": "shop_api", "tried": [1, 2]}

    with pytest.raises(Conflict) as conflict:
        await client.call("/stale", Echo(text=""), EchoReply)
    assert conflict.value.message == "node n1 changed since version 7"
    assert conflict.value.details == {"version": 9}
    assert conflict.value.hint is None


async def test_handler_bug_is_an_internal_error_with_a_logged_incident(
    cluster, start_server, open_client, caplog
) -> None:
    url = await start_server(make_server(cluster))
    client = open_client(url, cluster.client_context())

    with (
        caplog.at_level(logging.ERROR, logger="swarmlite.rpc"),
        pytest.raises(InternalError) as caught,
    ):
        await client.call("/buggy", Echo(text=""), EchoReply)

    incident = caught.value.details["incident"]
    assert incident in caught.value.message
    assert "oops" not in caught.value.message  # the bug's text stays in the server log
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], ZeroDivisionError)
    # the server keeps serving
    assert (await client.call("/echo", Echo(text="ok"), EchoReply)).text == "OK"


async def test_handler_returning_none_answers_none(cluster, start_server, open_client) -> None:
    url = await start_server(make_server(cluster))
    client = open_client(url, cluster.client_context())

    assert await client.call("/nothing", Echo(text=""), type(None)) is None


async def test_unknown_path_is_not_found(cluster, start_server, open_client) -> None:
    url = await start_server(make_server(cluster))
    client = open_client(url, cluster.client_context())

    with pytest.raises(NotFound, match="no rpc endpoint at /nowhere"):
        await client.call("/nowhere", Echo(text=""), EchoReply)
