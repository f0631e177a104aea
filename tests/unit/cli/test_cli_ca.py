"""`swarmlite swarm ca`: print the root CA, rotate it and follow the rotation to its end."""

from __future__ import annotations

import pytest

from swarmlite.api.cluster import ClusterSpec
from swarmlite.api.control import CARequest, CAView, SwarmUpdate, SwarmView
from swarmlite.api.routes import SWARM_CA, SWARM_UPDATE
from swarmlite.cli.commands import ca as ca_command

OLD = b"-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n"
NEW = b"-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n"


def test_swarm_ca_prints_the_root_certificate(daemon, run) -> None:
    daemon.on(SWARM_CA, lambda request: CAView(cert_pem=OLD))

    result = run("swarm", "ca")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == OLD.decode()
    assert daemon.requests(SWARM_CA) == [CARequest()]


def test_rotate_follows_the_rotation_until_it_ends(
    daemon, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ca_command, "POLL_SECONDS", 0.01)
    views = iter(
        [
            CAView(cert_pem=OLD, rotating=True, new_cert_pem=NEW, pending=["h2", "h3"]),
            CAView(cert_pem=OLD, rotating=True, new_cert_pem=NEW, renewed=2, pending=["h3"]),
            CAView(cert_pem=OLD, rotating=True, new_cert_pem=NEW, renewed=2, pending=["h3"]),
            CAView(cert_pem=NEW),
        ]
    )
    daemon.on(SWARM_CA, lambda request: next(views))
    view = SwarmView(
        id="c", version=1, created_at=0, updated_at=0, spec=ClusterSpec(), ca_cert_pem=OLD
    )
    daemon.on(SWARM_UPDATE, lambda request: view)

    result = run("swarm", "ca", "--rotate", "--cert-expiry", "720h")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == NEW.decode()
    assert result.stderr.splitlines() == [
        "rotating the root CA: 0 node(s) renewed, waiting for h2, h3",
        "rotating the root CA: 2 node(s) renewed, waiting for h3",
        "Root CA rotation done: every node trusts the new root only.",
    ]
    assert daemon.requests(SWARM_CA)[0] == CARequest(rotate=True)
    assert daemon.requests(SWARM_UPDATE) == [SwarmUpdate(cert_expiry=720 * 3600.0)]


def test_rotate_detached_prints_the_new_root_at_once(daemon, run) -> None:
    daemon.on(SWARM_CA, lambda request: CAView(cert_pem=OLD, rotating=True, new_cert_pem=NEW))

    result = run("swarm", "ca", "--rotate", "-d")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == NEW.decode()
    assert daemon.requests(SWARM_CA) == [CARequest(rotate=True)]
