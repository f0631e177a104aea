"""Fixtures for rpc over real loopback TLS: a cluster CA, servers and clients torn down."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from swarmlite.ca import (
    NodeCredentials,
    RootCA,
    client_context,
    issue_node_cert,
    server_context,
)
from swarmlite.rpc import RpcClient, RpcServer

CLUSTER_ID = "cluster-a"

StartServer = Callable[[RpcServer], Awaitable[str]]
OpenClient = Callable[..., RpcClient]


class TestCluster:
    """One root CA and the credentials it issues."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, cluster_id: str = CLUSTER_ID) -> None:
        self.cluster_id = cluster_id
        self.ca = RootCA.create(cluster_id)

    def creds(
        self, node_id: str, role: str = "manager", *, cluster_id: str | None = None
    ) -> NodeCredentials:
        return issue_node_cert(self.ca, node_id, role, cluster_id or self.cluster_id)

    def server_context(self, node_id: str = "manager-1") -> ssl.SSLContext:
        return server_context(self.creds(node_id))

    def client_context(self, node_id: str = "manager-2", role: str = "manager") -> ssl.SSLContext:
        return client_context(self.creds(node_id, role))


@pytest.fixture
def cluster() -> TestCluster:
    return TestCluster()


@pytest.fixture
def other_ca() -> TestCluster:
    """A second root CA, with the same cluster id: trusted by nobody in ``cluster``."""
    return TestCluster()


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start a server with TLS on 127.0.0.1, port 0; returns its https URL."""
    started: list[RpcServer] = []

    async def start(server: RpcServer) -> str:
        port = await server.start("127.0.0.1", 0)
        started.append(server)
        return f"https://127.0.0.1:{port}"

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    """An RpcClient that is closed after the test."""
    clients: list[RpcClient] = []

    def open_(url: str, context: ssl.SSLContext | None, **kwargs: Any) -> RpcClient:
        client = RpcClient(url, context, **kwargs)
        clients.append(client)
        return client

    yield open_
    for client in clients:
        await client.close()
