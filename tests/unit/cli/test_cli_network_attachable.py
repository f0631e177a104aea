"""`swarmlite network create --attachable` sends an attachable spec (and without the flag,
one that is not)."""

from __future__ import annotations

from typing import Any

from swarmlite.api import Network, NetworkSpec
from swarmlite.api.control import NetworkCreate, NetworkView
from swarmlite.api.routes import NETWORK_CREATE

NETWORK_ID = "a" * 25


def test_create_attachable_sends_it_in_the_spec(daemon: Any, run: Any) -> None:
    daemon.on(
        NETWORK_CREATE,
        lambda request: NetworkView(network=Network(id=NETWORK_ID, spec=request.spec)),
    )

    assert run("network", "create", "--attachable", "tools").exit_code == 0
    assert run("network", "create", "plain").exit_code == 0

    assert daemon.requests(NETWORK_CREATE) == [
        NetworkCreate(spec=NetworkSpec(name="tools", attachable=True)),
        NetworkCreate(spec=NetworkSpec(name="plain")),
    ]
